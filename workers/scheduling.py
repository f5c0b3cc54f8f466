"""Enqueue the job for an order's next deadline, after the transaction has committed.

The job id names the order and the deadline, so scheduling the same deadline twice is one
job, and a changed deadline gets its own job (the old one then finds nothing due).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy import text

if TYPE_CHECKING:
    from server.runtime import Runtime

DEADLINE_JOB = "check_order_deadline"


async def arq_pool(rt: Runtime) -> ArqRedis:
    pool = rt.extras.get("arq")
    if pool is None:
        settings = RedisSettings.from_dsn(rt.settings.redis_url)
        # No retries on the request path: a dead Redis must cost milliseconds, not seconds.
        settings.conn_retries = 0
        settings.conn_timeout = 1
        pool = await create_pool(settings)
        rt.extras["arq"] = pool
    return pool


def deadline_job_id(order_id: int, deadline_epoch_ms: int) -> str:
    return f"deadline:{order_id}:{deadline_epoch_ms}"


async def schedule_deadline(rt: Runtime, order_id: int) -> str | None:
    async with rt.engine.connect() as conn:
        deadline = (
            await conn.execute(
                text(
                    "SELECT next_deadline FROM orders WHERE id = :o AND status NOT IN ('closed', 'cancelled')"
                ),
                {"o": order_id},
            )
        ).scalar()
    if deadline is None:
        return None
    pool = await arq_pool(rt)
    job_id = deadline_job_id(order_id, int(deadline.timestamp() * 1000))
    from server import clock

    # With the test clock, "now" runs ahead of Redis' wall clock by the offset.
    await pool.enqueue_job(DEADLINE_JOB, order_id, _job_id=job_id, _defer_until=deadline - clock.offset())
    return job_id
