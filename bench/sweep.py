"""Bench: the breach sweep over many open orders, and breach lag with a real worker running."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server import clock
from server.persistence import breaches
from server.persistence.queries import sql

LAG_ORDERS = 200


# The 90,000 extra open orders (tag P) are seeded once; a later run parks them while it measures
# at 10,000 open: their running clocks and open statuses are set aside (cancelled without an
# end time, which no real cancellation leaves) and given back from the seeded pattern after.
PARK = (
    "UPDATE order_clocks SET state = 'cancelled' WHERE state = 'running' AND ended_at IS NULL "
    "AND order_id IN (SELECT id FROM orders WHERE number LIKE 'BN-P-%')",
    "UPDATE orders SET status = 'cancelled' WHERE number LIKE 'BN-P-%' AND status NOT IN ('closed', 'cancelled')",
)
UNPARK = (
    "UPDATE order_clocks SET state = 'running' WHERE state = 'cancelled' AND ended_at IS NULL "
    "AND order_id IN (SELECT id FROM orders WHERE number LIKE 'BN-P-%')",
    "UPDATE orders SET status = (ARRAY['pooled','assigned','accepted','on_site','paused','done'])"
    "[1 + substr(number, 6)::int % 6] WHERE number LIKE 'BN-P-%' AND status = 'cancelled'",
)


async def park_extra(engine: AsyncEngine, back: bool = False) -> int:
    """Set the extra open orders aside (or give them back); return the open orders left."""
    async with engine.begin() as conn:
        for statement in UNPARK if back else PARK:
            await conn.execute(text(statement))
        await conn.execute(text("ANALYZE orders"))
        await conn.execute(text("ANALYZE order_clocks"))
        return (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE status NOT IN ('closed', 'cancelled')")
            )
        ).scalar_one()


async def sweep_ms(engine: AsyncEngine, runs: int = 20) -> dict[str, float]:
    """Median wall time of one sweep (claim and record) when a handful of clocks are due, and of
    its claim statement alone (what grows with the open orders; recording grows with the breaches)."""
    samples, claims = [], []
    for _ in range(runs):
        async with engine.begin() as conn:
            # Five clocks come due each round, as in normal operation.
            await conn.execute(
                text(
                    "UPDATE order_clocks SET deadline = now() - interval '1 second' WHERE id IN ("
                    "  SELECT id FROM order_clocks WHERE state = 'running' AND breached_at IS NULL "
                    "  ORDER BY deadline DESC LIMIT 5)"
                )
            )
        async with engine.connect() as conn:
            await conn.begin()
            t0 = time.perf_counter()
            await conn.execute(sql("claim_due_clocks"), {"now": clock.now(), "order_id": None, "lim": 500})
            claims.append((time.perf_counter() - t0) * 1000)
            await conn.rollback()
        t0 = time.perf_counter()
        await breaches.record_due(engine, clock.now(), recorded_by="sweep", limit=500)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"sweep": statistics.median(samples), "claim": statistics.median(claims)}


FRESH = """
SELECT o.id FROM orders o JOIN order_clocks c ON c.order_id = o.id AND c.kind = 'completion'
WHERE o.number LIKE 'BN-O-%' AND o.status NOT IN ('closed', 'cancelled')
  AND c.state = 'running' AND c.breached_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM breaches b WHERE b.clock_id = c.id)
ORDER BY o.id LIMIT :n
"""

LAGS = """
SELECT extract(epoch FROM b.recorded_at - b.deadline), b.recorded_by FROM breaches b
WHERE b.order_id = ANY(:ids) AND b.clock_kind = 'completion'
"""


def _worker(sweep: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if not sweep:
        env["SWEEP_SECONDS"] = "0"  # the scheduled job alone: no sweep to pick up what it missed
    return subprocess.Popen(
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def breach_lag(
    engine: AsyncEngine, *, scheduled: bool, orders: int = LAG_ORDERS, spread_s: float = 10.0
) -> dict[str, float]:
    """Orders whose completion clocks fall due over the next ``spread_s`` s; a real worker records them.

    Lag = recorded_at − deadline. ``scheduled``: each order's job is enqueued as the web does
    after commit and the worker runs without the sweep. Otherwise Redis "lost" every job (none
    is enqueued) and only the 15 s sweep records them.
    """
    from server.config import get_settings
    from server.runtime import Runtime
    from workers.scheduling import schedule_deadline

    async with engine.connect() as conn:
        ids = [r[0] for r in await conn.execute(text(FRESH), {"n": orders})]
    worker = _worker(sweep=not scheduled)
    rt = Runtime.create(get_settings())
    try:
        await asyncio.sleep(3)  # worker start-up
        base = clock.now() + timedelta(seconds=5)
        step = timedelta(seconds=spread_s / max(1, len(ids)))
        async with engine.begin() as conn:
            for i, oid in enumerate(ids):
                await conn.execute(
                    text(
                        "UPDATE order_clocks SET deadline = :d WHERE order_id = :o AND kind = 'completion' "
                        "AND state = 'running'"
                    ),
                    {"d": base + step * i, "o": oid},
                )
                await conn.execute(
                    text("UPDATE orders SET next_deadline = :d, next_clock = 'completion' WHERE id = :o"),
                    {"d": base + step * i, "o": oid},
                )
        if scheduled:
            for oid in ids:
                await schedule_deadline(rt, oid)
        give_up = time.monotonic() + 5 + spread_s + 40
        while time.monotonic() < give_up:
            async with engine.connect() as conn:
                done = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM breaches WHERE order_id = ANY(:ids) AND clock_kind = 'completion'"
                        ),
                        {"ids": ids},
                    )
                ).scalar_one()
            if done >= len(ids):
                break
            await asyncio.sleep(0.5)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(LAGS), {"ids": ids})).all()
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        await rt.stop()
    lags = sorted(float(r[0]) for r in rows) or [float("nan")]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    by = sorted({r[1] for r in rows})
    return {
        "p50": statistics.median(lags),
        "p99": p99,
        "max": lags[-1],
        "n": len(rows),
        "expected": len(ids),
        "recorded_by": ",".join(by),
    }
