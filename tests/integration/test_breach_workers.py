"""Breaches recorded by real arq worker processes: exactly once, on time, across crashes.

The workers are separate processes on the test database and Redis; the test clock (table
app_clock + NOTIFY 'clock') moves time for every process at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from server import clock
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence.orders import ActorInfo
from tests.work_orders import retire

ROOT = Path(__file__).resolve().parents[2]
DESK = ActorInfo(staff_id=None, name="测试", role=None)


def start_worker(env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=out,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def two_workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_worker(), start_worker()]
    try:
        yield procs
    finally:
        for p in procs:
            stop(p)


async def set_clock(engine: Any, seconds: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE app_clock SET offset_seconds = :s WHERE id = 1"), {"s": seconds})
        await conn.execute(text("SELECT pg_notify('clock', :p)"), {"p": str(seconds)})
    clock.set_offset(seconds)


@pytest.fixture
async def test_clock(engine) -> AsyncIterator[None]:
    yield
    await set_clock(engine, 0)


async def new_orders(engine: Any, n: int, summary: str) -> list[int]:
    ids = []
    async with engine.begin() as conn:
        for i in range(n):
            intake = validate_intake(
                {
                    "project": "DEMO",
                    "kind": "repair",
                    "category": "plumbing",
                    "room": f"2-1-{1 + i % 13}0{1 + i % 2}",
                    "reporter_name": "测试",
                    "reporter_phone": "13900000000",
                    "summary": summary,
                },
                now=clock.now(),
            )
            reg = await orders_db.register(conn, intake, DESK, clock.now())
            ids.append(reg.id)
    return ids


async def wait_for(engine: Any, sql: str, params: dict[str, Any], want: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    got = -1
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            got = (await conn.execute(text(sql), params)).scalar_one()
        if got >= want:
            return got
        await asyncio.sleep(0.25)
    return got


BREACHES = "SELECT count(*) FROM breaches WHERE order_id = ANY(:ids) AND clock_kind = 'dispatch'"


async def test_a_burst_of_due_orders_is_recorded_once_each_by_two_workers(engine, two_workers, test_clock):
    ids = await new_orders(engine, 30, "两个 worker 的突发")
    await asyncio.sleep(2)  # workers up
    await set_clock(engine, 6 * 60)  # past the 5-minute pool deadline
    got = await wait_for(engine, BREACHES, {"ids": ids}, 30, 25)
    assert got == 30
    await asyncio.sleep(1.5)  # give a duplicate every chance to appear
    async with engine.connect() as conn:
        assert (await conn.execute(text(BREACHES), {"ids": ids})).scalar_one() == 30
        events = (
            await conn.execute(
                text("SELECT count(*) FROM order_events WHERE order_id = ANY(:ids) AND action = 'breach'"),
                {"ids": ids},
            )
        ).scalar_one()
        notes = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT dedupe_key) FROM outbox WHERE order_id = ANY(:ids) AND topic = 'breach'"
                ),
                {"ids": ids},
            )
        ).one()
        supervisors = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id JOIN projects p ON p.id = sp.project_id "
                    "WHERE p.code = 'DEMO' AND s.role = 'supervisor' AND s.active"
                )
            )
        ).scalar_one()
    assert events == 30
    assert notes[0] == notes[1] == 30 * supervisors


async def _deadline_of(engine: Any, order_id: int, kind: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT deadline FROM order_clocks WHERE order_id = :o AND kind = :k "
                    "ORDER BY generation DESC LIMIT 1"
                ),
                {"o": order_id, "k": kind},
            )
        ).scalar_one()


async def test_the_scheduled_job_records_the_breach_with_no_sweep_running(engine, test_clock):
    """The job, not the sweep, records it: the worker runs without a sweep, and a twin order
    whose job was never enqueued stays unrecorded. (How fast: `make bench`, breach_lag_*.)"""
    from server.config import get_settings
    from server.runtime import Runtime
    from workers.scheduling import schedule_deadline

    worker = start_worker({"SWEEP_SECONDS": "0"})
    try:
        scheduled, unscheduled = await new_orders(engine, 2, "定时任务")
        deadline = await _deadline_of(engine, scheduled, "dispatch")
        # 1.5 s before the deadline, schedule as the web process does after commit: the job waits.
        await set_clock(
            engine, (deadline - clock.now()).total_seconds() - 1.5 + clock.offset().total_seconds()
        )
        rt = Runtime.create(get_settings())
        try:
            assert await schedule_deadline(rt, scheduled)
        finally:
            await rt.stop()
        await set_clock(engine, clock.offset().total_seconds() + 60)  # both orders well past due
        got = await wait_for(engine, BREACHES, {"ids": [scheduled]}, 1, 30)
        assert got == 1
        async with engine.connect() as conn:
            by = (
                await conn.execute(
                    text("SELECT recorded_by FROM breaches WHERE order_id = :o AND clock_kind = 'dispatch'"),
                    {"o": scheduled},
                )
            ).scalar_one()
            twin = (await conn.execute(text(BREACHES), {"ids": [unscheduled]})).scalar_one()
        assert by == "scheduled"
        assert twin == 0
    finally:
        stop(worker)


async def _lock_waiters(engine: Any) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
        ).scalar_one()


async def test_a_worker_killed_mid_transaction_loses_and_duplicates_nothing(engine, test_clock):
    """The victim has claimed the due clocks and written part of their breaches when it dies."""
    ids = await new_orders(engine, 60, "worker 被杀")
    victim = start_worker()
    survivor = None
    holder = await engine.connect()
    try:
        # Hold one order's row: the victim's sweep stops there, its transaction half written.
        await holder.begin()
        await holder.execute(text("SELECT 1 FROM orders WHERE id = :o FOR UPDATE"), {"o": ids[-1]})
        await asyncio.sleep(2)
        await set_clock(engine, 6 * 60)
        waiting = 0
        for _ in range(120):
            waiting = await _lock_waiters(engine)
            if waiting:
                break
            await asyncio.sleep(0.25)
        assert waiting, "the victim never reached the held row"
        async with engine.connect() as conn:
            # Nothing of an unfinished transaction is visible.
            assert (await conn.execute(text(BREACHES), {"ids": ids})).scalar_one() == 0
        victim.send_signal(signal.SIGKILL)
        victim.wait(5)
        await holder.rollback()  # the dead worker's backend finds its client gone and rolls back
        survivor = start_worker()
        got = await wait_for(engine, BREACHES, {"ids": ids}, 60, 45)
        assert got == 60
        await asyncio.sleep(1)
        async with engine.connect() as conn:
            dup, events, notes = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) - count(DISTINCT clock_id) FROM breaches WHERE order_id = ANY(:ids)), "
                        "(SELECT count(*) FROM order_events WHERE order_id = ANY(:ids) AND action = 'breach'), "
                        "(SELECT count(*) - count(DISTINCT dedupe_key) FROM outbox WHERE order_id = ANY(:ids))"
                    ),
                    {"ids": ids},
                )
            ).one()
        assert (dup, events, notes) == (0, 60, 0)
    finally:
        await holder.close()
        stop(victim)
        if survivor:
            stop(survivor)


async def test_redis_down_the_order_is_saved_and_the_sweep_catches_up(engine, test_clock, tmp_path):
    """The web path keeps serving without Redis; when Redis returns, the sweep records the breach."""
    from server.config import get_settings
    from server.devservices import EmbeddedValkey
    from server.runtime import Runtime
    from server.web.api_orders import create_order_from

    valkey = EmbeddedValkey(tmp_path)
    valkey.start()
    url = valkey.url
    valkey.stop()  # Redis is down
    settings = get_settings()
    from dataclasses import replace

    rt = Runtime.create(replace(settings, redis_url=url))
    from server.auth import Principal
    from server.domain.vocab import Role

    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()
        kefu = (await conn.execute(text("SELECT id FROM staff WHERE username = 'kefu'"))).scalar_one()
    p = Principal(
        kind="staff",
        via="token",
        name="李客服",
        project_ids=frozenset({pid}),
        staff_id=kefu,
        role=Role.DISPATCHER,
    )
    reg = await create_order_from(
        rt,
        p,
        {
            "project": "DEMO",
            "kind": "repair",
            "category": "plumbing",
            "room": "3-1-101",
            "reporter_name": "测试",
            "reporter_phone": "13900000001",
            "summary": "Redis 宕机时报修",
        },
    )
    await rt.stop()
    async with engine.connect() as conn:
        saved = (
            await conn.execute(
                text("SELECT next_deadline IS NOT NULL FROM orders WHERE id = :o"), {"o": reg.id}
            )
        ).scalar_one()
    assert saved  # the order and its clocks are committed; only its job is missing
    valkey.port = int(url.rsplit(":", 1)[1].split("/")[0])
    valkey.preferred_port = valkey.port
    valkey.start()
    worker = start_worker({"REDIS_URL": valkey.url})
    try:
        await set_clock(engine, 6 * 60)
        got = await wait_for(engine, BREACHES, {"ids": [reg.id]}, 1, 25)
        assert got == 1
    finally:
        stop(worker)
        valkey.stop()


async def test_pause_and_resume_move_the_deadline(engine, test_clock):
    from server.persistence import clocks as clocks_db

    [oid] = await new_orders(engine, 1, "挂起恢复")
    async with engine.begin() as conn:
        number = (
            await conn.execute(text("SELECT number FROM orders WHERE id = :o"), {"o": oid})
        ).scalar_one()
        shifu = await __import__("server.persistence.staff", fromlist=["x"]).by_username(conn, "shifu1")
        eng = ActorInfo(
            staff_id=shifu.id,
            name=shifu.display_name,
            role=shifu.role,
            project_ids=shifu.project_ids,
            team_ids=shifu.team_ids,
        )
        await orders_db.apply_action(conn, number, "grab", 1, eng, {}, clock.now())
        row = await orders_db.get_by_number(conn, number)
        await orders_db.apply_action(
            conn, number, "arrive", row["version"], eng, {"code": row["verification_code"]}, clock.now()
        )
        before = {
            c["kind"]: c["deadline"] for c in await clocks_db.clocks_of(conn, oid) if c["state"] == "running"
        }
        row = await orders_db.get_by_number(conn, number)
        await orders_db.apply_action(
            conn,
            number,
            "pause",
            row["version"],
            eng,
            {"reason": "parts", "promised_at": (clock.now() + timedelta(days=1)).isoformat()},
            clock.now(),
        )
        assert all(
            c["state"] != "running" or c["kind"] == "callback" for c in await clocks_db.clocks_of(conn, oid)
        )
    await set_clock(engine, 3600)
    async with engine.begin() as conn:
        row = await orders_db.get_by_number(conn, number)
        await orders_db.apply_action(conn, number, "resume", row["version"], eng, {}, clock.now())
        after = {
            c["kind"]: c["deadline"] for c in await clocks_db.clocks_of(conn, oid) if c["state"] == "running"
        }
    assert after["completion"] - before["completion"] >= timedelta(minutes=59)


# ---- scheduling: one waiting job per order, at its next deadline, enqueued after commit -------


async def _principal(engine: Any, username: str) -> Any:
    from server.auth import _principal_from_staff
    from server.persistence import staff as staff_db

    async with engine.connect() as conn:
        row = await staff_db.by_username(conn, username)
    assert row is not None
    return _principal_from_staff(row, "token")


async def _next_due_ms(engine: Any, order_id: int) -> int:
    async with engine.connect() as conn:
        d = (
            await conn.execute(
                text(
                    "SELECT min(deadline) FROM order_clocks WHERE order_id = :o AND state = 'running' "
                    "AND breached_at IS NULL"
                ),
                {"o": order_id},
            )
        ).scalar_one()
    return int(d.timestamp() * 1000)


@pytest.fixture
async def rt(engine) -> AsyncIterator[Any]:
    from server.config import get_settings
    from server.runtime import Runtime

    runtime = Runtime.create(get_settings())
    yield runtime
    await runtime.stop()


async def _register(rt: Any, summary: str, room: str = "5-1-301", category: str = "plumbing") -> Any:
    from server.web.api_orders import create_order_from

    return await create_order_from(
        rt,
        await _principal(rt.engine, "kefu"),
        {
            "project": "DEMO",
            "kind": "repair",
            "category": category,
            "room": room,
            "reporter_name": "测试",
            "reporter_phone": "13900000002",
            "summary": summary,
        },
    )


async def _act(rt: Any, username: str, number: str, action: str, **body: Any) -> dict[str, Any]:
    from server.web.api_orders import run_action

    async with rt.engine.connect() as conn:
        row = await orders_db.get_by_number(conn, number)
    return await run_action(
        rt, await _principal(rt.engine, username), number, action, {"version": row["version"], **body}
    )


async def test_a_new_order_waits_in_redis_as_one_job_at_its_next_deadline(engine, redis, rt, test_clock):
    from workers.scheduling import schedule_deadline, waiting_jobs

    reg = await _register(rt, "新单排程")
    due = await _next_due_ms(engine, reg.id)
    [(job_id, run_at)] = await waiting_jobs(redis, reg.id)
    assert job_id == f"deadline:{reg.id}:{due}"
    assert abs(run_at - due) <= 1  # Redis runs it at the deadline (ms rounding)
    await schedule_deadline(rt, reg.id)  # a second request scheduling the same deadline
    assert len(await waiting_jobs(redis, reg.id)) == 1


async def test_pause_and_resume_replace_the_waiting_job(engine, redis, rt, test_clock):
    from workers.scheduling import waiting_jobs

    reg = await _register(rt, "挂起恢复排程", room="5-1-102")
    shifu1 = await _principal(engine, "shifu1")
    await _act(rt, "kefu", reg.number, "assign", assignee_id=shifu1.staff_id)
    await _act(rt, "shifu1", reg.number, "accept")
    await _act(rt, "shifu1", reg.number, "arrive", code=reg.verification_code)
    [(before, _)] = await waiting_jobs(redis, reg.id)
    promised = (clock.now() + timedelta(days=1)).isoformat()
    await _act(rt, "shifu1", reg.number, "pause", reason="parts", promised_at=promised)
    assert await waiting_jobs(redis, reg.id) == []  # every clock stopped: nothing to check
    await set_clock(engine, 3600)
    await _act(rt, "shifu1", reg.number, "resume")
    due = await _next_due_ms(engine, reg.id)
    [(job_id, run_at)] = await waiting_jobs(redis, reg.id)
    assert job_id == f"deadline:{reg.id}:{due}" != before
    assert abs(run_at - (due - 3_600_000)) <= 1  # Redis' wall clock is an hour behind the test clock


async def test_reassignment_after_a_recorded_breach_schedules_the_next_unrecorded_deadline(
    engine, redis, rt, test_clock
):
    from server.persistence import breaches
    from workers.scheduling import waiting_jobs

    reg = await _register(rt, "改派排程", room="5-1-201")
    shifu1, shifu2 = await _principal(engine, "shifu1"), await _principal(engine, "shifu2")
    await _act(rt, "kefu", reg.number, "assign", assignee_id=shifu1.staff_id)
    await set_clock(engine, 16 * 60)  # arrival (15 min) and first callback missed
    recorded = await breaches.record_due(engine, clock.now(), recorded_by="sweep", order_id=reg.id)
    assert {r["kind"] for r in recorded} >= {"arrival"}
    await _act(rt, "kefu", reg.number, "reassign", assignee_id=shifu2.staff_id, reason="换人")
    jobs = await waiting_jobs(redis, reg.id)
    due = await _next_due_ms(engine, reg.id)
    assert [j for j, _ in jobs] == [f"deadline:{reg.id}:{due}"]
    assert due > int(clock.now().timestamp() * 1000)  # not the breach already recorded


# ---- shift jobs per project, in the project's time ---------------------------------------------


async def _at_local(engine: Any, day_offset: int, hh: int, mm: int) -> Any:
    """Move the test clock to hh:mm Asia/Shanghai, ``day_offset`` days after today."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    day = datetime.now(zone).date() + timedelta(days=day_offset)
    target = datetime(day.year, day.month, day.day, hh, mm, tzinfo=zone)
    await set_clock(engine, (target - datetime.now(zone)).total_seconds())
    return target


async def _shift_rows(engine: Any, notice: str, day: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.recipient_id, o.payload FROM outbox o JOIN projects p ON p.id = o.project_id "
                "WHERE p.code = 'DEMO' AND o.topic = 'shift' AND o.dedupe_key LIKE :k ORDER BY o.recipient_id"
            ),
            {"k": f"shift:{notice}:%:{day}:%"},
        )
        return [dict(r._mapping) for r in rows]


async def test_shift_jobs_send_each_list_once_per_project_and_day(engine, test_clock):
    from workers.shift_jobs import shift_notices

    ctx = {"engine": engine}
    await _at_local(engine, 30, 10, 0)  # a morning a month ahead: the day's lists are ours alone
    [morning] = await new_orders(engine, 1, "上午报修的工单")
    async with engine.connect() as conn:
        number = (
            await conn.execute(text("SELECT number FROM orders WHERE id = :o"), {"o": morning})
        ).scalar()
        audience = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    "JOIN projects p ON p.id = sp.project_id WHERE p.code = 'DEMO' AND s.active "
                    "AND s.role IN ('supervisor', 'dispatcher')"
                )
            )
        ).scalar_one()

    when = await _at_local(engine, 30, 17, 5)  # 17:00: slips of orders taken before 14:00
    assert await shift_notices(ctx) >= audience
    slips = await _shift_rows(engine, "slips", when.date())
    assert len(slips) == audience
    assert number in slips[0]["payload"]["numbers"]
    assert await shift_notices(ctx) == 0  # a second run the same minute (or a second worker)
    assert len(await _shift_rows(engine, "slips", when.date())) == audience

    await _at_local(engine, 30, 17, 20)  # 15 min before the desk closes: the end-of-shift list
    await shift_notices(ctx)
    eos = await _shift_rows(engine, "end_of_shift", when.date())
    assert len(eos) == audience and eos[0]["payload"]["count"] >= 1

    await _at_local(engine, 30, 21, 0)  # taken at night by the monitoring center
    [night] = await new_orders(engine, 1, "夜间报修的工单")
    async with engine.connect() as conn:
        night_number = (
            await conn.execute(text("SELECT number FROM orders WHERE id = :o"), {"o": night})
        ).scalar()
    nxt = await _at_local(engine, 31, 9, 5)  # 09:00 handover to the morning shift
    await shift_notices(ctx)
    handover = await _shift_rows(engine, "handover", nxt.date())
    assert len(handover) == audience
    assert night_number in handover[0]["payload"]["numbers"]
    assert number not in handover[0]["payload"]["numbers"]  # taken by day, not handed over

    later = await _at_local(engine, 32, 8, 5)  # daily: unfinished over 24 h
    await shift_notices(ctx)
    over = await _shift_rows(engine, "over_24h", later.date())
    assert len(over) == audience
    assert over[0]["payload"]["count"] >= 2
    await retire(engine, number, night_number)


# ---- persistence leaves the arithmetic to server/domain/clocks.py --------------------------------


@pytest.fixture
async def hvac_on_business_hours(engine) -> AsyncIterator[None]:
    """DEMO counts business hours (09:00-17:30) for the completion of its hvac orders: 4 h."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projects SET business_hours = '09:00-17:30' WHERE code = 'DEMO'"))
        await conn.execute(
            text(
                "INSERT INTO sla_rules (project_id, category, clock, minutes, business_hours) "
                "SELECT id, 'hvac', 'completion', 240, true FROM projects WHERE code = 'DEMO'"
            )
        )
    yield
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projects SET business_hours = NULL WHERE code = 'DEMO'"))
        await conn.execute(
            text("UPDATE sla_rules SET active = false WHERE category = 'hvac' AND minutes = 240")
        )


async def test_a_pause_overnight_carries_the_business_time_left(
    engine, rt, test_clock, hvac_on_business_hours
):
    """Paused at 17:00 with 3.5 business hours left, resumed at 10:00 the next working day: due at 13:30."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from server.domain.clocks import is_chinese_workday

    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    n = 1  # the next two working days in a row (chinese_calendar: holidays, 调休)
    while not all(is_chinese_workday(today + timedelta(days=n + i)) for i in (0, 1)):
        n += 1
    day = today + timedelta(days=n)

    def local(days: int, hh: int, mm: int) -> datetime:
        d = day + timedelta(days=days)
        return datetime(d.year, d.month, d.day, hh, mm, tzinfo=zone)

    async def completion() -> datetime:
        d = await _deadline_of(engine, reg.id, "completion")
        return d.astimezone(zone).replace(second=0, microsecond=0)  # the test clock moves on

    await _at_local(engine, n, 16, 30)
    reg = await _register(rt, "空调不制冷", room="5-1-101", category="hvac")
    assert await completion() == local(1, 12, 0)  # 1 h today, 3 h tomorrow morning
    shifu1 = await _principal(engine, "shifu1")
    await _act(rt, "kefu", reg.number, "assign", assignee_id=shifu1.staff_id)
    await _act(rt, "shifu1", reg.number, "accept")
    await _act(rt, "shifu1", reg.number, "arrive", code=reg.verification_code)
    await _at_local(engine, n, 17, 0)
    promised = local(2, 12, 0).isoformat()
    await _act(rt, "shifu1", reg.number, "pause", reason="parts", promised_at=promised)
    await _at_local(engine, n + 1, 10, 0)
    await _act(rt, "shifu1", reg.number, "resume")
    assert await completion() == local(1, 13, 30)  # not 17 wall-clock hours later
    await retire(engine, reg.number)


# ---- a row that cannot be computed is skipped, logged and retried ------------------------------


async def test_a_clock_that_fails_to_record_is_skipped_logged_and_retried(engine, test_clock, caplog):
    from server.persistence import breaches

    bad, good = await new_orders(engine, 2, "坏数据")
    async with engine.begin() as conn:
        # A clock whose kind no code knows: recording its breach raises.
        await conn.execute(
            text(
                "INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, state) "
                "VALUES (:o, 'no_such_clock', 1, :t, :t, 1, 'running')"
            ),
            {"o": bad, "t": clock.now() - timedelta(minutes=1)},
        )
    await set_clock(engine, 6 * 60)
    with caplog.at_level("ERROR", logger="server.persistence.breaches"):
        recorded = await breaches.record_due(engine, clock.now(), recorded_by="sweep")
    kinds = {(r["order_id"], r["kind"]) for r in recorded}
    assert (good, "dispatch") in kinds and (bad, "dispatch") in kinds  # the loop went on past it
    assert (bad, "no_such_clock") not in kinds
    assert "retried in a minute" in caplog.text
    caplog.clear()
    soon = await breaches.record_due(engine, clock.now(), recorded_by="sweep", order_id=bad)
    assert soon == [] and "no_such_clock" not in caplog.text  # not retried at once: no busy loop
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE order_clocks SET kind = 'progress' WHERE order_id = :o AND kind = 'no_such_clock'"),
            {"o": bad},
        )
    assert await breaches.record_due(engine, clock.now(), recorded_by="sweep", order_id=bad) == []
    await set_clock(engine, 6 * 60 + 61)  # a minute later the fixed row is recorded
    again = await breaches.record_due(engine, clock.now(), recorded_by="sweep", order_id=bad)
    assert [(r["order_id"], r["kind"]) for r in again] == [(bad, "progress")]


# ---- who hears of each breach (DOMAIN.md §5–7) -------------------------------------------------


async def test_each_kind_of_breach_reaches_its_audience_through_the_outbox(engine, test_clock):
    from server.persistence import breaches

    [oid] = await new_orders(engine, 1, "升级路线")
    async with engine.begin() as conn:
        team, lead = (
            await conn.execute(
                text(
                    "SELECT t.id, t.lead_id FROM teams t JOIN projects p ON p.id = t.project_id "
                    "WHERE p.code = 'DEMO' AND t.name = '水电班'"
                )
            )
        ).one()
        await conn.execute(text("UPDATE orders SET team_id = :t WHERE id = :o"), {"t": team, "o": oid})
        for kind in ("progress", "arrival", "first_callback", "callback", "ack"):
            await conn.execute(
                text(
                    "INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, state) "
                    "VALUES (:o, :k, 1, :t, :t, 1, 'running')"
                ),
                {"o": oid, "k": kind, "t": clock.now()},
            )
        staff = {
            role: {
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT s.id FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                        "JOIN projects p ON p.id = sp.project_id WHERE p.code = 'DEMO' AND s.role = :r AND s.active"
                    ),
                    {"r": role},
                )
            }
            for role in ("supervisor", "dispatcher", "manager")
        }
    assert lead and all(staff.values())
    await set_clock(engine, 2 * 24 * 3600)  # every clock of the order is past due
    now = clock.now()
    recorded = await breaches.record_due(engine, now, recorded_by="sweep", order_id=oid)
    assert {r["kind"] for r in recorded} == {
        "dispatch",
        "progress",
        "arrival",
        "first_callback",
        "completion",
        "callback",
        "ack",
    }
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT payload->>'clock', recipient_id, available_at, dedupe_key FROM outbox "
                    "WHERE order_id = :o AND topic = 'breach'"
                ),
                {"o": oid},
            )
        ).all()
    heard: dict[str, set[int]] = {}
    later: dict[str, set[int]] = {}
    for kind, rid, at, _key in rows:
        (later if at > now else heard).setdefault(kind, set()).add(rid)
    sup, disp, mgr = staff["supervisor"], staff["dispatcher"], staff["manager"]
    assert heard == {
        "dispatch": sup,  # unclaimed pool → engineering supervisor
        "progress": {lead},  # no progress for 2 h → team lead
        "arrival": disp | sup,  # arrival missed → the dispatcher's apology call and the supervisor
        "first_callback": disp,  # first callback due → the dispatcher's callback list
        "completion": sup,  # completion missed → supervisor …
        "callback": disp | mgr,
        "ack": sup,
    }
    assert later == {"completion": mgr}  # … then manager
    assert len({key for *_x, key in rows}) == len(rows)  # one dedupe key each
    # Recording again (a second worker, a retried job) queues nothing more.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE order_clocks SET breached_at = NULL WHERE order_id = :o"), {"o": oid})
    assert await breaches.record_due(engine, now, recorded_by="scheduled", order_id=oid) == []
    async with engine.connect() as conn:
        n = (
            await conn.execute(
                text("SELECT count(*) FROM outbox WHERE order_id = :o AND topic = 'breach'"), {"o": oid}
            )
        ).scalar_one()
    assert n == len(rows)


async def test_a_running_worker_outlives_a_redis_outage_and_its_sweep_catches_up(
    engine, test_clock, tmp_path
):
    """Redis stops under a running worker; the order falls due meanwhile; Redis returns on the
    same port and the same worker process records the breach."""
    import socket

    from server.devservices import EmbeddedValkey

    with socket.socket() as sock:  # a port of our own: other checkouts run their Redis too
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    valkey = EmbeddedValkey(tmp_path, preferred_port=free)
    valkey.start()
    url, port = valkey.url, valkey.port
    worker = start_worker({"REDIS_URL": url}, log=tmp_path / "worker.log")
    try:
        [oid] = await new_orders(engine, 1, "Redis 中断")
        await asyncio.sleep(2)  # worker up
        valkey.stop()
        await set_clock(engine, 6 * 60)  # due while Redis is down
        await asyncio.sleep(5)
        valkey.port = valkey.preferred_port = port
        valkey.start()
        assert valkey.port == port  # back where the worker looks for it
        got = await wait_for(engine, BREACHES, {"ids": [oid]}, 1, 45)
        assert worker.poll() is None, "the worker died with Redis"
        assert got == 1
    finally:
        stop(worker)
        valkey.stop()
