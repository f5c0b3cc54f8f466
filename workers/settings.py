"""arq worker settings: the breach sweep, scheduled deadline jobs, escalations, deliveries."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings

from server.config import get_settings
from workers import jobs


def _redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(get_settings().redis_url or "redis://127.0.0.1:6379/0")


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
