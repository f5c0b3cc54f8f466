"""Reports: real lifecycle stories in January 2025 of project DEMO, with a known answer for every
figure; the page, its exports read back, access by role, bad input, the wall board's panel.

The stories (local time Asia/Shanghai; default clocks: arrival 15 min after dispatch, completion
24 h; "→" a step, each through orders_db.apply_action at its time):

| order | category   | engineer | story                                                                  |
| A     | plumbing   | 张师傅   | 06 10:00 · grab 10:02 · arrive 10:12 · finish 11:30 · satisfied       |
| B     | plumbing   | 张师傅   | 07 10:00 · grab 10:04 · arrive 10:34 (arrival late) · finish · fairly |
| C     | building   | 陈师傅   | 08 09:00 · grab 09:06 · arrive 09:20 · finish 13:00 · unsatisfied ·   |
|       |            |          |   reopen 09 09:00 · accept 09:10 · arrive 09:12 · finish 10:00 · sat. |
| D     | building   | 陈师傅   | 10 14:00 · grab · arrive 14:15 · unfinished · reappoint (11 10:00) ·   |
|       |            |          |   arrive 11 09:55 · finish 11 11:00 · satisfied                        |
| E     | electrical | 张师傅   | 13 10:00 · grab · arrive 10:10 · pause 10:40 (still paused)           |
| F     | plumbing   | —        | 14 09:00 · cancelled 09:10, never done                                 |
| G     | building   | 陈师傅   | 31 23:50 · grab · arrive 01 Feb 00:05 · finish 01 Feb 02:00 · sat.    |
| H     | plumbing   | 张师傅   | 01 Feb 00:10 (31 Jan in UTC) · … done: February's                      |
| J     | electrical | 张师傅   | 20 09:00 · assigned 09:02, never accepted (clocks run on)              |
| K     | plumbing   | 刘师傅   | 21 10:00 · grab by 张师傅 10:02 · transfer 10:10 · assign 刘师傅 ·    |
|       |            |          |   accept 10:20 · arrive 10:25 · finish 11:25 · satisfied               |
| L     | plumbing   | 张师傅   | 22 09:00 · … finish 10:00 · unsatisfied · reopen 15:00 · cancel 15:10 |
| M     | building   | 陈师傅   | 23 09:00 · … finish 24 11:00 (completion late) · fairly               |
| N     | loss       | 孙队长   | 24 10:00 · a matter, handled 10:40 · satisfied                         |
| P     | building   | 陈师傅   | 20 Dec 2024 · unfinished ever since                                    |
| Q     | building   | 陈师傅   | 28 Dec 2024 · unfinished · reappointed · done 05 Jan                   |
| R     | electrical | 张师傅   | 30 10:00 · pause 10:30 · resume 03 Feb 09:00 · finish 10:00 · sat.    |

返修 (TEAM.md): a reopen makes a NEW linked rework order (C', L') once b-orders' change is on
main; until then the lifecycle reopens the same order. The answers below are given for both
(`rework_orders`): C' (received 09 09:00, done) joins January; L' is cancelled without being
done, so it does not.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from server.demo_orders import _actor  # the demo's staff → lifecycle actor lookup
from server.domain import stats
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence import reports as reports_db
from server.persistence import staff as staff_db
from server.persistence import worklists

CST = timezone(timedelta(hours=8))
JAN = {"project": "DEMO", "month": "2025-01"}


def t(month: int, day: int, hour: int, minute: int = 0, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CST)


def jan(day: int, hour: int, minute: int = 0) -> datetime:
    return t(1, day, hour, minute)


FIN = {"result": "已修复", "labour_yuan": "0"}


def cb(rating: str) -> dict[str, str]:
    return {"method": "phone", "rating": rating}


# name: (category, kind, received, [(action, at, who, inputs)]); who "desk" = kefu.
STORIES: dict[str, tuple[str, str, datetime, list[tuple[str, datetime, str, dict[str, Any]]]]] = {
    "A": (
        "plumbing",
        "repair",
        jan(6, 10),
        [
            ("grab", jan(6, 10, 2), "shifu1", {}),
            ("arrive", jan(6, 10, 12), "shifu1", {}),
            ("finish", jan(6, 11, 30), "shifu1", FIN),
            ("callback", jan(6, 15), "desk", cb("satisfied")),
        ],
    ),
    "B": (
        "plumbing",
        "repair",
        jan(7, 10),
        [
            ("grab", jan(7, 10, 4), "shifu1", {}),
            ("arrive", jan(7, 10, 34), "shifu1", {}),
            ("finish", jan(7, 12), "shifu1", FIN),
            ("callback", jan(7, 16), "desk", cb("fairly")),
        ],
    ),
    "C": (
        "building",
        "repair",
        jan(8, 9),
        [
            ("grab", jan(8, 9, 6), "shifu3", {}),
            ("arrive", jan(8, 9, 20), "shifu3", {}),
            ("finish", jan(8, 13), "shifu3", FIN),
            ("callback", jan(8, 17), "desk", cb("unsatisfied")),
            ("reopen", jan(9, 9), "desk", {"reason": "仍然漏水"}),
            ("accept", jan(9, 9, 10), "shifu3", {}),
            ("arrive", jan(9, 9, 12), "shifu3", {}),
            ("finish", jan(9, 10), "shifu3", FIN),
            ("callback", jan(9, 15), "desk", cb("satisfied")),
        ],
    ),
    "D": (
        "building",
        "repair",
        jan(10, 14),
        [
            ("grab", jan(10, 14, 3), "shifu3", {}),
            ("arrive", jan(10, 14, 15), "shifu3", {}),
            (
                "unfinished",
                jan(10, 14, 45),
                "shifu3",
                {"reason": "缺配件", "next_at": jan(11, 10).isoformat()},
            ),
            ("reappoint", jan(10, 15), "desk", {"appointment_at": jan(11, 10).isoformat()}),
            ("arrive", jan(11, 9, 55), "shifu3", {}),
            ("finish", jan(11, 11), "shifu3", FIN),
            ("callback", jan(11, 16), "desk", cb("satisfied")),
        ],
    ),
    "E": (
        "electrical",
        "repair",
        jan(13, 10),
        [
            ("grab", jan(13, 10, 3), "shifu1", {}),
            ("arrive", jan(13, 10, 10), "shifu1", {}),
            ("pause", jan(13, 10, 40), "shifu1", {"reason": "parts", "promised_at": jan(15, 10).isoformat()}),
        ],
    ),
    "F": ("plumbing", "repair", jan(14, 9), [("cancel", jan(14, 9, 10), "desk", {"reason": "业主自行修好"})]),
    "G": (
        "building",
        "repair",
        jan(31, 23, 50),
        [
            ("grab", jan(31, 23, 53), "shifu3", {}),
            ("arrive", t(2, 1, 0, 5), "shifu3", {}),
            ("finish", t(2, 1, 2), "shifu3", FIN),
            ("callback", t(2, 1, 10), "desk", cb("satisfied")),
        ],
    ),
    "H": (
        "plumbing",
        "repair",
        t(2, 1, 0, 10),
        [
            ("grab", t(2, 1, 0, 12), "shifu1", {}),
            ("arrive", t(2, 1, 0, 20), "shifu1", {}),
            ("finish", t(2, 1, 1), "shifu1", FIN),
            ("callback", t(2, 1, 10, 30), "desk", cb("satisfied")),
        ],
    ),
    "J": ("electrical", "repair", jan(20, 9), [("assign", jan(20, 9, 2), "desk", {"assignee": "shifu1"})]),
    "K": (
        "plumbing",
        "repair",
        jan(21, 10),
        [
            ("grab", jan(21, 10, 2), "shifu1", {}),
            ("transfer", jan(21, 10, 10), "shifu1", {"reason": "手头有急活"}),
            ("assign", jan(21, 10, 12), "desk", {"assignee": "shifu2"}),
            ("accept", jan(21, 10, 20), "shifu2", {}),
            ("arrive", jan(21, 10, 25), "shifu2", {}),
            ("finish", jan(21, 11, 25), "shifu2", FIN),
            ("callback", jan(21, 16), "desk", cb("satisfied")),
        ],
    ),
    "L": (
        "plumbing",
        "repair",
        jan(22, 9),
        [
            ("grab", jan(22, 9, 3), "shifu1", {}),
            ("arrive", jan(22, 9, 10), "shifu1", {}),
            ("finish", jan(22, 10), "shifu1", FIN),
            ("callback", jan(22, 14), "desk", cb("unsatisfied")),
            ("reopen", jan(22, 15), "desk", {"reason": "业主称仍有问题"}),
            ("cancel", jan(22, 15, 10), "desk", {"reason": "业主表示不再维修"}),  # in time: no breach
        ],
    ),
    "M": (
        "building",
        "repair",
        jan(23, 9),
        [
            ("grab", jan(23, 9, 4), "shifu3", {}),
            ("arrive", jan(23, 9, 15), "shifu3", {}),
            ("finish", jan(24, 11), "shifu3", FIN),
            ("callback", jan(24, 15), "desk", cb("fairly")),
        ],
    ),
    "N": (
        "loss",
        "matter",
        jan(24, 10),
        [
            ("handle", jan(24, 10, 40), "zhixu", {"result": "已登记"}),
            ("callback", jan(24, 15), "desk", cb("satisfied")),
        ],
    ),
    "P": (
        "building",
        "repair",
        t(12, 20, 10, year=2024),
        [
            ("grab", t(12, 20, 10, 3, year=2024), "shifu3", {}),
            ("arrive", t(12, 20, 10, 10, year=2024), "shifu3", {}),
            (
                "unfinished",
                t(12, 20, 10, 40, year=2024),
                "shifu3",
                {"reason": "等业主定方案", "next_at": t(12, 27, 10, year=2024).isoformat()},
            ),
        ],
    ),
    "Q": (
        "building",
        "repair",
        t(12, 28, 10, year=2024),
        [
            ("grab", t(12, 28, 10, 5, year=2024), "shifu3", {}),
            ("arrive", t(12, 28, 10, 15, year=2024), "shifu3", {}),
            (
                "unfinished",
                t(12, 28, 11, year=2024),
                "shifu3",
                {"reason": "缺配件", "next_at": jan(5, 10).isoformat()},
            ),
            ("reappoint", t(12, 28, 12, year=2024), "desk", {"appointment_at": jan(5, 10).isoformat()}),
            ("arrive", jan(5, 9, 58), "shifu3", {}),
            ("finish", jan(5, 11), "shifu3", FIN),
            ("callback", jan(5, 15), "desk", cb("satisfied")),
        ],
    ),
    "R": (
        "electrical",
        "repair",
        jan(30, 10),
        [
            ("grab", jan(30, 10, 2), "shifu1", {}),
            ("arrive", jan(30, 10, 10), "shifu1", {}),
            (
                "pause",
                jan(30, 10, 30),
                "shifu1",
                {"reason": "customer_absent", "promised_at": t(2, 3, 9).isoformat()},
            ),
            ("resume", t(2, 3, 9), "shifu1", {}),
            ("finish", t(2, 3, 10), "shifu1", FIN),
            ("callback", t(2, 3, 15), "desk", cb("satisfied")),
        ],
    ),
    # In March, alone: handed back only after its arrival deadline had passed.
    "S": (
        "plumbing",
        "repair",
        t(3, 3, 10),
        [
            ("grab", t(3, 3, 10, 2), "shifu2", {}),
            ("transfer", t(3, 3, 10, 30), "shifu2", {"reason": "去不了"}),
            ("assign", t(3, 3, 10, 32), "desk", {"assignee": "shifu1"}),
            ("accept", t(3, 3, 10, 35), "shifu1", {}),
            ("arrive", t(3, 3, 10, 40), "shifu1", {}),
            ("finish", t(3, 3, 11, 30), "shifu1", FIN),
            ("callback", t(3, 3, 15), "desk", cb("satisfied")),
        ],
    ),
}


@dataclass
class DataSet:
    project_id: int
    numbers: dict[str, str]  # story name (C' for a rework order) → order number
    rework_orders: bool  # whether reopening made new linked orders (TEAM.md) or reopened the same one


async def _run(conn: Any, name: str, numbers: dict[str, str]) -> None:
    """Register one story's order and take it through its steps at their times."""
    category, kind, received, steps = STORIES[name]
    raw = {
        "project": "DEMO",
        "kind": kind,
        "category": category,
        "urgency": "normal",
        "summary": f"报表测试 {name}",
        "content": "",
        "reporter_name": "测试",
        "reporter_phone": "13800000000",
        "channel": "phone",
        "room": "1-1-101",
    }
    reg = await orders_db.register(
        conn, validate_intake(raw, now=received), await _actor(conn, "kefu"), received
    )
    numbers[name] = reg.number
    number, version, code, label = reg.number, reg.version, reg.verification_code, name
    for action, at, who, inputs in steps:
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
                    text("SELECT number, version, verification_code FROM orders WHERE reopened_from_id = :o"),
                    {"o": row["id"]},
                )
            ).one()
            number, version, code, label = rework[0], rework[1], rework[2], label + "'"
            numbers[label] = number


@pytest.fixture(scope="module")
async def data(engine) -> DataSet:
    """Run every story once (orders numbered BX-2025…/BS-2025…, dated in the past)."""
    async with engine.begin() as conn:
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()
        numbers: dict[str, str] = {}
        for name in STORIES:
            await _run(conn, name, numbers)
        # Their texts and notices are history: nothing here is for the delivery tests to send.
        await conn.execute(
            text(
                "UPDATE outbox SET state = 'sent', sent_at = now() FROM orders o WHERE outbox.order_id = o.id "
                "AND o.number = ANY(CAST(:n AS text[])) AND outbox.state = 'pending'"
            ),
            {"n": list(numbers.values())},
        )
    return DataSet(pid, numbers, "C'" in numbers)


async def _report(
    engine: Any, pid: int, period: stats.Period, now: datetime | None = None, focus: Any = None
) -> reports_db.Report:
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(conn, frozenset({pid}))
    return await reports_db.full_report(
        engine, projects, period, now or datetime.now(UTC), focus or reports_db.EVERYONE
    )


JANUARY = stats.month_period(2025, 1)
MIN = 60


def expected(rework_orders: bool) -> dict[str, Any]:
    """January's answers (see the module docstring), with or without rework orders."""
    if rework_orders:  # C' (done, timely, satisfied) joins; C keeps its first finish and rating
        return {
            "received": 13, "done": 11, "timed": 12, "timely": 9, "timing_pending": 1,
            "called_back": 11, "rated": 11, "satisfied": 7, "fairly": 2, "unsatisfied": 2,
            "reworked": 2, "first_fix": 8, "open": 2,
            "response": (11, 3 * MIN, 6 * MIN), "arrival": (11, 15 * MIN, 25 * MIN),
            "completion": (11, 120 * MIN, 1560 * MIN), "histogram": [1, 6, 1, 1, 1, 1],
        }  # fmt: skip
    return {
        "received": 12, "done": 10, "timed": 11, "timely": 8, "timing_pending": 1,
        "called_back": 10, "rated": 10, "satisfied": 7, "fairly": 2, "unsatisfied": 1,
        "reworked": 2, "first_fix": 7, "open": 2,
        "response": (10, 3 * MIN, 4.2 * MIN), "arrival": (10, 15 * MIN, 25.9 * MIN),
        "completion": (10, 125 * MIN, 1980 * MIN), "histogram": [1, 5, 0, 1, 2, 1],
    }  # fmt: skip


def counts_of(c: stats.Counts) -> dict[str, int]:
    return {k: getattr(c, k) for k in expected(False) if hasattr(c, k)}


# ---- figures ------------------------------------------------------------------------------


async def test_every_rate_of_the_month_has_its_known_answer(engine, data):
    rep = await _report(engine, data.project_id, JANUARY)
    want = expected(data.rework_orders)
    c = rep.overview.counts
    assert counts_of(c) == {k: v for k, v in want.items() if k in counts_of(c)}
    r = rep.overview.rates
    assert r.completion == want["done"] / want["received"]
    assert r.timeliness == want["timely"] / want["timed"]  # pending orders are in neither number
    assert r.callback == 1.0
    assert r.satisfaction == (want["satisfied"] + want["fairly"]) / want["rated"]
    assert r.rework == 2 / want["done"]
    assert r.first_fix == want["first_fix"] / want["done"]


async def test_times_measure_the_first_response_and_arrival_with_medians_and_p90(engine, data):
    rep = await _report(engine, data.project_id, JANUARY)
    want = expected(data.rework_orders)
    for key in ("response", "arrival", "completion"):
        n, p50, p90 = want[key]
        got = rep.durations[key]
        assert got["n"] == n, key
        assert got["p50"] == pytest.approx(p50), key
        assert got["p90"] == pytest.approx(p90), key
    assert [n for _lo, _hi, n in rep.histogram] == want["histogram"]


async def test_transfer_and_reappointment_do_not_reset_the_first_response_or_arrival(engine, data):
    # K was grabbed at 10:02 and accepted again by another engineer at 10:20; D arrived at
    # 14:15 and again at its new appointment the next morning. Each is timed from its first.
    for name, response, arrival in (("K", 2, 25), ("D", 3, 15)):
        day = STORIES[name][2].date().isoformat()
        rep = await _report(engine, data.project_id, stats.parse_period(None, day, day, JANUARY.end))
        assert rep.overview.counts.received == 1, name
        assert rep.durations["response"]["p50"] == pytest.approx(response * MIN), name
        assert rep.durations["arrival"]["p50"] == pytest.approx(arrival * MIN), name


async def test_timeliness_counts_met_clocks_and_leaves_undecided_ones_out(engine, data):
    # On 20 Jan at 09:10: A, C (and C'), D met every clock; B was late; J's clocks are running
    # within their deadlines and E's completion clock is paused in time: both pending.
    rep = await _report(
        engine,
        data.project_id,
        stats.parse_period(None, "2025-01-01", "2025-01-20", JANUARY.end),
        jan(20, 9, 10),
    )
    c = rep.overview.counts
    extra = 1 if data.rework_orders else 0
    assert (c.timely, c.timed, c.timing_pending) == (3 + extra, 4 + extra, 2)
    # An hour later J's arrival clock has run past its deadline: J is late, decided.
    later = await _report(
        engine,
        data.project_id,
        stats.parse_period(None, "2025-01-01", "2025-01-20", JANUARY.end),
        jan(20, 10, 10),
    )
    c = later.overview.counts
    assert (c.timely, c.timed, c.timing_pending) == (3 + extra, 5 + extra, 1)
    assert {b["kind"]: b["orders"] for b in later.breaches}["arrival"] == 2  # B stopped late, J running late


async def test_a_clock_cancelled_when_already_late_is_missed_and_one_cancelled_in_time_left_out(engine, data):
    march = await _report(engine, data.project_id, stats.month_period(2025, 3))
    c = march.overview.counts
    assert (c.received, c.timed, c.timely) == (
        1,
        1,
        0,
    )  # S: the first arrival clock ran out before the transfer
    assert {b["kind"]: b["clocks"] for b in march.breaches}["arrival"] == 1
    day = await _report(
        engine, data.project_id, stats.parse_period(None, "2025-01-21", "2025-01-21", JANUARY.end)
    )
    assert (day.overview.counts.timed, day.overview.counts.timely) == (1, 1)  # K: handed back in time


async def test_an_order_cancelled_after_it_was_done_still_counts_as_done(engine, data):
    rep = await _report(
        engine, data.project_id, stats.parse_period(None, "2025-01-22", "2025-01-22", JANUARY.end)
    )
    c = rep.overview.counts
    assert (c.received, c.done, c.called_back, c.unsatisfied, c.reworked) == (1, 1, 1, 1, 1)  # L
    cancelled = await _report(
        engine, data.project_id, stats.parse_period(None, "2025-01-14", "2025-01-14", JANUARY.end)
    )
    assert cancelled.overview.counts.received == 0  # F was cancelled without being done


async def test_breakdowns_by_team_engineer_and_category(engine, data):
    rep = await _report(engine, data.project_id, JANUARY)
    extra = 1 if data.rework_orders else 0
    teams = {r.name: r.counts for r in rep.breakdowns["team"]}
    assert (teams["水电班"].received, teams["水电班"].timely, teams["水电班"].timed) == (7, 4, 6)
    assert (teams["土建班"].received, teams["土建班"].timely, teams["土建班"].timed) == (
        4 + extra,
        3 + extra,
        4 + extra,
    )
    assert teams["秩序一队"].received == 1  # N: the handler's team
    engineers = {r.name: r.counts for r in rep.breakdowns["engineer"]}
    assert engineers["张师傅"].received == 6 and engineers["张师傅"].open == 2
    assert engineers["刘师傅"].received == 1  # K went to him after the transfer
    assert engineers["陈师傅"].reworked == 1
    cats = {r.key: r.counts.received for r in rep.breakdowns["category"]}
    assert cats == {"plumbing": 4, "electrical": 3, "building": 4 + extra, "loss": 1}


async def test_breaches_by_clock_count_stopped_late_and_overdue_running_clocks(engine, data):
    rep = await _report(engine, data.project_id, JANUARY)
    by = {b["kind"]: (b["clocks"], b["orders"]) for b in rep.breaches}
    assert by["arrival"] == (2, 2)  # B late, J never arrived
    assert by["completion"] == (2, 2)  # M late, J never done


async def test_unfinished_over_24_hours_includes_orders_carried_over_from_before_the_period(engine, data):
    rep = await _report(engine, data.project_id, JANUARY)
    assert rep.as_of == t(2, 1, 0)
    numbers = {v: k for k, v in data.numbers.items()}
    # P is from December; R was still paused at the end of January (done in February);
    # Q was done on 5 Jan, G was not yet 24 h old, F and L cancelled or done.
    assert [numbers[u["number"]] for u in rep.unfinished] == ["P", "E", "J", "R"]
    assert rep.unfinished_total == 4
    december = await _report(engine, data.project_id, stats.month_period(2024, 12))
    assert [numbers[u["number"]] for u in december.unfinished] == ["P", "Q"]


async def test_an_order_belongs_to_the_month_it_was_received_in_locally(engine, data):
    rep = await _report(
        engine, data.project_id, stats.parse_period(None, "2025-01-31", "2025-01-31", JANUARY.end)
    )
    assert (rep.overview.counts.received, rep.overview.counts.done) == (1, 1)  # G, done on 1 Feb
    february = await _report(engine, data.project_id, stats.month_period(2025, 2))
    assert february.overview.counts.received == 1  # H, though still 31 Jan in UTC


async def test_a_team_or_an_engineer_has_its_own_times_breaches_and_unfinished(engine, data):
    async with engine.connect() as conn:
        ids = dict((await conn.execute(text("SELECT username, id FROM staff"))).all())
        teams = dict(
            (
                await conn.execute(
                    text("SELECT name, id FROM teams WHERE project_id = :p"), {"p": data.project_id}
                )
            ).all()
        )
    zhang = await _report(
        engine, data.project_id, JANUARY, focus=reports_db.Focus(engineer_id=ids["shifu1"], name="张师傅")
    )
    assert zhang.overview.counts.received == 6  # A B E J L R
    assert zhang.durations["response"]["n"] == 5  # J never accepted
    assert zhang.durations["response"]["p50"] == pytest.approx(3 * MIN)
    assert zhang.durations["arrival"]["p90"] == pytest.approx(25.2 * MIN)
    assert {b["kind"]: b["orders"] for b in zhang.breaches}["arrival"] == 2
    numbers = {v: k for k, v in data.numbers.items()}
    assert [numbers[u["number"]] for u in zhang.unfinished] == ["E", "J", "R"]
    civil = await _report(
        engine, data.project_id, JANUARY, focus=reports_db.Focus(team_id=teams["土建班"], name="土建班")
    )
    assert [numbers[u["number"]] for u in civil.unfinished] == ["P"]
    assert {b["kind"]: b["orders"] for b in civil.breaches}["completion"] == 1  # M
    assert {r.name for r in civil.breakdowns["engineer"]} == {"陈师傅"}


async def test_satisfaction_counts_satisfied_only_where_the_project_says_so(engine, data):
    want = expected(data.rework_orders)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projects SET count_fairly_satisfied = false WHERE code = 'DEMO'"))
    try:
        rep = await _report(engine, data.project_id, JANUARY)
        assert rep.overview.rates.satisfaction == want["satisfied"] / want["rated"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE projects SET count_fairly_satisfied = true WHERE code = 'DEMO'"))


async def test_an_empty_period_shows_zeros_and_no_data(engine, data):
    rep = await _report(engine, data.project_id, stats.month_period(2024, 6))
    assert rep.overview.counts == stats.Counts()
    assert rep.overview.rates.timeliness is None
    assert rep.breaches == [] and rep.unfinished == []


async def test_a_burst_of_reports_shares_a_small_pool_without_running_dry(settings, data):
    # Each report holds ONE connection, and at most CONCURRENT_REPORTS run at once: thirty at
    # once on a pool of three (no overflow, a short wait) all finish.
    from sqlalchemy.ext.asyncio import create_async_engine

    small = create_async_engine(settings.database_url, pool_size=3, max_overflow=0, pool_timeout=20)
    try:
        async with small.connect() as conn:
            projects = await reports_db.projects_of(conn, frozenset({data.project_id}))
        now = datetime.now(UTC)
        reps = await asyncio.gather(
            *(reports_db.full_report(small, projects, JANUARY, now) for _ in range(30))
        )
        assert {r.overview.counts.received for r in reps} == {expected(data.rework_orders)["received"]}
    finally:
        await small.dispose()


# ---- the wall board's panel ----------------------------------------------------------------


async def test_the_panel_counts_exactly_as_the_report_does(engine, data):
    now = jan(20, 9, 10)
    async with engine.begin() as conn:
        await reports_db.flush_facts(conn)
    async with engine.connect() as conn:
        project = (await reports_db.projects_of(conn, frozenset({data.project_id})))[0]
        figures = await reports_db.panel(conn, project, now.date(), now)
    rep = await _report(engine, data.project_id, stats.this_month(now.date()), now)
    assert figures.month == rep.overview.counts  # every count, pending clocks included
    assert figures.today.received == 1 and figures.today.timing_pending == 1  # J
    assert figures.unfinished_24h == rep.unfinished_total == 2  # P (from December) and E


async def test_the_panels_unfinished_count_is_the_wall_boards_list(engine, data):
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await reports_db.flush_facts(conn)
    async with engine.connect() as conn:
        project = (await reports_db.projects_of(conn, frozenset({data.project_id})))[0]
        figures = await reports_db.panel(conn, project, now.astimezone(CST).date(), now)
        listed = await worklists.unfinished_over_24h(conn, [data.project_id], now)
    assert figures.unfinished_24h == len(listed) > 0


async def test_a_kiosk_sees_the_panel_of_its_project_only(client, engine, data):
    from server.security import new_token, token_hash

    token = new_token("kiosk")
    async with engine.begin() as conn:
        await staff_db.create_kiosk_token(conn, token_hash(token), [data.project_id], "report panel test")
    r = await client.get("/reports/panel", params={"project": "DEMO", "kiosk": token})
    assert r.status_code == 200
    assert r.text.lstrip().startswith("<section") and "<html" not in r.text
    assert 'class="report-panel"' in r.text
    assert (
        await client.get("/reports/panel", params={"project": "OTHER", "kiosk": token})
    ).status_code == 404
    assert (await client.get("/reports", params={"kiosk": token})).status_code in (401, 403, 303)


# ---- the page ------------------------------------------------------------------------------


class Tables(HTMLParser):
    """Every <table id=…> of a page as rows of cell texts; every KPI as its shown value and counts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.kpis: dict[str, list[str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._kpi: str | None = None
        self._depth = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "div" and a.get("class") == "kpi":
            self._kpi, self._depth = a.get("data-rate"), 0
            self.kpis[self._kpi or ""] = []
        elif tag == "div" and self._kpi:
            self._depth += 1
            self.kpis[self._kpi].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._kpi:
            if self._depth == 0:
                self._kpi = None
            else:
                self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._kpi and self._depth:
            self.kpis[self._kpi][-1] += data


def kpi(page: Tables, rate: str) -> tuple[str, str]:
    """(the value shown, the counts behind it) of one KPI box."""
    _name, value, counts = (" ".join(x.split()) for x in page.kpis[rate])
    return value, counts


async def test_manager_sees_every_rate_with_its_counts_charts_and_definitions(client, login, data):
    await login("jingli")
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    r = await client.get("/reports", params=JAN)
    assert r.status_code == 200
    want = expected(data.rework_orders)
    page = Tables(r.text)
    assert kpi(page, "completion") == (
        stats.percent(want["done"] / want["received"]),
        f"{want['done']} / {want['received']}",
    )
    assert kpi(page, "timeliness") == (
        stats.percent(want["timely"] / want["timed"]),
        f"{want['timely']} / {want['timed']} · pending 1",
    )
    assert kpi(page, "unfinished_24h")[0] == "4"
    for chart in (
        "overview",
        "team-timeliness",
        "engineer-completion",
        "category-satisfaction",
        "category-received",
    ):
        assert f'data-chart="{chart}"' in r.text, chart
    # The definitions are on the page as computed, never folded away (they print too).
    assert "<details" not in r.text
    assert "Orders whose clocks are still running or paused in time are pending" in r.text
    assert "whenever received (those carried over from before the period included)" in r.text


async def test_the_report_can_be_narrowed_to_a_team_or_an_engineer(client, login, engine, data):
    await login("jingli")
    async with engine.connect() as conn:
        sid = (await conn.execute(text("SELECT id FROM staff WHERE username = 'shifu1'"))).scalar_one()
    r = await client.get("/reports", params={**JAN, "focus": f"engineer:{sid}"})
    assert r.status_code == 200
    page = Tables(r.text)
    assert kpi(page, "completion")[1] == "4 / 6"  # A B L R of A B E J L R
    assert f'value="engineer:{sid}" selected' in r.text
    assert [row[0] for row in page.tables["unfinished-table"][1:]] == [
        data.numbers[n] for n in ("E", "J", "R")
    ]


@pytest.mark.parametrize("username", ["jingli", "zhuguan", "admin"])
async def test_manager_supervisor_and_admin_may_read_reports(client, login, username, data):
    await login(username)
    assert (await client.get("/reports", params=JAN)).status_code == 200
    assert (await client.get("/reports/export.csv", params=JAN)).status_code == 200


@pytest.mark.parametrize("username", ["kefu", "caiwu", "jiankong", "shifu1"])
async def test_dispatcher_finance_monitor_and_engineer_are_refused(client, login, username):
    await login(username)
    assert (await client.get("/reports", params=JAN)).status_code == 403
    assert (await client.get("/reports/export.xlsx", params=JAN)).status_code == 403
    assert (await client.get("/reports/export.csv", params=JAN)).status_code == 403


async def test_anonymous_is_sent_to_login(client):
    r = await client.get("/reports", params=JAN)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_a_project_the_manager_does_not_serve_is_not_found(client, login):
    await login("jingli")
    assert (await client.get("/reports", params={"project": "OTHER"})).status_code == 404
    assert (await client.get("/reports/export.csv", params={"project": "OTHER"})).status_code == 404
    assert (await client.get("/reports/panel", params={"project": "OTHER"})).status_code == 404


async def test_other_projects_supervisor_cannot_read_demo(client, login):
    await login("other_zhuguan")
    assert (await client.get("/reports", params=JAN)).status_code == 404


async def test_supervisor_lands_on_last_month_by_default(client, login):
    await login("zhuguan")
    r = await client.get("/reports")
    assert r.status_code == 200
    last = stats.last_month(datetime.now(UTC).astimezone(CST).date())
    assert f'type="month" name="month" value="{last.month}"' in r.text


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-05-31", "end": "2025-05-01"}, "The start date must not be after the end date"),
        ({"start": "2023-01-01", "end": "2025-01-01"}, "A report covers at most two years"),
        ({"start": "2023-01-01", "end": "2025-01-02"}, "A report covers at most two years"),
        ({"start": "garbage", "end": "2025-01-01"}, "Invalid date: use the form YYYY-MM-DD"),
        ({"start": "2025-05-01junk", "end": "2025-05-02"}, "Invalid date: use the form YYYY-MM-DD"),
        ({"start": "9999-12-01", "end": "9999-12-31"}, "Reports cover the years 2000 to 2100"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "Reports cover the years 2000 to 2100"),
        ({"month": "9999-12"}, "Reports cover the years 2000 to 2100"),
        ({"month": "2025-13"}, "Invalid month: use the form YYYY-MM"),
        ({"month": "2025-05x"}, "Invalid month: use the form YYYY-MM"),
        ({"start": "2025-01-01"}, "Give both a start and an end date"),
        ({"focus": "team:abc"}, "Choose a team or an engineer from the list"),
        ({"focus": "team:999999"}, "Choose a team or an engineer from the list"),
    ],
)
async def test_bad_input_gets_a_422_page_with_a_clear_message(client, login, params, message):
    await login("jingli")
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    for path in ("/reports", "/reports/export.xlsx", "/reports/export.csv"):
        r = await client.get(path, params={"project": "DEMO", **params})
        assert r.status_code == 422, (path, params)
        assert message in r.text


async def test_bad_input_is_refused_in_chinese_by_default(client, login):
    await login("jingli")
    r = await client.get("/reports", params={"project": "DEMO", "start": "9999-12-01", "end": "9999-12-31"})
    assert r.status_code == 422
    assert "报表" in r.text and "2000" in r.text and "2100" in r.text


async def test_one_day_and_exactly_two_years_are_accepted(client, login, data):
    await login("jingli")
    one = await client.get("/reports", params={"project": "DEMO", "start": "2025-01-31", "end": "2025-01-31"})
    assert one.status_code == 200 and "1 / 1" in one.text  # G
    two = await client.get("/reports", params={"project": "DEMO", "start": "2023-01-01", "end": "2024-12-31"})
    assert two.status_code == 200


async def test_an_unknown_csv_sheet_is_refused(client, login):
    await login("jingli")
    r = await client.get("/reports/export.csv", params={**JAN, "sheet": "nonsense"})
    assert r.status_code == 422


async def test_bad_period_answers_json_to_an_api_token(client, engine):
    from server.security import token_hash

    async with engine.begin() as conn:
        sid = (await conn.execute(text("SELECT id FROM staff WHERE username = 'jingli'"))).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO api_tokens (staff_id, name, token_hash) VALUES (:s, 'reports', :h) "
                "ON CONFLICT DO NOTHING"
            ),
            {"s": sid, "h": token_hash("bx_reports_test_token")},
        )
    r = await client.get(
        "/reports/export.csv",
        params={"start": "2025-02-01", "end": "2025-01-01"},
        headers={"Authorization": "Bearer bx_reports_test_token"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "start"


# ---- exports: every figure equals the page's ----------------------------------------------

# (page column index, export column with the rate, export columns with its counts)
RATE_COLUMNS = [
    (3, "完成率", ("完成数", "受理数")),
    (4, "及时率", ("及时数", "时效已判定数")),
    (5, "回访率", ("回访数", "完成数")),
    (7, "返修率", ("返修数", "完成数")),
    (8, "一次修复率", ("一次修复数", "完成数")),
]


def _pct(value: Any) -> str:
    return value if isinstance(value, str) else stats.percent(value)


def _page_rows(page: Tables, table: str) -> dict[str, list[str]]:
    return {row[0]: row for row in page.tables[table][1:]}


def _sheet_rows(rows: list[tuple[Any, ...]] | list[list[str]]) -> dict[str, dict[str, Any]]:
    head = list(rows[0])
    return {str(r[0]): dict(zip(head, r, strict=False)) for r in rows[1:] if r and r[0]}


def _assert_rates_equal(page_rows: dict[str, list[str]], sheet: dict[str, dict[str, Any]]) -> None:
    assert set(page_rows) == set(sheet)
    for name, shown in page_rows.items():
        row = sheet[name]
        assert shown[1] == str(row["受理数"]) and shown[2] == str(row["完成数"]), name
        for column, rate, (num, den) in RATE_COLUMNS:
            assert shown[column].startswith(_pct(row[rate])), (name, rate)
            assert f"{row[num]}/{row[den]}" in shown[column], (name, rate)
        assert shown[6].startswith(_pct(row["满意率"])), name


async def _page_and_exports(client: Any) -> tuple[Tables, Any, str]:
    page = Tables((await client.get("/reports", params=JAN)).text)
    xlsx = await client.get("/reports/export.xlsx", params=JAN)
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(xlsx.content))
    body = (await client.get("/reports/export.csv", params=JAN)).content
    assert body.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    return page, book, body.decode("utf-8-sig")


def _csv_sheets(body: str) -> dict[str, list[list[str]]]:
    sheets: dict[str, list[list[str]]] = {}
    current: list[list[str]] = []
    for row in csv.reader(io.StringIO(body)):
        if len(row) == 1 and re.fullmatch(r"\[.+\]", row[0]):
            current = sheets.setdefault(row[0][1:-1], [])
        elif row:
            current.append(row)
    return sheets


async def test_every_sheet_of_the_xlsx_and_the_csv_equals_the_page(client, login, data):
    await login("jingli")  # in Chinese, as the exports are
    page, book, body = await _page_and_exports(client)
    assert book.sheetnames == ["总览", "按班组", "按师傅", "按类别", "超时", "未完成超24小时", "口径"]
    csv_sheets = _csv_sheets(body)
    assert list(csv_sheets) == book.sheetnames
    want = expected(data.rework_orders)

    # 总览: the KPIs, the times and the histogram.
    rows = list(book["总览"].iter_rows(values_only=True))
    header = next(r for r in rows if r and r[0] == "名称")
    ov = dict(zip(header, next(r for r in rows if r and r[0] == "全部"), strict=False))
    assert kpi(page, "completion") == (_pct(ov["完成率"]), f"{ov['完成数']} / {ov['受理数']}")
    timeliness = kpi(page, "timeliness")
    assert timeliness[0] == _pct(ov["及时率"])
    assert timeliness[1].startswith(f"{ov['及时数']} / {ov['时效已判定数']} ·")
    assert timeliness[1].endswith(f" {ov['时效待定数']}")
    assert kpi(page, "callback") == (_pct(ov["回访率"]), f"{ov['回访数']} / {ov['完成数']}")
    assert kpi(page, "satisfaction")[0] == _pct(ov["满意率"])
    assert kpi(page, "rework") == (_pct(ov["返修率"]), f"{ov['返修数']} / {ov['完成数']}")
    assert kpi(page, "first_fix") == (_pct(ov["一次修复率"]), f"{ov['一次修复数']} / {ov['完成数']}")
    times = [r for r in rows if r and isinstance(r[0], str) and r[0].startswith(("响应(", "到场(", "完工("))]
    assert [str(r[1]) for r in times] == [row[1] for row in page.tables["durations"][1:]]
    assert times[0][1:4] == (want["response"][0], want["response"][1] / 60, want["response"][2] / 60)
    start = next(i for i, r in enumerate(rows) if r and r[0] == "完工时长")
    assert [r[1] for r in rows[start + 1 : start + 7]] == want["histogram"]

    # 按班组 / 按师傅 / 按类别: every row and rate, against the page's tables; the csv alike.
    for sheet, table in (
        ("按班组", "rates-team"),
        ("按师傅", "rates-engineer"),
        ("按类别", "rates-category"),
    ):
        page_rows = _page_rows(page, table)
        _assert_rates_equal(page_rows, _sheet_rows(list(book[sheet].iter_rows(values_only=True))))
        _assert_rates_equal(page_rows, _sheet_rows(csv_sheets[sheet]))

    # 超时 and 未完成超24小时.
    breaches = [row for row in page.tables["breaches-table"][1:]]
    assert [
        [str(v) for v in r] for r in book["超时"].iter_rows(min_row=2, values_only=True) if r[0]
    ] == breaches
    assert csv_sheets["超时"][1:] == breaches
    unfinished = [row[0] for row in page.tables["unfinished-table"][1:]]
    assert unfinished == [data.numbers[n] for n in ("P", "E", "J", "R")]
    assert [
        r[0] for r in book["未完成超24小时"].iter_rows(min_row=3, values_only=True) if r and r[0]
    ] == unfinished
    assert [r[0] for r in csv_sheets["未完成超24小时"][2:]] == unfinished


async def test_one_csv_sheet_alone_parses_as_a_plain_table(client, login, data):
    await login("jingli")
    one = await client.get("/reports/export.csv", params={**JAN, "sheet": "按师傅"})
    rows = list(csv.DictReader(io.StringIO(one.content.decode("utf-8-sig"))))
    by = {row["名称"]: row for row in rows}
    assert by["张师傅"]["受理数"] == "6" and by["陈师傅"]["返修数"] == "1"


async def test_empty_period_exports_dashes_not_errors(client, login, data):
    await login("jingli")
    r = await client.get(
        "/reports/export.csv", params={"project": "DEMO", "month": "2024-06", "sheet": "总览"}
    )
    assert r.status_code == 200
    r = await client.get("/reports/export.xlsx", params={"project": "DEMO", "month": "2024-06"})
    row = next(
        x
        for x in load_workbook(io.BytesIO(r.content))["总览"].iter_rows(values_only=True)
        if x and x[0] == "全部"
    )
    assert row[1] == 0 and row[3] == "—"


async def test_an_empty_month_shows_zeros_and_no_data_on_the_page(client, login, data):
    await login("jingli")
    r = await client.get("/reports", params={"project": "DEMO", "month": "2024-06"})  # no orders
    assert r.status_code == 200
    page = Tables(r.text)
    for attr, _name, _text in stats.DEFINITIONS:
        value, counts = kpi(page, attr)
        assert value == "无数据" and counts.startswith("0 / 0"), (attr, value, counts)
    assert "无数据" in r.text.split('id="breaches"')[0]  # the charts say so too, never a division error


async def test_all_my_projects_is_a_scope_too(client, login, data):
    await login("jingli")
    r = await client.get("/reports", params={"project": "ALL", "month": "2025-01"})
    want = expected(data.rework_orders)
    assert r.status_code == 200 and f"{want['done']} / {want['received']}" in r.text


# ---- done when: last month of the demo ------------------------------------------------------


async def test_manager_opens_last_months_demo_report_and_downloads_the_same_numbers(client, login):
    """Issue 7's "done when": jingli opens /reports (last month by default) for the demo project,
    sees the five rates with charts, and the .xlsx he downloads says the same."""
    await login("jingli")
    r = await client.get("/reports")
    assert r.status_code == 200
    last = stats.last_month(datetime.now(UTC).astimezone(CST).date())
    assert f'value="{last.month}"' in r.text
    page = Tables(r.text)
    for rate in ("timeliness", "completion", "callback", "satisfaction", "rework"):
        value, counts = kpi(page, rate)
        assert value.endswith("%"), (rate, value)  # a figure, not "no data"
        assert re.match(r"\d+ / [1-9]\d*", counts), (rate, counts)
    for chart in ("overview", "team-timeliness", "engineer-satisfaction", "category-completion", "histogram"):
        assert f'data-chart="{chart}"' in r.text
    assert "<rect" in r.text
    link = re.search(r'href="(/reports/export\.xlsx\?[^"]+)"', r.text)
    assert link
    xlsx = await client.get(link.group(1).replace("&amp;", "&"))
    assert xlsx.status_code == 200
    rows = list(load_workbook(io.BytesIO(xlsx.content))["总览"].iter_rows(values_only=True))
    ov = dict(
        zip(
            next(x for x in rows if x and x[0] == "名称"),
            next(x for x in rows if x and x[0] == "全部"),
            strict=False,
        )
    )
    assert ov["受理数"] >= 20  # a month of demo history
    assert kpi(page, "completion") == (_pct(ov["完成率"]), f"{ov['完成数']} / {ov['受理数']}")
    assert kpi(page, "timeliness")[0] == _pct(ov["及时率"])
    assert kpi(page, "callback") == (_pct(ov["回访率"]), f"{ov['回访数']} / {ov['完成数']}")
    assert kpi(page, "satisfaction")[0] == _pct(ov["满意率"])
    assert kpi(page, "rework") == (_pct(ov["返修率"]), f"{ov['返修数']} / {ov['完成数']}")
    assert 0 < ov["返修数"] and 0 < ov["时效已判定数"] - ov["及时数"]  # rework and late orders in it


async def test_demo_history_covers_every_outcome_last_month(engine):
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(
            conn,
            frozenset(
                {(await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()}
            ),
        )
    today = datetime.now(UTC).astimezone(CST).date()
    rep = await reports_db.full_report(engine, projects, stats.last_month(today), datetime.now(UTC))
    c = rep.overview.counts
    assert c.received >= 25 and c.done > 0 and c.reworked > 0 and c.unsatisfied > 0
    assert c.timed > c.timely > 0  # late ones and timely ones
    assert c.done > c.first_fix  # unfinished then reappointed, reopened
    assert {b["kind"] for b in rep.breaches} >= {"arrival", "completion"}
    assert len(rep.breakdowns["engineer"]) >= 4 and len(rep.breakdowns["team"]) >= 2
    before = await reports_db.full_report(
        engine, projects, stats.last_month(stats.last_month(today).start), datetime.now(UTC)
    )
    assert before.overview.counts.received > 0  # and the month before, in part


def test_stories_start_on_the_day_the_docstring_says():
    assert STORIES["G"][2].astimezone(UTC).date() == date(2025, 1, 31)
    assert STORIES["H"][2].astimezone(UTC).date() == date(2025, 1, 31)  # still January in UTC
