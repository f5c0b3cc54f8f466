"""arq jobs. Each job is thin: it takes a connection and calls the persistence layer.

- `check_order_deadline`: scheduled at an order's next deadline (after commit, see
  workers/scheduling.py); records what is due for that order.
- `sweep_breaches`: every 15 s, the safety net for jobs Redis lost.
- `deliver_outbox`: every few seconds, sends queued notifications with retries.
Both breach paths claim by conditional update, so any number of workers record each breach once.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from arq import cron
from sqlalchemy import text

from server import clock
from server.channels import channel_for
from server.config import get_settings
from server.notifier import Notifier
from server.persistence import breaches, outbox
from server.persistence.db import make_engine

log = logging.getLogger("baoxiu.worker")

# Extra periodic work registered by features (alert escalation, auditor, shift lists).
EXTRA_FUNCTIONS: list[Any] = []
EXTRA_CRON: list[Any] = []


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database_url, pool_size=5)
    if settings.test_clock:
        async with ctx["engine"].connect() as conn:
            clock.set_offset(
                await conn.scalar(text("SELECT offset_seconds FROM app_clock WHERE id = 1")) or 0
            )
        notifier = Notifier(settings.database_url, channels=("clock",))
        notifier.subscribe("clock", clock.on_notify)
        await notifier.start()
        ctx["notifier"] = notifier


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("notifier"):
        await ctx["notifier"].stop()
    with contextlib.suppress(Exception):
        await ctx["engine"].dispose()


async def check_order_deadline(ctx: dict[str, Any], order_id: int) -> int:
    recorded = await breaches.record_due(
        ctx["engine"], clock.now(), recorded_by="scheduled", order_id=order_id
    )
    await _reschedule(ctx, order_id)  # the order's next deadline (the same one: a no-op)
    await _after_commit(ctx, recorded)
    return len(recorded)


async def _after_commit(ctx: dict[str, Any], recorded: list[dict[str, Any]]) -> None:
    """Jobs the breach hooks asked for (a breach alert's next step), now that they committed."""
    later = [job for r in recorded for job in r.get("post_commit", ())]
    if later:
        from workers.alert_jobs import schedule

        await schedule(ctx["redis"], later)


async def _reschedule(ctx: dict[str, Any], order_id: int) -> None:
    """The order's next clock gets its job (after this transaction committed); Redis failing is
    logged, the sweep records that breach instead."""
    from workers.scheduling import schedule_order

    try:
        await schedule_order(ctx["redis"], ctx["engine"], order_id)
    except Exception as e:
        log.warning("could not reschedule order %s: %s", order_id, e)


async def sweep_breaches(ctx: dict[str, Any]) -> int:
    total = 0
    while True:  # drain in batches so a burst never waits for the next tick
        recorded = await breaches.record_due(ctx["engine"], clock.now(), recorded_by="sweep", limit=500)
        await _after_commit(ctx, recorded)
        for order_id in sorted({r["order_id"] for r in recorded}):
            await _reschedule(ctx, order_id)  # the job Redis lost: the order's next one exists again
        total += len(recorded)
        if len(recorded) < 500:
            break
    return total


async def _deliver_one(ctx: dict[str, Any], row: dict[str, Any]) -> None:
    payload = row["payload"] or {}
    recipient = {"id": row["recipient_id"], "phone": payload.get("phone")}
    try:
        channel = await channel_for(ctx, {**row, "payload": payload})
        result = await channel.deliver(recipient, payload)
        outcome, detail = result.outcome, result.detail
    except Exception as e:  # a channel bug is a failed attempt, recorded, not a dead loop
        log.exception("channel %s failed", row["channel"])
        outcome, detail = "retry", f"{type(e).__name__}: {e}"
    async with ctx["engine"].begin() as conn:
        await outbox.record(conn, row["id"], outcome, detail, row["attempts"], clock.now())


async def deliver_outbox(ctx: dict[str, Any], *, batch: int = 100, budget_s: float = 20.0) -> int:
    """Drain what is due, a batch at a time, deliveries of a batch in parallel; stop at the budget
    so the next tick (and other workers, via SKIP LOCKED) share a large backlog."""
    import asyncio
    import time

    engine = ctx["engine"]
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < budget_s:
        async with engine.begin() as conn:
            rows = await outbox.claim_due(conn, clock.now(), limit=batch)
        if not rows:
            break
        await asyncio.gather(*(_deliver_one(ctx, row) for row in rows))
        total += len(rows)
        if len(rows) < batch:
            break
    return total


FUNCTIONS: list[Any] = [check_order_deadline, sweep_breaches, deliver_outbox]


def cron_jobs() -> list[Any]:
    """The periodic jobs; SWEEP_SECONDS=0 turns the sweep off (tests and the bench measuring the
    scheduled path alone)."""
    s = get_settings()
    jobs_ = [cron(deliver_outbox, second=set(range(0, 60, 2)), unique=True, timeout=60)]
    if s.sweep_seconds > 0:
        every = max(1, int(s.sweep_seconds))
        jobs_.append(
            cron(
                sweep_breaches, second=set(range(0, 60, every)), run_at_startup=True, unique=True, timeout=60
            )
        )
    return jobs_
