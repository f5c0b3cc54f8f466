"""Enqueue the job for an order's next deadline, after the transaction has committed.

1. Read the order's next deadline whose breach is not recorded yet (an open order's running
   clocks; a breached clock still running is the board's business, not the job's).
2. Enqueue `check_order_deadline` under the id ``deadline:<order>:<deadline ms>``: the same
   deadline scheduled twice (two requests, a retried job) is one job.
3. Point ``baoxiu:deadline-job:<order>`` at that id and drop the job it pointed at before,
   unless a worker is already running it: a rescheduled order (pause, resume, reassignment,
   closure) keeps one waiting job, not one per deadline it ever had.

Redis failing is the caller's to log: the 15 s sweep records the breach anyway. So it does
when two schedulers of one order race (one read the deadline before the other's change): the
job left waiting finds nothing due, reschedules the order's true next deadline, and the sweep
covers a deadline that fell between.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name, in_progress_key_prefix, job_key_prefix
from redis.exceptions import WatchError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from server.runtime import Runtime

DEADLINE_JOB = "check_order_deadline"
POINTER = "baoxiu:deadline-job:"

NEXT_DUE = """
SELECT min(c.deadline) FROM order_clocks c JOIN orders o ON o.id = c.order_id
WHERE c.order_id = :o AND c.state = 'running' AND c.breached_at IS NULL
  AND o.status NOT IN ('closed', 'cancelled')
"""


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


async def next_due(engine: AsyncEngine, order_id: int) -> datetime | None:
    """The order's earliest deadline still to be checked (None: nothing to schedule)."""
    async with engine.connect() as conn:
        return (await conn.execute(text(NEXT_DUE), {"o": order_id})).scalar()


async def _drop_waiting(redis: ArqRedis, job_id: str) -> bool:
    """Remove a deferred job that no worker has started; return whether it was removed."""
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(in_progress_key_prefix + job_id)
            if await pipe.exists(in_progress_key_prefix + job_id):
                await pipe.reset()
                return False  # running: it finishes on its own and finds nothing more due
            pipe.multi()
            pipe.zrem(default_queue_name, job_id)
            pipe.delete(job_key_prefix + job_id)
            removed, _ = await pipe.execute()
            return bool(removed)
        except WatchError:
            return False  # a worker picked it up meanwhile: as above


async def schedule_order(redis: ArqRedis, engine: AsyncEngine, order_id: int) -> str | None:
    """Make the order's one waiting deadline job match its next deadline; return its id."""
    from server import clock

    deadline = await next_due(engine, order_id)
    job_id = run_at = None
    if deadline is not None:
        job_id = deadline_job_id(order_id, int(deadline.timestamp() * 1000))
        # With the test clock, "now" runs ahead of Redis' wall clock by the offset.
        run_at = deadline - clock.offset()
        await redis.enqueue_job(DEADLINE_JOB, order_id, _job_id=job_id, _defer_until=run_at)
    key = POINTER + str(order_id)
    previous: Any = await (redis.getset(key, job_id) if job_id else redis.getdel(key))
    if isinstance(previous, bytes):
        previous = previous.decode()
    if previous and previous != job_id:
        await _drop_waiting(redis, previous)
    if run_at is not None:
        # The pointer expires with the job (arq keeps a deferred job a day past its time).
        await redis.pexpireat(key, int(run_at.timestamp() * 1000) + 86_400_000)
    return job_id


async def waiting_jobs(redis: ArqRedis, order_id: int) -> list[tuple[str, float]]:
    """The order's deadline jobs waiting in the queue, (id, run-at epoch ms), earliest first
    (tests and diagnostics: it reads the whole queue)."""
    prefix = f"deadline:{order_id}:"
    rows = await redis.zrange(default_queue_name, 0, -1, withscores=True)
    out = []
    for member, score in rows:
        name = member.decode() if isinstance(member, bytes) else member
        if name.startswith(prefix):
            out.append((name, score))
    return sorted(out, key=lambda r: r[1])


async def schedule_deadline(rt: Runtime, order_id: int) -> str | None:
    """The web's after-commit hook: schedule the order's next deadline job."""
    return await schedule_order(await arq_pool(rt), rt.engine, order_id)
