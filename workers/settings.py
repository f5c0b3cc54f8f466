"""arq worker settings: the breach sweep, scheduled deadline jobs, escalations, deliveries."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.config import get_settings
from workers import jobs

# Redis going away must not end the worker: every command retries with backoff (capped at 2 s)
# for about three minutes, so the worker waits out an outage and its sweep then catches up.
REDIS_RETRIES = 90


def _redis_settings() -> RedisSettings:
    settings = RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379/0")
    settings.retry_on_error = [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError]
    settings.retry = Retry(ExponentialBackoff(cap=2.0, base=0.1), REDIS_RETRIES)
    settings.conn_retries = REDIS_RETRIES  # a worker started while Redis is down waits for it too
    settings.conn_retry_delay = 2
    return settings


def _load_features() -> None:
    """Import feature modules that register hooks, functions and cron jobs."""
    import server.features  # noqa: F401


_load_features()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [*jobs.FUNCTIONS, *jobs.EXTRA_FUNCTIONS]
    cron_jobs: ClassVar[list[Any]] = [*jobs.cron_jobs(), *jobs.EXTRA_CRON]
    on_startup = jobs.startup
    on_shutdown = jobs.shutdown
    redis_settings = _redis_settings()
    max_jobs = 20
    job_timeout = 60
    keep_result = 0
    poll_delay = 0.2
    health_check_interval = 10
    # A job whose worker died mid-run is retried by another worker (arq re-queues it).
    max_tries = 5
