"""One LISTEN connection per process: PostgreSQL NOTIFY fans out to in-process subscribers.

The board keeps its per-project version here, the auth cache drops entries here, the test
clock moves here. While the connection is down `connected` is False and caches that rely on
invalidation must not be trusted (they fall back to reading the source).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

Callback = Callable[[str], None]


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Notifier:
    def __init__(self, dsn: str, channels: tuple[str, ...] = ("board", "auth", "clock")) -> None:
        self.dsn = asyncpg_dsn(dsn)
        self.channels = channels
        self.connected = False
        self.generation = 0  # bumps on every (re)connect: caches built before it are stale
        self._subs: dict[str, list[Callback]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._on_connect: list[Callable[[], None]] = []

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._subs[channel].append(callback)

    def on_connect(self, callback: Callable[[], None]) -> None:
        self._on_connect.append(callback)

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        for cb in self._subs.get(channel, ()):
            try:
                cb(payload)
            except Exception:
                log.exception("notify subscriber failed on %s", channel)

    def _lost(self, _conn: object) -> None:
        self.connected = False

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
                conn.add_termination_listener(self._lost)
                for ch in self.channels:
                    await conn.add_listener(ch, self._dispatch)
                self._conn = conn
                self.connected = True
                self.generation += 1
                for cb in self._on_connect:
                    cb()
                delay = 0.2
                while not conn.is_closed():
                    await asyncio.sleep(1.0)
                    # A cheap liveness probe; a dead socket raises and we reconnect.
                    await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("notify listener: %s; reconnecting", e)
            self.connected = False
            with contextlib.suppress(Exception):
                if self._conn is not None:
                    await self._conn.close(timeout=1)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier")
        for _ in range(100):  # up to 5 s for the first connection
            if self.connected:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=1)
        self.connected = False
