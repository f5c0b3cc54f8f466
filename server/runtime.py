"""Process-wide resources of a web process: settings, engine, Redis, the NOTIFY listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server import clock
from server.config import Settings
from server.notifier import Notifier
from server.persistence.db import make_engine

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    notifier: Notifier | None = None
    sessions: Any = None
    board: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    _trimmer: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        from server.auth import SessionStore

        rt = cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            redis=Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2),
        )
        rt.sessions = SessionStore(rt)
        return rt

    async def start(self) -> None:
        self.notifier = Notifier(self.settings.database_url)
        self.notifier.subscribe("auth", self.sessions.on_notify)
        if self.settings.test_clock:
            self.notifier.subscribe("clock", clock.on_notify)
            async with self.engine.connect() as conn:
                clock.set_offset(
                    await conn.scalar(text("SELECT offset_seconds FROM app_clock WHERE id = 1")) or 0
                )
        if self.board is not None:
            self.board.attach(self.notifier)
        await self.notifier.start()
        from server.memory import trim_forever

        self._trimmer = asyncio.create_task(trim_forever())

    async def stop(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        if self.notifier:
            await self.notifier.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await self.engine.dispose()

    async def after_commit(self, order_id: int) -> None:
        """Schedule the order's next deadline job; Redis being down must not fail the request
        (the order is saved; the sweep is the safety net)."""
        try:
            from workers.scheduling import schedule_deadline

            await schedule_deadline(self, order_id)
        except Exception as e:
            log.warning("could not schedule deadline job for order %s: %s", order_id, e)

    async def notify(self, channel: str, payload: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})
