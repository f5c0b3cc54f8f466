"""order_facts (sql/migrations/0014_report_facts.sql) agree with the order history.

Every lifecycle step kind is taken through orders_db.apply_action (and the breach sweep through
breaches.record_due), each in its own committed transaction; after each step the facts are
flushed as a report would, and every fact a report counts is compared, order by order, with the
same definitions computed straight from orders, clocks and history (ORACLE: the report's
queries as they were before order_facts, per order), judged at several moments: the step's
time, half an hour and two days later, now, and either side of every clock's deadline. Stories (local time, June/July 2025):

| story    | steps                                                                               |
| reopen   | grab · arrive · finish · callback unsatisfied · reopen · (rework order:) accept ·    |
|          |   arrive · finish · callback satisfied                                               |
| cancel   | grab · cancel (in time)                                                             |
| late-cxl | assign · cancel 40 min later (arrival clock already missed)                         |
| pause    | grab · arrive · pause · resume · finish · callback fairly                           |
| late-pause | grab · arrive · pause a day later (completion clock already missed) · resume · finish |
| spanning | received 30 Jun 23:50 · grab · arrive 1 Jul 00:05 · finish 02:00 · callback fairly  |
| unfin    | grab · arrive · unfinished · reappoint · arrive · finish                           |
| transfer | grab · transfer · assign · accept · arrive (late) · finish                          |
| matter   | handle · callback                                                                   |
| swept    | assign, never accepted · breach sweep an hour later                                 |
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from server.demo_orders import _actor
from server.domain import stats
from server.domain.intake import validate_intake
from server.persistence import breaches as breaches_db
from server.persistence import orders as orders_db
from server.persistence import reports as reports_db

CST = timezone(timedelta(hours=8))


def t(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=CST)


FIN = {"result": "已修复", "labour_yuan": "0"}


def cb(rating: str) -> dict[str, str]:
    return {"method": "phone", "rating": rating}


STORIES: dict[str, tuple[str, str, datetime, list[tuple[str, datetime, str, dict[str, Any]]]]] = {
    "reopen": (
        "plumbing",
        "repair",
        t(6, 2, 10),
        [
            ("grab", t(6, 2, 10, 2), "shifu1", {}),
            ("arrive", t(6, 2, 10, 12), "shifu1", {}),
            ("finish", t(6, 2, 11), "shifu1", FIN),
            ("callback", t(6, 2, 15), "desk", cb("unsatisfied")),
            ("reopen", t(6, 3, 9), "desk", {"reason": "仍然漏水"}),
            ("accept", t(6, 3, 9, 10), "shifu1", {}),
            ("arrive", t(6, 3, 9, 20), "shifu1", {}),
            ("finish", t(6, 3, 10), "shifu1", FIN),
            ("callback", t(6, 3, 15), "desk", cb("satisfied")),
        ],
    ),
    "cancel": (
        "plumbing",
        "repair",
        t(6, 4, 9),
        [
            ("grab", t(6, 4, 9, 2), "shifu1", {}),
            ("cancel", t(6, 4, 9, 5), "desk", {"reason": "业主自行修好"}),
        ],
    ),
    "late-cxl": (
        "electrical",
        "repair",
        t(6, 5, 9),
        [
            ("assign", t(6, 5, 9, 1), "desk", {"assignee": "shifu1"}),
            ("cancel", t(6, 5, 9, 41), "desk", {"reason": "业主取消"}),
        ],
    ),
    "pause": (
        "electrical",
        "repair",
        t(6, 6, 10),
        [
            ("grab", t(6, 6, 10, 2), "shifu1", {}),
            ("arrive", t(6, 6, 10, 10), "shifu1", {}),
            ("pause", t(6, 6, 10, 30), "shifu1", {"reason": "parts", "promised_at": t(6, 9, 9).isoformat()}),
            ("resume", t(6, 9, 9), "shifu1", {}),
            ("finish", t(6, 9, 10), "shifu1", FIN),
            ("callback", t(6, 9, 15), "desk", cb("fairly")),
        ],
    ),
    "late-pause": (
        "electrical",
        "repair",
        t(6, 15, 10),
        [
            ("grab", t(6, 15, 10, 2), "shifu1", {}),
            ("arrive", t(6, 15, 10, 10), "shifu1", {}),
            ("pause", t(6, 16, 11), "shifu1", {"reason": "parts", "promised_at": t(6, 17, 9).isoformat()}),
            ("resume", t(6, 17, 9), "shifu1", {}),
            ("finish", t(6, 17, 10), "shifu1", FIN),
        ],
    ),
    "spanning": (
        "building",
        "repair",
        t(6, 30, 23, 50),
        [
            ("grab", t(6, 30, 23, 53), "shifu3", {}),
            ("arrive", t(7, 1, 0, 5), "shifu3", {}),
            ("finish", t(7, 1, 2), "shifu3", FIN),
            ("callback", t(7, 1, 10), "desk", cb("fairly")),
        ],
    ),
    "unfin": (
        "building",
        "repair",
        t(6, 10, 14),
        [
            ("grab", t(6, 10, 14, 3), "shifu3", {}),
            ("arrive", t(6, 10, 14, 15), "shifu3", {}),
            (
                "unfinished",
                t(6, 10, 14, 45),
                "shifu3",
                {"reason": "缺配件", "next_at": t(6, 11, 10).isoformat()},
            ),
            ("reappoint", t(6, 10, 15), "desk", {"appointment_at": t(6, 11, 10).isoformat()}),
            ("arrive", t(6, 11, 9, 55), "shifu3", {}),
            ("finish", t(6, 11, 11), "shifu3", FIN),
        ],
    ),
    "transfer": (
        "plumbing",
        "repair",
        t(6, 12, 10),
        [
            ("grab", t(6, 12, 10, 2), "shifu1", {}),
            ("transfer", t(6, 12, 10, 10), "shifu1", {"reason": "手头有急活"}),
            ("assign", t(6, 12, 10, 12), "desk", {"assignee": "shifu2"}),
            ("accept", t(6, 12, 10, 20), "shifu2", {}),
            ("arrive", t(6, 12, 10, 50), "shifu2", {}),
            ("finish", t(6, 12, 11, 25), "shifu2", FIN),
        ],
    ),
    "matter": (
        "loss",
        "matter",
        t(6, 13, 10),
        [
            ("handle", t(6, 13, 10, 40), "zhixu", {"result": "已登记"}),
            ("callback", t(6, 13, 15), "desk", cb("satisfied")),
        ],
    ),
    "swept": (
        "electrical",
        "repair",
        t(6, 14, 9),
        [
            ("assign", t(6, 14, 9, 2), "desk", {"assignee": "shifu1"}),
            ("sweep", t(6, 14, 10, 2), "", {}),
        ],
    ),
}

# The report's definitions per order, computed straight from orders, clocks and history (the
# report queries as they were before order_facts), judged at :now; unfinished over 24 h at :now.
ORACLE = """
WITH engineer_team AS (
    SELECT st.staff_id, t.project_id, min(t.id) AS team_id
    FROM staff_teams st JOIN teams t ON t.id = st.team_id
    GROUP BY st.staff_id, t.project_id
),
period_orders AS (
    SELECT o.id, coalesce(o.team_id, et.team_id) AS team_id, o.assignee_id, o.category,
           o.status, o.received_at, o.finished_at, o.callback_at, o.callback_rating, o.reopen_count,
           o.man_hours, p.count_fairly_satisfied
    FROM orders o
    JOIN projects p ON p.id = o.project_id
    LEFT JOIN engineer_team et ON et.staff_id = o.assignee_id AND et.project_id = o.project_id
    WHERE o.id = ANY(CAST(:ids AS bigint[]))
      AND NOT (o.status = 'cancelled' AND o.finished_at IS NULL)
),
period_clocks AS (
    SELECT j.order_id, j.kind, j.breached, j.state IN ('running', 'paused') AS undecided
    FROM (
        SELECT c.order_id, c.kind, c.state,
               (c.state = 'breached' OR c.breached_at IS NOT NULL
                OR (c.paused_at IS NULL AND c.state IN ('running', 'cancelled')
                    AND coalesce(c.ended_at, :now) > c.deadline)
                OR (c.paused_at IS NOT NULL AND c.paused_at > c.deadline)) AS breached
        FROM order_clocks c
        WHERE c.order_id = ANY(CAST(:ids AS bigint[]))
    ) j
    WHERE (j.state <> 'cancelled' OR j.breached)
      AND (j.kind IN ('arrival', 'completion') OR j.breached)
),
timing AS (
    SELECT order_id, bool_or(breached) AS late, bool_or(undecided AND NOT breached) AS pending
    FROM period_clocks WHERE kind IN ('arrival', 'completion') GROUP BY order_id
),
first_steps AS (
    SELECT e.order_id,
           min(e.at) FILTER (WHERE e.to_status = 'accepted') AS accepted_at,
           min(e.at) FILTER (WHERE e.to_status = 'on_site') AS arrived_at,
           bool_or(e.to_status = 'unfinished') AS was_unfinished
    FROM order_events e
    WHERE e.to_status IN ('accepted', 'on_site', 'unfinished') AND e.order_id = ANY(CAST(:ids AS bigint[]))
    GROUP BY e.order_id
),
breached AS (
    SELECT c.order_id, jsonb_object_agg(c.kind, c.n) AS breaches
    FROM (SELECT order_id, kind, count(*) AS n FROM period_clocks WHERE breached GROUP BY 1, 2) c
    GROUP BY c.order_id
)
SELECT po.id, po.team_id, po.assignee_id, po.category,
       po.finished_at IS NOT NULL AS done,
       coalesce(t.late OR NOT t.pending, false) AS timed,
       coalesce(NOT t.late AND NOT t.pending, false) AS timely,
       coalesce(NOT t.late AND t.pending, false) AS timing_pending,
       po.finished_at IS NOT NULL AND po.callback_at IS NOT NULL AS called_back,
       CASE WHEN po.finished_at IS NOT NULL THEN po.callback_rating END AS rating,
       po.finished_at IS NOT NULL AND po.callback_rating = 'fairly' AND po.count_fairly_satisfied
           AS fairly_counted,
       po.finished_at IS NOT NULL AND po.reopen_count > 0 AS reworked,
       po.finished_at IS NOT NULL AND po.reopen_count = 0 AND NOT coalesce(fs.was_unfinished, false)
           AS first_fix,
       po.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished') AS open,
       po.man_hours,
       extract(epoch FROM fs.accepted_at - po.received_at)::float8 AS response_s,
       extract(epoch FROM fs.arrived_at - po.received_at)::float8 AS arrival_s,
       extract(epoch FROM po.finished_at - po.received_at)::float8 AS completion_s,
       coalesce(b.breaches, '{}') AS breaches
FROM period_orders po
LEFT JOIN timing t ON t.order_id = po.id
LEFT JOIN first_steps fs ON fs.order_id = po.id
LEFT JOIN breached b ON b.order_id = po.id
ORDER BY po.id
"""
ORACLE_UNFINISHED = """
SELECT o.id FROM orders o
WHERE o.id = ANY(CAST(:ids AS bigint[]))
  AND o.received_at < CAST(:now AS timestamptz) - interval '24 hours'
  AND NOT coalesce(o.finished_at <= :now AND o.status IN ('done', 'callback', 'closed', 'cancelled'), false)
  AND NOT coalesce(o.cancelled_at <= :now, false)
ORDER BY o.id
"""

# The same facts as the report reads them (its shared head over order_facts).
FACTS = """
SELECT f.id, coalesce(f.team_id, (SELECT et.team_id FROM engineer_team et
                                  WHERE et.staff_id = f.assignee_id AND et.project_id = f.project_id)) AS team_id,
       f.assignee_id, f.category, f.done, f.timed, f.timely, f.timing_pending, f.called_back, f.rating,
       f.fairly_counted, f.reworked, f.first_fix, f.open, f.man_hours, f.response_s, f.arrival_s, f.completion_s,
       (SELECT coalesce(jsonb_object_agg(k.kind, k.n), '{}')
        FROM (SELECT u.kind, count(*) AS n
              FROM unnest(f.breached || ARRAY(SELECT d.kind FROM unnest(f.due_kinds, f.due_deadlines) AS d(kind, deadline)
                                              WHERE d.deadline < :now)) AS u(kind)
              GROUP BY u.kind) k) AS breaches
FROM period_facts f
WHERE f.id = ANY(CAST(:ids AS bigint[]))
ORDER BY f.id
"""
FACTS_UNFINISHED = "SELECT u.id FROM unfinished_24h u WHERE u.id = ANY(CAST(:ids AS bigint[])) ORDER BY u.id"


async def _compare(engine: Any, pid: int, ids: list[int], at: datetime, what: str) -> None:
    """Flush as a report does, then compare every fact with the oracle at several moments."""
    async with engine.begin() as conn:
        await reports_db.flush_facts(conn)
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(conn, frozenset({pid}))
        deadlines = (
            await conn.execute(
                text(
                    "SELECT DISTINCT deadline FROM order_clocks WHERE order_id = ANY(CAST(:ids AS bigint[]))"
                ),
                {"ids": ids},
            )
        ).scalars()
        second = timedelta(seconds=1)
        moments = {at, at + timedelta(minutes=30), at + timedelta(days=2), datetime.now(UTC)}
        moments |= {d + k * second for d in deadlines for k in (-1, 0, 1)}  # either side of each deadline
        for now in sorted(moments):
            period = stats.Period(datetime(2001, 1, 1).date(), datetime(2099, 12, 31).date())
            params = {**reports_db._params(projects, period, now), "ids": ids, "as_of": now}
            head = reports_db._read("orders")
            want = [dict(r) for r in (await conn.execute(text(ORACLE), params)).mappings()]
            got = [dict(r) for r in (await conn.execute(text(head + FACTS), params)).mappings()]
            assert got == want, f"{what}, judged at {now.isoformat()}"
            want_u = (await conn.execute(text(ORACLE_UNFINISHED), params)).scalars().all()
            got_u = (await conn.execute(text(head + FACTS_UNFINISHED), params)).scalars().all()
            assert got_u == want_u, f"{what}: unfinished over 24 h at {now.isoformat()}"


async def _story(engine: Any, pid: int, name: str) -> list[int]:
    """Register the story's order, take every step in its own transaction, compare after each."""
    category, kind, received, steps = STORIES[name]
    raw = {
        "project": "DEMO",
        "kind": kind,
        "category": category,
        "urgency": "normal",
        "summary": f"事实测试 {name}",
        "content": "",
        "reporter_name": "测试",
        "reporter_phone": "13800000000",
        "channel": "phone",
        "room": "1-1-101",
    }
    async with engine.begin() as conn:
        reg = await orders_db.register(
            conn, validate_intake(raw, now=received), await _actor(conn, "kefu"), received
        )
        first_id = (
            await conn.execute(text("SELECT id FROM orders WHERE number = :n"), {"n": reg.number})
        ).scalar()
    ids = [first_id]
    await _compare(engine, pid, ids, received, f"{name}: register")
    number, version, code = reg.number, reg.version, reg.verification_code
    for action, at, who, inputs in steps:
        if action == "sweep":
            recorded = await breaches_db.record_due(engine, at, recorded_by="test", order_id=ids[-1])
            assert recorded, "the sweep found the missed clocks"
            await _compare(engine, pid, ids, at, f"{name}: sweep")
            continue
        async with engine.begin() as conn:
            actor = await _actor(conn, "kefu" if who == "desk" else who)
            inputs = dict(inputs)
            if action == "arrive":
                inputs["code"] = code
            if "assignee" in inputs:
                inputs["assignee_id"] = (await _actor(conn, inputs.pop("assignee"))).staff_id
            row = await orders_db.apply_action(conn, number, action, version, actor, inputs, at)
            version = row["version"]
            if action == "reopen" and row["status"] == "closed":  # a new linked rework order
                rework = (
                    await conn.execute(
                        text(
                            "SELECT id, number, version, verification_code FROM orders WHERE reopened_from_id = :o"
                        ),
                        {"o": row["id"]},
                    )
                ).one()
                ids.append(rework[0])
                number, version, code = rework[1], rework[2], rework[3]
        await _compare(engine, pid, ids, at, f"{name}: {action}")
    return ids


@pytest.fixture(scope="module")
async def demo_id(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()


# What each story is about, as its facts show it (so that the comparison is never vacuous).
CHECKS: dict[str, Any] = {
    "reopen": lambda f: f[0]["reopened"] and f[-1]["finished_at"] is not None,
    "cancel": lambda f: not f[0]["counted"] and not f[0]["breached"],
    "late-cxl": lambda f: not f[0]["counted"] and "arrival" in f[0]["breached"],
    "pause": lambda f: f[0]["rating"] == "fairly" and f[0]["has_clocks"] and not f[0]["late"],
    "late-pause": lambda f: f[0]["late"] and "completion" in f[0]["breached"],
    "spanning": lambda f: (
        (f[0]["received_at"].astimezone(CST).month, f[0]["finished_at"].astimezone(CST).month) == (6, 7)
    ),
    "unfin": lambda f: f[0]["was_unfinished"] and f[0]["finished_at"] is not None,
    "transfer": lambda f: "arrival" in f[0]["breached"] and f[0]["team_id"] is None,
    "matter": lambda f: f[0]["kind"] == "matter" and f[0]["called_back"],
    "swept": lambda f: f[0]["late"] and "arrival" in f[0]["breached"] and f[0]["pending_until"] is not None,
}


@pytest.mark.parametrize("name", list(STORIES))
async def test_facts_agree_with_the_history_after_every_step(engine, demo_id, name):
    ids = await _story(engine, demo_id, name)
    async with engine.connect() as conn:
        facts = [
            dict(r)
            for r in (
                await conn.execute(
                    text("SELECT * FROM order_facts WHERE order_id = ANY(:ids) ORDER BY order_id"),
                    {"ids": ids},
                )
            ).mappings()
        ]
    assert [f["order_id"] for f in facts] == ids  # one row per order, a rework order's included
    assert CHECKS[name](facts), facts


async def test_a_change_is_in_the_next_report_without_waiting(engine, demo_id):
    """The triggers mark the order; the report flushes before it reads: a step just taken counts."""
    period = stats.month_period(2025, 8)
    now = t(8, 20, 12)
    rep0 = await _report(engine, demo_id, period, now)
    raw = {
        "project": "DEMO", "kind": "matter", "category": "loss", "urgency": "normal",
        "summary": "事实测试 august", "content": "", "reporter_name": "测试",
        "reporter_phone": "13800000000", "channel": "phone", "room": "1-1-101",
    }  # fmt: skip
    async with engine.begin() as conn:
        reg = await orders_db.register(
            conn, validate_intake(raw, now=t(8, 20, 9)), await _actor(conn, "kefu"), t(8, 20, 9)
        )
    rep1 = await _report(engine, demo_id, period, now)
    assert rep1.overview.counts.received == rep0.overview.counts.received + 1
    assert rep1.overview.counts.done == rep0.overview.counts.done
    async with engine.begin() as conn:
        actor = await _actor(conn, "zhixu")
        await orders_db.apply_action(
            conn, reg.number, "handle", reg.version, actor, {"result": "已登记"}, t(8, 20, 10)
        )
    rep2 = await _report(engine, demo_id, period, now)
    assert rep2.overview.counts.done == rep0.overview.counts.done + 1


async def _report(engine: Any, pid: int, period: stats.Period, now: datetime) -> reports_db.Report:
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(conn, frozenset({pid}))
    return await reports_db.full_report(engine, projects, period, now)


async def test_the_worker_flushes_the_changed_orders_once_a_minute(engine, demo_id):
    from workers import report_jobs
    from workers.settings import WorkerSettings

    assert any(getattr(c, "name", "") == "cron:flush_report_facts" for c in WorkerSettings.cron_jobs)
    raw = {
        "project": "DEMO", "kind": "matter", "category": "loss", "urgency": "normal",
        "summary": "事实测试 worker", "content": "", "reporter_name": "测试",
        "reporter_phone": "13800000000", "channel": "phone", "room": "1-1-101",
    }  # fmt: skip
    async with engine.begin() as conn:
        reg = await orders_db.register(
            conn, validate_intake(raw, now=t(9, 1, 9)), await _actor(conn, "kefu"), t(9, 1, 9)
        )
        await reports_db.flush_facts(conn)
        oid = (
            await conn.execute(text("SELECT id FROM orders WHERE number = :n"), {"n": reg.number})
        ).scalar_one()
        await conn.execute(text("UPDATE orders SET man_hours = 1.25 WHERE id = :o"), {"o": oid})
    async with engine.connect() as conn:
        before = (
            await conn.execute(text("SELECT man_hours FROM order_facts WHERE order_id = :o"), {"o": oid})
        ).scalar()
    assert before != 1.25  # marked, not yet recomputed
    assert await report_jobs.flush_report_facts({"engine": engine}) >= 1
    async with engine.connect() as conn:
        after = (
            await conn.execute(text("SELECT man_hours FROM order_facts WHERE order_id = :o"), {"o": oid})
        ).scalar()
    assert float(after) == 1.25


DIFFERENCES = """
SELECT count(*) FROM order_facts f FULL JOIN order_facts_source s ON s.order_id = f.order_id
WHERE (f.*) IS DISTINCT FROM (s.*)
"""


async def test_steps_and_flushes_racing_leave_every_orders_facts_exact(engine, demo_id):
    """Orders changing in parallel while reports flush: afterwards every order's facts are exact."""
    import asyncio

    async def one(i: int) -> None:
        raw = {
            "project": "DEMO", "kind": "repair", "category": "plumbing", "urgency": "normal",
            "summary": f"事实测试 race {i}", "content": "", "reporter_name": "测试",
            "reporter_phone": "13800000000", "channel": "phone", "room": "1-1-101",
        }  # fmt: skip
        at = t(10, 1 + i, 9)
        async with engine.begin() as conn:
            reg = await orders_db.register(conn, validate_intake(raw, now=at), await _actor(conn, "kefu"), at)
        number, version = reg.number, reg.version
        for k, (action, inputs) in enumerate(
            [
                ("grab", {}),
                ("arrive", {"code": reg.verification_code}),
                ("finish", FIN),
                ("callback", cb("satisfied")),
            ]
        ):
            async with engine.begin() as conn:
                actor = await _actor(conn, "kefu" if action == "callback" else "shifu1")
                row = await orders_db.apply_action(
                    conn, number, action, version, actor, inputs, at + timedelta(minutes=5 * (k + 1))
                )
                version = row["version"]

    async def flusher(stop: asyncio.Event) -> int:
        n = 0
        while not stop.is_set():
            async with engine.begin() as conn:
                n += await reports_db.flush_facts(conn)
            await asyncio.sleep(0)
        return n

    stop = asyncio.Event()
    flushers = [asyncio.create_task(flusher(stop)) for _ in range(2)]
    await asyncio.gather(*(one(i) for i in range(6)))
    stop.set()
    flushed = sum(await asyncio.gather(*flushers))
    assert flushed > 0  # the flushes ran while the orders changed
    async with engine.begin() as conn:
        await reports_db.flush_facts(conn)
    async with engine.connect() as conn:
        assert (await conn.execute(text(DIFFERENCES))).scalar_one() == 0
    async with engine.begin() as conn:  # one more change, not flushed yet: the check sees it
        await conn.execute(text("UPDATE orders SET man_hours = 2.5 WHERE summary = '事实测试 race 0'"))
    async with engine.connect() as conn:
        assert (await conn.execute(text(DIFFERENCES))).scalar_one() == 1
    async with engine.begin() as conn:
        await reports_db.flush_facts(conn)
    async with engine.connect() as conn:
        assert (await conn.execute(text(DIFFERENCES))).scalar_one() == 0
