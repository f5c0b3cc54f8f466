# ruff: noqa: F811 - the api and tokens fixtures come from test_alerts
"""Escalation and delivery through TWO real arq workers, a shared test clock and a local HTTP sink.

The workers are `python -m arq workers.settings.WorkerSettings` subprocesses with this session's
environment (database, Redis db, BAOXIU_TEST_CLOCK=1). Time moves by the shared offset (app_clock
+ NOTIFY 'clock'); each wait is bounded, and the workers are killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool
from sqlalchemy import text

from server import clock
from server.persistence import alerts
from tests.integration.test_alerts import (  # noqa: F401 - _tidy autouse; api, tokens fixtures
    _tidy,
    actor,
    alert_of,
    api,
    events,
    register,
    tokens,
)
from workers.alert_jobs import schedule

ROOT = Path(__file__).resolve().parents[2]


# ---- a local HTTP sink ---------------------------------------------------------------------


class Sink:
    """A tiny HTTP server: records each POST (path, JSON body) and answers by path.

    /flaky answers 500 to the first three posts of each alert, then 200; /bad always 400;
    /down always 500; /cgi-bin/webhook/send (a WeCom robot) answers {"errcode": 0}.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.auth: dict[str, str] = {}  # path → the last Authorization header
        self.flaky: dict[Any, int] = defaultdict(int)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str, alert_id: int) -> int:
        return sum(1 for p, b in self.calls if p == path and b.get("alert") == alert_id)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.calls if p.split("?")[0] == path]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next(
                (
                    int(v)
                    for k, _, v in (ln.partition(":") for ln in lines[1:])
                    if k.lower() == "content-length"
                ),
                0,
            )
            raw = await reader.readexactly(length) if length else b"{}"
            data = json.loads(raw or b"{}")
            self.calls.append((path, data))
            for k, _, v in (ln.partition(":") for ln in lines[1:]):
                if k.lower() == "authorization":
                    self.auth[path] = v.strip()
            status, answer = 200, b"{}"
            if path.startswith("/cgi-bin/webhook/send"):
                answer = b'{"errcode":0,"errmsg":"ok"}'
            if path in ("/bad",):
                status = 400
            elif path == "/down":
                status = 500
            elif path == "/flaky":
                self.flaky[data.get("alert")] += 1
                status = 500 if self.flaky[data.get("alert")] <= 3 else 200
            reason = {200: "OK", 400: "Bad Request", 500: "Internal Server Error"}[status]
            head_out = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            writer.write(
                f"{head_out}Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode() + answer
            )
            await writer.drain()
        finally:
            writer.close()


# ---- fixtures: the sink, two workers, the shared clock -------------------------------------


@pytest.fixture(scope="module")
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture(scope="module")
async def workers(engine, tmp_path_factory) -> AsyncIterator[list[Any]]:
    logs = tmp_path_factory.mktemp("workers")
    procs = []
    try:
        for i in range(2):
            out = (logs / f"worker{i}.log").open("wb")
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "arq",
                    "workers.settings.WorkerSettings",
                    cwd=str(ROOT),
                    env=os.environ.copy(),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                )
            )
        await asyncio.sleep(4)  # imports, Redis and database connections
        assert all(p.returncode is None for p in procs), (logs / "worker0.log").read_text()[-2000:]
        yield procs
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
                await p.wait()


@pytest.fixture
async def shared_clock(engine) -> AsyncIterator[Callable[[timedelta], Awaitable[None]]]:
    """Move the test clock forward for every process; put it back afterwards."""
    async with engine.connect() as conn:
        start = float(await conn.scalar(text("SELECT offset_seconds FROM app_clock WHERE id = 1")) or 0)
    offset = start

    async def forward(by: timedelta) -> None:
        nonlocal offset
        offset += by.total_seconds()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE app_clock SET offset_seconds = :o WHERE id = 1"), {"o": offset})
            await conn.execute(text("SELECT pg_notify('clock', :p)"), {"p": repr(offset)})
        clock.set_offset(offset)

    yield forward
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE app_clock SET offset_seconds = :o WHERE id = 1"), {"o": start})
        await conn.execute(text("SELECT pg_notify('clock', :p)"), {"p": repr(start)})
    clock.set_offset(start)


async def until(check: Callable[[], Awaitable[Any]], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {within} s")
        await asyncio.sleep(0.5)


async def fired(engine, alert_id: int) -> list[int]:
    return [e["details"]["step"] for e in await events(engine, alert_id, "step")]


# ---- escalation ----------------------------------------------------------------------------


async def test_nobody_acknowledges_so_each_step_fires_at_its_time_once(engine, workers, shared_clock):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    # The step job too (as the web process does after commit), not only the sweep.
    pool = await create_pool(RedisSettings.from_dsn(os.environ["REDIS_URL"]))
    try:
        await schedule(pool, reg.post_commit)
    finally:
        await pool.aclose()
    await shared_clock(timedelta(seconds=50))
    await asyncio.sleep(6)
    assert await fired(engine, a["id"]) == [0]  # step 1 is due at +60 s, not before
    await shared_clock(t0 + timedelta(seconds=62) - clock.now())
    await until(lambda: _has(engine, a["id"], [0, 1]))
    await shared_clock(t0 + timedelta(minutes=3, seconds=1) - clock.now())
    await until(lambda: _has(engine, a["id"], [0, 1, 2]))
    await asyncio.sleep(6)  # both workers' sweeps ran again meanwhile
    assert await fired(engine, a["id"]) == [0, 1, 2]
    async with engine.begin() as conn:  # stop it before the manager is paged in later tests
        await alerts.acknowledge(conn, a["id"], await actor(engine, "zhuguan"), clock.now())


async def _has(engine, alert_id: int, steps: list[int]) -> bool:
    got = await fired(engine, alert_id)
    assert len(got) <= len(steps), got  # never a step ahead of time, never twice
    return got == steps


async def test_acknowledging_between_steps_means_nothing_further(engine, workers, shared_clock):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    await shared_clock(timedelta(seconds=30))
    async with engine.begin() as conn:
        await alerts.acknowledge(conn, a["id"], await actor(engine, "shifu1"), clock.now())
    await shared_clock(timedelta(minutes=10))
    await asyncio.sleep(7)
    assert await fired(engine, a["id"]) == [0]
    assert len(await events(engine, a["id"], "acknowledged")) == 1


# ---- deliveries ----------------------------------------------------------------------------


async def _group_channels(engine, sink: Sink, *channels: tuple[str, str, str]) -> list[int]:
    """Add group channels (kind, sink path, name) to DEMO; earlier tests' open alerts are resolved
    first, so only this test's alert pages them and its /alerts page stays short."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE state <> 'resolved'")
        )
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()
        return [
            (
                await conn.execute(
                    text(
                        "INSERT INTO alert_channels (project_id, channel, url, name) VALUES (:p, :c, :u, :n) "
                        "ON CONFLICT (project_id, channel, url) DO UPDATE SET active = true RETURNING id"
                    ),
                    {"p": pid, "c": kind, "u": sink.url(path), "n": name},
                )
            ).scalar_one()
            for kind, path, name in channels
        ]


async def _switch_off(engine, ids: list[int]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alert_channels SET active = false WHERE id = ANY(:i)"), {"i": ids})


async def _webhook_rows(engine, alert_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [
            dict(r)
            for r in (
                await conn.execute(
                    text(
                        "SELECT payload->>'recipient' AS name, channel, state, attempts, last_error FROM outbox "
                        "WHERE alert_id = :a AND channel IN ('webhook', 'wecom') ORDER BY id"
                    ),
                    {"a": alert_id},
                )
            ).mappings()
        ]


async def _failed_on_the_alerts_page(client, login, alert_id: int, error: str) -> bool:
    await login("zhuguan")
    page = (await client.get("/alerts?show=all")).text
    section = page[page.index(f'id="alert-{alert_id}"') :]
    section = section[: section.index("</section>")]
    return 'data-flag="failed"' in section and 'class="delivery-failed"' in section and error in section


async def test_a_flaky_channel_delivers_once_after_retries_and_a_refusing_one_is_shown_failed(
    engine, workers, shared_clock, sink, client, login
):
    ids = await _group_channels(
        engine,
        sink,
        ("webhook", "/flaky", "flaky"),
        ("webhook", "/bad", "bad"),
        ("wecom", "/cgi-bin/webhook/send?key=test", "工程群"),
        ("sms", "/sms", "短信网关"),
    )
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alert_channels SET token = 'gw-token' WHERE id = :i"), {"i": ids[-1]})
    try:
        reg = await register(engine, clock.now())
        a = await alert_of(engine, reg.id)
        async with engine.begin() as conn:  # no further steps: only step 0's deliveries matter
            await alerts.acknowledge(conn, a["id"], await actor(engine, "shifu1"), clock.now())

        async def settled() -> list[dict[str, Any]] | None:
            # Past each backoff (5, 15, 45 s) in small steps: the 60 s lease must outlast a slow
            # worker's delivery, or the row is claimed again (a second attempt).
            await shared_clock(timedelta(seconds=7))
            rows = await _webhook_rows(engine, a["id"])
            if len(rows) == 3 and all(r["state"] != "pending" for r in rows):
                return rows
            print("waiting for", rows)  # shown when the test fails
            return None

        rows = {r["name"]: r for r in await until(settled, within=60)}
        assert rows["flaky"]["state"] == "sent" and rows["flaky"]["attempts"] == 4
        assert sink.count("/flaky", a["id"]) == 4  # three 500s, then one 200: delivered once
        assert (
            rows["bad"]["state"] == "failed"
            and rows["bad"]["attempts"] == 1
            and "400" in rows["bad"]["last_error"]
        )
        assert sink.count("/bad", a["id"]) == 1  # a 400 is never retried
        # The WeCom robot got markdown as its API expects; no group sees a person's phone.
        assert rows["工程群"]["state"] == "sent"
        (robot,) = [b for b in sink.bodies("/cgi-bin/webhook/send") if reg.number in b["markdown"]["content"]]
        assert robot["msgtype"] == "markdown" and set(robot) == {"msgtype", "markdown"}
        paged = a["chain"]["steps"][0]["recipients"][0]["name"]
        assert paged in robot["markdown"]["content"]
        async with engine.connect() as conn:
            phones = [
                r[0] for r in await conn.execute(text("SELECT phone FROM staff WHERE phone IS NOT NULL"))
            ]
        group_bodies = [b for b in sink.bodies("/flaky") if b.get("alert") == a["id"]] + [robot]
        assert not any(phone in json.dumps(b, ensure_ascii=False) for b in group_bodies for phone in phones)
        assert group_bodies[0]["number"] == reg.number and group_bodies[0]["paged"] == [paged]

        async def logged() -> bool:
            async with engine.connect() as conn:
                actions = [
                    r[0]
                    for r in await conn.execute(
                        text("SELECT action FROM order_events WHERE order_id = :o"), {"o": reg.id}
                    )
                ]
            return "delivery_failed" in actions and "delivered" in actions

        await until(logged, within=12)
        assert await _failed_on_the_alerts_page(client, login, a["id"], "HTTP 400")
        # The order's timeline says which channel failed for whom, and why.
        timeline = (await client.get(f"/orders/{reg.number}")).text
        timeline = timeline[timeline.index('class="card timeline"') :]
        assert re.search(r"通知失败\s*· Webhook · bad", timeline) and "HTTP 400" in timeline, timeline
        # The project's SMS gateway carried the page to the engineer's phone, with its token.
        async with engine.connect() as conn:
            phone = (
                await conn.execute(
                    text("SELECT phone FROM staff WHERE id = :s"),
                    {"s": a["chain"]["steps"][0]["recipients"][0]["id"]},
                )
            ).scalar()
        sms = [b for b in sink.bodies("/sms") if reg.number in b["text"]]
        # The engineer's page and the elevator contractor's notice, both through the gateway.
        assert {b["phone"] for b in sms} == {phone, "13800138000"} and sink.auth["/sms"] == "Bearer gw-token"
    finally:
        await _switch_off(engine, ids)


async def test_a_channel_that_keeps_failing_is_given_up_after_its_retries_and_shown_failed(
    engine, workers, shared_clock, sink, client, login
):
    ids = await _group_channels(engine, sink, ("webhook", "/down", "down"))
    try:
        reg = await register(engine, clock.now())
        a = await alert_of(engine, reg.id)
        async with engine.begin() as conn:
            await alerts.acknowledge(conn, a["id"], await actor(engine, "shifu1"), clock.now())

        async def given_up() -> dict[str, Any] | None:
            await shared_clock(timedelta(seconds=100))  # backoff 5, 15, 45, 120, 300 s
            rows = await _webhook_rows(engine, a["id"])
            return rows[0] if rows and rows[0]["state"] == "failed" else None

        row = await until(given_up, within=40)
        # The first try and five retries (a lease that ran out under the jumping test clock
        # counts as one more), then no more.
        assert row["attempts"] >= 6 and "HTTP 500" in row["last_error"]
        assert sink.count("/down", a["id"]) == row["attempts"]
        await shared_clock(timedelta(minutes=10))
        await asyncio.sleep(3)
        assert sink.count("/down", a["id"]) == row["attempts"]
        assert await _failed_on_the_alerts_page(client, login, a["id"], "HTTP 500")
    finally:
        await _switch_off(engine, ids)


# ---- races through the workers (grafana/oncall#3161, #4654: no page after an acknowledgement) --


async def _at_the_sweep() -> None:
    """Sleep until just before the workers' next escalation sweep (every 5 s of wall time)."""
    await asyncio.sleep(5 - time.time() % 5 - 0.05)


async def _no_page_after(engine, alert_id: int, action: str) -> None:
    """No step event and no step delivery was written after the first `action` event."""
    async with engine.connect() as conn:
        first = (
            await conn.execute(
                text("SELECT min(id) FROM alert_events WHERE alert_id = :a AND action = :act"),
                {"a": alert_id, "act": action},
            )
        ).scalar()
        later_steps = (
            await conn.execute(
                text("SELECT count(*) FROM alert_events WHERE alert_id = :a AND action = 'step' AND id > :f"),
                {"a": alert_id, "f": first},
            )
        ).scalar()
        step_of_last_event = (
            await conn.execute(
                text(
                    "SELECT max((details->>'step')::int) FROM alert_events WHERE alert_id = :a AND action = 'step'"
                ),
                {"a": alert_id},
            )
        ).scalar()
        paged_steps = (
            await conn.execute(
                text(
                    "SELECT max((payload->>'step')::int) FROM outbox WHERE alert_id = :a AND payload->>'purpose' = 'step'"
                ),
                {"a": alert_id},
            )
        ).scalar()
    assert first is not None and later_steps == 0
    assert paged_steps == step_of_last_event  # every delivery belongs to a step recorded before it


async def test_a_double_acknowledgement_racing_the_workers_writes_one_record_and_stops_paging(
    engine, workers, shared_clock, api, tokens
):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    await shared_clock(t0 + timedelta(seconds=60) - clock.now())  # step 1 is due: the sweeps go for it
    await _at_the_sweep()
    url = f"/api/v1/alerts/{a['id']}/acknowledge"
    r1, r2 = await asyncio.gather(api("POST", url, "shifu1"), api("POST", url, "shifu2"))
    assert r1.status_code == r2.status_code == 200
    assert sorted([r1.json()["changed"], r2.json()["changed"]]) == [False, True]
    await asyncio.sleep(1)
    await shared_clock(timedelta(minutes=15))
    await asyncio.sleep(6)  # both workers swept again
    assert len(await events(engine, a["id"], "acknowledged")) == 1
    await _no_page_after(engine, a["id"], "acknowledged")
    assert (await alert_of(engine, reg.id))["state"] == "acknowledged"


async def test_acknowledge_racing_resolve_through_the_workers_ends_consistently(
    engine, workers, shared_clock, api, tokens
):
    for _ in range(2):
        t0 = clock.now()
        reg = await register(engine, t0)
        a = await alert_of(engine, reg.id)
        await shared_clock(t0 + timedelta(seconds=60) - clock.now())
        await _at_the_sweep()
        ack, cancel = await asyncio.gather(
            api("POST", f"/api/v1/alerts/{a['id']}/acknowledge", "shifu1"),
            api(
                "POST",
                f"/api/v1/orders/{reg.number}/actions/cancel",
                "kefu",
                {"version": reg.version, "reason": "误报"},
            ),
        )
        assert ack.status_code == 200 and cancel.status_code == 200, (ack.text, cancel.text)
        await asyncio.sleep(1)
        await shared_clock(timedelta(minutes=15))
        await asyncio.sleep(6)
        final = await alert_of(engine, reg.id)
        acks, resolved = (
            await events(engine, a["id"], "acknowledged"),
            await events(engine, a["id"], "resolved"),
        )
        assert final["state"] == "resolved" and len(resolved) == 1 and len(acks) <= 1
        assert (final["acknowledged_at"] is not None) == (len(acks) == 1) and final["next_step_at"] is None
        await _no_page_after(engine, a["id"], "acknowledged" if acks else "resolved")
