"""Alerts through the persistence layer and the API: open, step, acknowledge, resolve, rota.

Time is passed explicitly (`now`), so these tests need no worker; test_alert_workers.py runs
the same paths through two real arq workers.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from server import clock
from server.domain.intake import validate_intake
from server.domain.vocab import Role
from server.persistence import alert_setup, alerts, breaches, oncall, orders
from server.persistence import staff as staff_db
from server.security import new_token, token_hash

SH = ZoneInfo("Asia/Shanghai")
CREATED: list[int] = []


async def tidy(engine) -> None:
    """Cancel the orders these tests opened and resolve their alerts, so other suites' boards stay small."""
    async with engine.begin() as conn:
        ids = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT id FROM orders WHERE status NOT IN ('closed', 'cancelled') AND (id = ANY(:ids) "
                    "OR id IN (SELECT order_id FROM alerts WHERE order_id IS NOT NULL))"
                ),
                {"ids": CREATED},
            )
        ]
        await conn.execute(
            text(
                "UPDATE order_clocks SET state = 'cancelled', ended_at = now() "
                "WHERE order_id = ANY(:ids) AND state IN ('running', 'paused')"
            ),
            {"ids": ids},
        )
        await conn.execute(
            text(
                "UPDATE orders SET status = 'cancelled', cancelled_at = now(), next_deadline = NULL, "
                "next_clock = NULL WHERE id = ANY(:ids)"
            ),
            {"ids": ids},
        )
        await conn.execute(
            text(
                "UPDATE alerts SET state = 'resolved', resolved_at = now(), next_step_at = NULL "
                "WHERE state <> 'resolved' AND (order_id = ANY(:ids) OR order_id IS NULL)"
            ),
            {"ids": ids},
        )
    CREATED.clear()


@pytest.fixture(autouse=True)
async def _tidy(engine) -> Any:
    yield
    await tidy(engine)


async def actor(engine, username: str) -> orders.ActorInfo:
    async with engine.connect() as conn:
        row = await staff_db.by_username(conn, username)
    assert row is not None
    return orders.ActorInfo(
        staff_id=row.id,
        name=row.display_name,
        role=Role(row.role),
        project_ids=row.project_ids,
        team_ids=row.team_ids,
        department=row.department_code,
    )


async def register(engine, now: datetime, by: str = "kefu", **over: Any) -> orders.Registered:
    raw = {
        "project": "DEMO",
        "kind": "entrapment",
        "area": "public",
        "reporter_name": "王先生",
        "reporter_phone": "13800001111",
        "summary": "3栋2号梯困人",
        "channel": "phone",
        **over,
    }
    intake = validate_intake(raw, now=now)
    elevator = raw.pop("elevator", None)
    with alerts.for_elevator(elevator):
        async with engine.begin() as conn:
            reg = await orders.register(conn, intake, await actor(engine, by), now)
    CREATED.append(reg.id)
    return reg


async def alert_of(engine, order_id: int, kind: str = "entrapment") -> dict[str, Any]:
    async with engine.connect() as conn:
        aid = (
            await conn.execute(
                text("SELECT id FROM alerts WHERE order_id = :o AND kind = :k ORDER BY id DESC"),
                {"o": order_id, "k": kind},
            )
        ).scalar()
        assert aid is not None, "no alert"
        a = await alerts.get(conn, aid)
    assert a is not None
    return a


async def events(engine, alert_id: int, action: str | None = None) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT action, details, actor_id FROM alert_events WHERE alert_id = :a "
                        "AND (CAST(:act AS text) IS NULL OR action = :act) ORDER BY id"
                    ),
                    {"a": alert_id, "act": action},
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


async def timeline(engine, order_id: int) -> list[str]:
    async with engine.connect() as conn:
        return [
            r[0]
            for r in await conn.execute(
                text("SELECT action FROM order_events WHERE order_id = :o ORDER BY id"), {"o": order_id}
            )
        ]


async def deliveries(engine, alert_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT dedupe_key, channel, recipient_id, state, payload, created_at, available_at FROM outbox "
                        "WHERE alert_id = :a ORDER BY id"
                    ),
                    {"a": alert_id},
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


async def step(engine, alert: dict[str, Any], now: datetime) -> Any:
    """Run the alert's next step the way the worker's job does (its index and current token)."""
    fresh = await alert_of(engine, alert["order_id"], alert["kind"])
    return await alerts.run_step(engine, fresh["id"], fresh["next_step_index"], fresh["step_token"], now)


# ---- opening and paging --------------------------------------------------------------------


async def test_an_entrapment_order_opens_its_alert_and_pages_the_on_call_engineer_at_once(engine):
    now = clock.now()
    reg = await register(engine, now)
    a = await alert_of(engine, reg.id)
    async with engine.connect() as conn:
        duty = await oncall.on_call_now(conn, reg.project_id, now)
    assert a["state"] == "triggered" and a["next_step_index"] == 1
    assert a["next_step_at"] == now + timedelta(minutes=1)  # DEFAULT_CHAIN: backup after 1 min
    first = a["chain"]["steps"][0]
    assert first["target"] == "oncall_primary" and first["recipients"][0]["id"] == duty["primary"]["id"]
    rows = await deliveries(engine, a["id"])
    mine = {(r["channel"], r["recipient_id"]) for r in rows if r["recipient_id"]}
    assert ("screen", duty["primary"]["id"]) in mine and ("sms", duty["primary"]["id"]) in mine
    assert all(r["dedupe_key"].startswith(f"alert:{a['id']}:0:") for r in rows)
    # No elevator named: every contractor of the project hears (the demo has one, by SMS).
    assert [r["payload"]["recipient"] for r in rows if ":contractor-" in r["dedupe_key"]] == ["迅达电梯维保"]
    assert all(r["created_at"] == now for r in rows)  # queued at the application's clock
    assert {"register", "alert", "page"} <= set(await timeline(engine, reg.id))
    assert [e["action"] for e in await events(engine, a["id"])] == ["started", "step"]


async def test_an_emergency_repair_opens_an_emergency_alert_and_a_normal_one_does_not(engine):
    now = clock.now()
    urgent = await register(
        engine,
        now,
        kind="repair",
        category="plumbing",
        urgency="emergency",
        public_area="1号地库",
        summary="地库水管爆裂",
    )
    normal = await register(
        engine,
        now,
        kind="repair",
        category="plumbing",
        urgency="normal",
        public_area="1号地库",
        summary="地库水龙头滴水",
    )
    assert (await alert_of(engine, urgent.id, "emergency"))["state"] == "triggered"
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM alerts WHERE order_id = :o"), {"o": normal.id})
        ).scalar() == 0


async def test_only_one_open_alert_per_order_and_kind(engine):
    now = clock.now()
    reg = await register(engine, now)
    async with engine.begin() as conn:
        again = await alerts.open_alert(conn, reg.id, "entrapment", now)
    assert again is None
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT count(*) FROM alerts WHERE order_id = :o"), {"o": reg.id})
        ).scalar() == 1


# ---- stepping ------------------------------------------------------------------------------


async def test_nobody_acknowledges_so_each_step_fires_at_its_time_once(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    assert await step(engine, a, t0 + timedelta(seconds=59)) is None  # not yet
    nxt = await step(engine, a, t0 + timedelta(seconds=61))
    assert nxt is not None and nxt.step_index == 2 and nxt.at == t0 + timedelta(minutes=3)
    # The job and the sweep both try again: nothing more happens.
    assert await alerts.run_step(engine, a["id"], 1, a["step_token"], t0 + timedelta(seconds=62)) is None
    await alerts.sweep(engine, t0 + timedelta(seconds=62))
    await step(engine, a, t0 + timedelta(minutes=3, seconds=1))
    await alerts.sweep(engine, t0 + timedelta(minutes=3, seconds=2))
    fired = [e["details"]["step"] for e in await events(engine, a["id"], "step")]
    assert fired == [0, 1, 2]
    targets = [e["details"]["target"] for e in await events(engine, a["id"], "step")]
    assert targets == ["oncall_primary", "oncall_backup", "supervisor"]
    keys = [r["dedupe_key"] for r in await deliveries(engine, a["id"])]
    assert len(keys) == len(set(keys))
    assert (await timeline(engine, reg.id)).count("page") >= 3


async def test_a_rota_edit_does_not_disturb_a_running_alert(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    frozen_backup = a["chain"]["steps"][1]["recipients"]
    async with engine.begin() as conn:
        shift_id = a["chain"]["shift_id"]
        old = (
            await conn.execute(
                text("SELECT primary_id, backup_id FROM oncall_shifts WHERE id = :s"), {"s": shift_id}
            )
        ).one()
        sup = (await staff_db.by_username(conn, "shifu3")).id
        await conn.execute(
            text("UPDATE oncall_shifts SET backup_id = :b WHERE id = :s"), {"b": sup, "s": shift_id}
        )
    try:
        await step(engine, a, t0 + timedelta(seconds=61))
        paged = (await events(engine, a["id"], "step"))[-1]["details"]["recipients"]
        assert paged == [r["name"] for r in frozen_backup]
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE oncall_shifts SET primary_id = :p, backup_id = :b WHERE id = :s"),
                {"p": old[0], "b": old[1], "s": shift_id},
            )


async def test_an_overdue_step_is_flagged_stuck_and_cleared_when_it_steps(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    assert a["id"] not in await alerts.audit(engine, t0 + timedelta(seconds=90))  # 30 s overdue: fine
    assert a["id"] in await alerts.audit(engine, t0 + timedelta(seconds=125))
    assert (await alert_of(engine, reg.id))["stuck_since"] is not None
    await step(engine, a, t0 + timedelta(seconds=126))
    assert (await alert_of(engine, reg.id))["stuck_since"] is None


# ---- acknowledge and resolve ---------------------------------------------------------------


async def test_acknowledging_between_steps_stops_the_escalation(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    async with engine.begin() as conn:
        r = await alerts.acknowledge(conn, a["id"], await actor(engine, "shifu1"), t0 + timedelta(seconds=30))
    assert r.changed and r.alert["state"] == "acknowledged"
    # The job queued for step 1 carries the old token: a no-op, now and later.
    assert await alerts.run_step(engine, a["id"], 1, a["step_token"], t0 + timedelta(minutes=10)) is None
    await alerts.sweep(engine, t0 + timedelta(minutes=10))
    assert [e["details"]["step"] for e in await events(engine, a["id"], "step")] == [0]
    ack = (await events(engine, a["id"], "acknowledged"))[0]
    assert ack["details"]["response_seconds"] == 30
    assert "acknowledge" in await timeline(engine, reg.id)
    async with engine.connect() as conn:
        state = (
            await conn.execute(
                text("SELECT state FROM order_clocks WHERE order_id = :o AND kind = 'ack'"), {"o": reg.id}
            )
        ).scalar()
    assert state == "met"


async def test_a_double_acknowledgement_writes_one_record(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    who = await actor(engine, "shifu2")
    async with engine.begin() as conn:
        first = await alerts.acknowledge(conn, a["id"], who, t0 + timedelta(seconds=5))
    async with engine.begin() as conn:
        second = await alerts.acknowledge(conn, a["id"], who, t0 + timedelta(seconds=9))
    assert first.changed and not second.changed
    assert second.alert["acknowledged_at"] == first.alert["acknowledged_at"]
    assert len(await events(engine, a["id"], "acknowledged")) == 1
    assert (await timeline(engine, reg.id)).count("acknowledge") == 1


async def test_two_simultaneous_acknowledgements_write_one_record(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)

    async def ack(user: str) -> alerts.AckResult:
        async with engine.begin() as conn:
            return await alerts.acknowledge(
                conn, a["id"], await actor(engine, user), t0 + timedelta(seconds=3)
            )

    results = await asyncio.gather(ack("shifu1"), ack("zhuguan"))
    assert sorted(r.changed for r in results) == [False, True]
    assert len(await events(engine, a["id"], "acknowledged")) == 1


async def _ack_and_cancel_at_once(engine) -> None:
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    kefu, shifu = await actor(engine, "kefu"), await actor(engine, "shifu1")

    async def ack() -> Any:
        async with engine.begin() as conn:
            return await alerts.acknowledge(conn, a["id"], shifu, t0)

    async def cancel() -> Any:
        async with engine.begin() as conn:
            return await orders.apply_action(
                conn, reg.number, "cancel", reg.version, kefu, {"reason": "误报"}, t0
            )

    await asyncio.gather(ack(), cancel())
    final = await alert_of(engine, reg.id)
    acks = await events(engine, a["id"], "acknowledged")
    resolved = await events(engine, a["id"], "resolved")
    assert final["state"] == "resolved" and len(resolved) == 1 and len(acks) <= 1
    assert (final["acknowledged_at"] is not None) == (len(acks) == 1)
    assert final["next_step_at"] is None
    assert await alerts.run_step(engine, a["id"], 1, final["step_token"], t0 + timedelta(minutes=5)) is None


async def test_acknowledge_racing_resolve_ends_resolved_with_consistent_records(engine):
    for _ in range(3):
        await _ack_and_cancel_at_once(engine)


async def test_the_engineer_on_site_resolves_the_alert(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    boss = await actor(engine, "zhuguan")
    shifu = await actor(engine, "shifu1")
    async with engine.begin() as conn:
        row = await orders.apply_action(
            conn, reg.number, "assign", reg.version, boss, {"assignee_id": shifu.staff_id}, t0
        )
    async with engine.begin() as conn:
        await orders.apply_action(
            conn,
            reg.number,
            "arrive",
            row["version"],
            shifu,
            {"code": reg.verification_code},
            t0 + timedelta(minutes=9),
        )
    a = await alert_of(engine, reg.id)
    assert a["state"] == "resolved" and a["resolved_by"] == shifu.staff_id
    assert "resolve" in await timeline(engine, reg.id)


async def test_acknowledged_but_not_resolved_in_time_reminds_the_acknowledger_and_the_supervisor_once(engine):
    t0 = clock.now() - timedelta(hours=2)
    reg = await register(engine, t0)  # the demo's entrapment chain reminds after 20 minutes
    a = await alert_of(engine, reg.id)
    shifu2 = await actor(engine, "shifu2")
    async with engine.begin() as conn:
        await alerts.acknowledge(conn, a["id"], shifu2, t0 + timedelta(seconds=20))
    assert a["id"] not in await alerts.remind(engine, t0 + timedelta(minutes=19))
    assert a["id"] in await alerts.remind(engine, t0 + timedelta(minutes=21))
    assert a["id"] not in await alerts.remind(engine, t0 + timedelta(minutes=45))
    assert len(await events(engine, a["id"], "reminder")) == 1
    assert "reminder" in await timeline(engine, reg.id)
    sent = {
        (r["recipient_id"], r["channel"])
        for r in await deliveries(engine, a["id"])
        if r["payload"]["purpose"] == "reminder"
    }
    async with engine.connect() as conn:
        boss = (await staff_db.by_username(conn, "zhuguan")).id
    assert sent == {(shifu2.staff_id, "sms"), (shifu2.staff_id, "screen"), (boss, "sms"), (boss, "screen")}
    # The acknowledger's tablet shows the reminder (and fetching it delivers the screen row).
    shown = await alerts.screen_alerts(
        engine, shifu2.staff_id, shifu2.project_ids, t0 + timedelta(minutes=22)
    )
    mine = next(x for x in shown if x["id"] == a["id"])
    assert mine["reminder"] and mine["state"] == "acknowledged"
    rows = [r for r in await deliveries(engine, a["id"]) if r["recipient_id"] == shifu2.staff_id]
    assert {
        r["state"] for r in rows if r["channel"] == "screen" and r["payload"]["purpose"] == "reminder"
    } == {"sent"}


async def test_the_reminder_threshold_is_the_chains(engine):
    async with engine.begin() as conn:
        pid = await staff_db.project_id_by_code(conn, "DEMO")
        await alert_setup.save_chain(
            conn, pid, "emergency", [{"target": "oncall_primary", "wait_after_minutes": 1}], 5, None
        )
    try:
        t0 = clock.now() - timedelta(hours=1)
        reg = await register(
            engine,
            t0,
            kind="repair",
            category="plumbing",
            urgency="emergency",
            public_area="1号地库",
            summary="爆管",
        )
        a = await alert_of(engine, reg.id, "emergency")
        async with engine.begin() as conn:
            await alerts.acknowledge(conn, a["id"], await actor(engine, "shifu1"), t0)
        assert a["id"] not in await alerts.remind(engine, t0 + timedelta(minutes=4))
        assert a["id"] in await alerts.remind(engine, t0 + timedelta(minutes=5))
    finally:
        async with engine.begin() as conn:
            await alert_setup.reset_chain(conn, pid, "emergency", None)


async def test_a_missed_arrival_of_an_acknowledged_emergency_opens_a_breach_alert(engine):
    t0 = clock.now()
    reg = await register(
        engine,
        t0,
        kind="repair",
        category="electrical",
        urgency="emergency",
        public_area="会所",
        summary="配电箱冒烟",
    )
    a = await alert_of(engine, reg.id, "emergency")
    async with engine.begin() as conn:
        await alerts.acknowledge(conn, a["id"], await actor(engine, "zhuguan"), t0)
        order = {"id": reg.id, "number": reg.number, "project_id": reg.project_id, "status": "new"}
        await alerts.on_breach(
            conn, {"kind": "arrival", "id": 0, "order_id": reg.id}, order, t0 + timedelta(minutes=11)
        )
        await alerts.on_breach(
            conn, {"kind": "progress", "id": 0, "order_id": reg.id}, order, t0
        )  # not alerting
    b = await alert_of(engine, reg.id, "breach")
    assert b["state"] == "triggered" and b["chain"]["clock"] == "arrival"


async def test_a_normal_orders_missed_arrival_opens_a_breach_alert_to_the_supervisor_and_its_next_step_is_returned(
    engine,
):
    t0 = clock.now() - timedelta(minutes=30)
    reg = await register(
        engine,
        t0,
        kind="repair",
        category="plumbing",
        urgency="normal",
        area="private",
        room="1-1-101",
        summary="水龙头漏水",
    )
    boss, shifu = await actor(engine, "zhuguan"), await actor(engine, "shifu3")
    async with engine.begin() as conn:
        await orders.apply_action(
            conn, reg.number, "assign", reg.version, boss, {"assignee_id": shifu.staff_id}, t0
        )
    recorded = await breaches.record_due(
        engine, t0 + timedelta(minutes=16), recorded_by="test", order_id=reg.id
    )
    arrival = next(r for r in recorded if r["kind"] == "arrival")
    b = await alert_of(engine, reg.id, "breach")
    assert [s["target"] for s in b["chain"]["steps"]] == ["supervisor", "manager"]
    assert b["chain"]["steps"][0]["recipients"][0]["name"] == "王主管"
    # The next step's job comes back to the caller, to enqueue after commit.
    (job,) = arrival["post_commit"]
    assert isinstance(job, alerts.Scheduled) and job.alert_id == b["id"] and job.step_index == 1
    assert job.at == t0 + timedelta(minutes=16 + 5)


async def test_a_normal_orders_missed_dispatch_opens_no_alert(engine):
    t0 = clock.now() - timedelta(minutes=30)
    reg = await register(
        engine,
        t0,
        kind="repair",
        category="plumbing",
        urgency="normal",
        area="private",
        room="1-1-102",
        summary="下水慢",
    )
    recorded = await breaches.record_due(
        engine, t0 + timedelta(minutes=20), recorded_by="test", order_id=reg.id
    )
    assert recorded and all(not r.get("post_commit") for r in recorded)
    async with engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM alerts WHERE order_id = :o"), {"o": reg.id})
        ).scalar()
    assert n == 0


# ---- the rota ------------------------------------------------------------------------------


async def test_the_demo_rota_names_who_is_on_call_by_day_night_and_weekend(engine):
    async with engine.connect() as conn:
        pid = await staff_db.project_id_by_code(conn, "DEMO")
        day = await oncall.on_call_now(conn, pid, datetime(2026, 11, 24, 10, 0, tzinfo=SH))  # a Tuesday
        night = await oncall.on_call_now(conn, pid, datetime(2026, 11, 25, 3, 0, tzinfo=SH))
        weekend = await oncall.on_call_now(conn, pid, datetime(2026, 11, 28, 20, 0, tzinfo=SH))  # Saturday
        gaps = await oncall.rota_gaps(conn, pid, datetime(2026, 11, 24, 10, 0, tzinfo=SH))
    assert (day["kind"], day["primary"]["name"], day["backup"]["name"]) == ("day", "张师傅", "刘师傅")
    assert (night["kind"], night["primary"]["name"]) == ("night", "刘师傅")
    assert (
        weekend["kind"] == "weekend"
        and day["supervisor"]["name"] == "王主管"
        and day["manager"]["name"] == "周经理"
    )
    assert gaps == []


# ---- HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def tokens(engine) -> dict[str, str]:
    out: dict[str, str] = {}
    async with engine.begin() as conn:
        for user in ("kefu", "zhuguan", "shifu1", "shifu2", "caiwu", "other_zhuguan", "jiankong"):
            row = await staff_db.by_username(conn, user)
            tok = new_token("bx")
            await staff_db.create_api_token(conn, row.id, token_hash(tok), "alert tests")
            out[user] = tok
    return out


@pytest.fixture
def api(client, tokens):
    async def call(method: str, path: str, user: str, body: Any = None) -> Any:
        return await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {tokens[user]}"}
        )

    return call


async def test_an_entrapment_order_created_through_the_api_opens_its_alert(api, engine):
    r = await api(
        "POST",
        "/api/v1/orders",
        "kefu",
        {
            "project": "DEMO",
            "kind": "entrapment",
            "reporter_name": "李女士",
            "reporter_phone": "13900002222",
            "summary": "5栋电梯困人",
            "channel": "phone",
        },
    )
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    r = await api("GET", "/api/v1/alerts?state=triggered", "zhuguan")
    assert r.status_code == 200
    mine = [a for a in r.json()["alerts"] if a["order_number"] == number]
    assert len(mine) == 1 and mine[0]["kind"] == "entrapment"
    steps = mine[0]["steps"]
    assert [s["target"] for s in steps] == ["oncall_primary", "oncall_backup", "supervisor", "manager"]
    assert steps[0]["fired"] and not steps[1]["fired"]
    assert any(d["channel"] == "screen" and d["step"] == 0 and d["round"] == 1 for d in mine[0]["deliveries"])
    assert mine[0]["position"] == {"index": 0, "step": 0, "round": 1, "steps": 4}
    assert {d["purpose"] for d in mine[0]["deliveries"]} == {"step", "contractor"}


async def test_acknowledging_through_the_api_is_idempotent(api, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    r1 = await api("POST", f"/api/v1/alerts/{a['id']}/acknowledge", "shifu1")
    r2 = await api("POST", f"/api/v1/alerts/{a['id']}/acknowledge", "shifu2")
    assert r1.status_code == 200 and r2.status_code == 200, r2.text
    assert r1.json()["changed"] and not r2.json()["changed"]
    assert r1.json()["acknowledged_at"] == r2.json()["acknowledged_at"]
    assert r2.json()["acknowledged_by"] == "张师傅"
    assert len(await events(engine, a["id"], "acknowledged")) == 1


async def test_who_may_acknowledge_through_the_api(api, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    assert (await api("POST", f"/api/v1/alerts/{a['id']}/acknowledge", "other_zhuguan")).status_code == 404
    assert (await api("POST", f"/api/v1/alerts/{a['id']}/acknowledge", "caiwu")).status_code == 403
    assert (await api("POST", "/api/v1/alerts/999999/acknowledge", "zhuguan")).status_code == 404
    other = (await api("GET", "/api/v1/alerts", "other_zhuguan")).json()["alerts"]
    assert all(x["project"] == "OTHER" for x in other)
    assert (await api("GET", "/api/v1/alerts?state=bogus", "zhuguan")).status_code == 422


async def test_the_tablet_acknowledges_with_one_tap_and_reloads(client, login, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    token = await login("shifu1")
    r = await client.post(
        f"/alerts/{a['id']}/acknowledge",
        headers={"X-CSRF-Token": token, "HX-Request": "true", "HX-Target": "tablet-list"},
    )
    assert r.status_code == 200 and r.headers["hx-refresh"] == "true"
    assert (await alert_of(engine, reg.id))["state"] == "acknowledged"


async def test_the_alerts_page_shows_steps_and_deliveries_to_the_supervisor(client, login, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    await login("zhuguan")
    r = await client.get("/alerts")
    assert r.status_code == 200
    assert f'id="alert-{a["id"]}"' in r.text and reg.number in r.text and 'data-fired="true"' in r.text
    r = await client.get("/alerts/list")
    assert f'id="alert-{a["id"]}"' in r.text


async def test_an_engineer_cannot_open_the_alerts_page(client, login):
    await login("shifu1")
    assert (await client.get("/alerts")).status_code == 403


async def test_the_rota_page_lists_gaps_and_refuses_bad_shifts_in_place(client, login, engine):
    token = await login("other_zhuguan")
    r = await client.get("/admin/rota")
    assert r.status_code == 200 and 'id="rota-gaps"' in r.text  # the outsider project has no rota yet
    async with engine.connect() as conn:
        shifu = (await staff_db.by_username(conn, "other_shifu")).id
    bad = {
        "_csrf": token,
        "kind": "day",
        "starts": "09:00",
        "ends": "17:30",
        "primary_id": str(shifu),
        "backup_id": str(shifu),
    }
    r = await client.post("/admin/rota", data=bad)
    assert r.status_code == 422 and 'data-field="backup_id"' in r.text
    r = await client.post("/admin/rota", data={**bad, "starts": "9 o'clock", "backup_id": ""})
    assert r.status_code == 422 and 'data-field="starts"' in r.text
    r = await client.post("/admin/rota", data={**bad, "backup_id": ""}, follow_redirects=False)
    assert r.status_code == 303
    r = await client.get(r.headers["location"])
    assert 'data-shift="' in r.text and 'id="rota-gaps"' in r.text  # nights are still uncovered
    async with engine.connect() as conn:
        pid = await staff_db.project_id_by_code(conn, "OTHER")
        shifts = await oncall.list_shifts(conn, pid)
        audit = (
            await conn.execute(text("SELECT count(*) FROM admin_events WHERE subject = 'oncall_shift'"))
        ).scalar()
    assert len(shifts) == 1 and audit >= 1
    r = await client.post(
        f"/admin/rota/{shifts[0]['id']}/delete", data={"_csrf": token}, follow_redirects=False
    )
    assert r.status_code == 303
    async with engine.connect() as conn:
        assert await oncall.list_shifts(conn, pid) == []


async def test_only_admins_and_supervisors_edit_the_rota(client, login):
    await login("shifu1")
    assert (await client.get("/admin/rota")).status_code == 403


async def test_the_oncall_api_names_the_engineer_and_the_gaps(api):
    r = await api("GET", "/api/v1/oncall?project=DEMO", "jiankong")
    assert r.status_code == 200 and r.json()["gaps"] == [] and r.json()["on_call"]["primary"]["name"]
    assert (await api("GET", "/api/v1/oncall?project=DEMO", "other_zhuguan")).status_code == 404


async def test_the_deadline_job_enqueues_a_breach_alerts_next_step_after_commit(engine, settings):
    from arq.connections import RedisSettings, create_pool
    from arq.jobs import Job, JobStatus

    from workers import jobs

    t0 = clock.now() - timedelta(minutes=30)
    reg = await register(
        engine,
        t0,
        kind="repair",
        category="plumbing",
        urgency="normal",
        area="private",
        room="1-1-201",
        summary="漏水",
    )
    boss, shifu = await actor(engine, "zhuguan"), await actor(engine, "shifu4")
    async with engine.begin() as conn:
        await orders.apply_action(
            conn, reg.number, "assign", reg.version, boss, {"assignee_id": shifu.staff_id}, t0
        )
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        assert await jobs.check_order_deadline({"engine": engine, "redis": pool}, reg.id) >= 1
        b = await alert_of(engine, reg.id, "breach")
        job = Job(f"escalate:{b['id']}:{b['next_step_index']}:{b['step_token']}", pool)
        assert await job.status() is JobStatus.deferred  # not left for the sweep to find
    finally:
        await pool.aclose()
