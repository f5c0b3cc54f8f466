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

LAG_ORDERS = 200


async def sweep_ms(engine: AsyncEngine, runs: int = 20) -> float:
    """Median wall time of one sweep (claim and record) when a handful of clocks are due."""
    samples = []
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
        t0 = time.perf_counter()
        await breaches.record_due(engine, clock.now(), recorded_by="sweep", limit=500)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def breach_lag(engine: AsyncEngine, database_url: str) -> dict[str, float]:
    """Orders whose clocks fall due over the next ~15 s; a real worker records them.

    Lag = recorded_at − deadline, through the scheduled job path (the sweep runs too).
    """
    from server.config import get_settings
    from server.runtime import Runtime
    from workers.scheduling import schedule_deadline

    env = dict(os.environ)
    worker = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rt = Runtime.create(get_settings())
    try:
        await asyncio.sleep(3)  # worker start-up
        async with engine.begin() as conn:
            ids = [
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT id FROM orders WHERE status NOT IN ('closed', 'cancelled') AND number LIKE 'BN-O-%' "
                        "ORDER BY id LIMIT :n"
                    ),
                    {"n": LAG_ORDERS},
                )
            ]
            base = clock.now() + timedelta(seconds=5)
            for i, oid in enumerate(ids):
                await conn.execute(
                    text(
                        "UPDATE order_clocks SET deadline = :d, breached_at = NULL, state = 'running' "
                        "WHERE order_id = :o AND kind = 'completion'"
                    ),
                    {"d": base + timedelta(milliseconds=50 * i), "o": oid},
                )
        for oid in ids:
            await schedule_deadline(rt, oid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                done = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM breaches b JOIN order_clocks c ON c.id = b.clock_id "
                            "WHERE c.order_id = ANY(:ids) AND b.recorded_at >= :base - interval '1 second'"
                        ),
                        {"ids": ids, "base": base},
                    )
                ).scalar_one()
            if done >= len(ids):
                break
            await asyncio.sleep(0.5)
        async with engine.connect() as conn:
            lags = [
                r[0]
                for r in await conn.execute(
                    text(
                        "SELECT extract(epoch FROM b.recorded_at - b.deadline) FROM breaches b "
                        "JOIN order_clocks c ON c.id = b.clock_id WHERE c.order_id = ANY(:ids) "
                        "AND b.recorded_at >= :base - interval '1 second'"
                    ),
                    {"ids": ids, "base": base},
                )
            ]
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
        await rt.stop()
    lags = sorted(float(x) for x in lags) or [float("nan")]
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return {"p50": statistics.median(lags), "p99": p99, "max": lags[-1], "n": len(lags)}
