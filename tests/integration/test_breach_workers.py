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

ROOT = Path(__file__).resolve().parents[2]
DESK = ActorInfo(staff_id=None, name="测试", role=None)


def start_worker(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


async def test_the_scheduled_job_records_a_breach_within_two_seconds(engine, two_workers, test_clock):
    from server.config import get_settings
    from server.runtime import Runtime
    from workers.scheduling import schedule_deadline

    [oid] = await new_orders(engine, 1, "定时任务")
    async with engine.connect() as conn:
        deadline = (
            await conn.execute(
                text("SELECT deadline FROM order_clocks WHERE order_id = :o AND kind = 'dispatch'"),
                {"o": oid},
            )
        ).scalar_one()
    # Jump to 1.5 s before the deadline, then schedule as the web process does after commit.
    await set_clock(engine, (deadline - clock.now()).total_seconds() - 1.5 + clock.offset().total_seconds())
    rt = Runtime.create(get_settings())
    try:
        assert await schedule_deadline(rt, oid)
    finally:
        await rt.stop()
    got = await wait_for(engine, BREACHES, {"ids": [oid]}, 1, 8)
    assert got == 1
    async with engine.connect() as conn:
        recorded_at, dl = (
            await conn.execute(
                text("SELECT recorded_at, deadline FROM breaches WHERE order_id = :o"), {"o": oid}
            )
        ).one()
    assert timedelta(0) <= recorded_at - dl <= timedelta(seconds=2)


async def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(engine, test_clock):
    ids = await new_orders(engine, 60, "worker 被杀")
    victim = start_worker()
    survivor = None
    try:
        await asyncio.sleep(2)
        await set_clock(engine, 6 * 60)
        await asyncio.sleep(0.3)
        victim.send_signal(signal.SIGKILL)  # wherever it is: mid-transaction or between
        victim.wait(5)
        survivor = start_worker()
        got = await wait_for(engine, BREACHES, {"ids": ids}, 60, 25)
        assert got == 60
        await asyncio.sleep(1)
        async with engine.connect() as conn:
            dup = (
                await conn.execute(
                    text(
                        "SELECT count(*) - count(DISTINCT clock_id) FROM breaches WHERE order_id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
            ).scalar_one()
        assert dup == 0
    finally:
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
    t0 = time.monotonic()
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
    assert time.monotonic() - t0 < 5  # a dead Redis costs no long retries on the request path
    await rt.stop()
    assert reg.number
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
