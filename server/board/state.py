"""Per-project board versions, the render cache and the SSE fan-out, kept in the web process.

A poll that carries the version it last saw is answered 204 without rendering or touching the
database while nothing changed. The version moves when
  1. NOTIFY 'board' names the project (a trigger on orders and alerts sends it),
  2. time alone changes the board: each render records the earliest instant a colour band,
     a header figure or the on-call engineer would change, and the first look after it bumps,
  3. the LISTEN connection (re)connects or the test clock moves: every project bumps.
While the LISTEN connection is down nothing is trusted: every poll renders from the database.
Versions carry a random per-process prefix, so a poll answered by another worker process re-renders
instead of matching a number by chance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from server import clock

if TYPE_CHECKING:
    from server.notifier import Notifier

log = logging.getLogger(__name__)

MAX_SUBSCRIBERS = 2000  # SSE streams per process; beyond it the page lives on polling alone


@dataclass
class _Rendered:
    version: int
    bodies: dict[Hashable, bytes]


class BoardState:
    def __init__(self) -> None:
        self.epoch = secrets.token_hex(3)
        self.renders = 0  # how many fragments were rendered (tests read it)
        self._versions: dict[int, int] = defaultdict(int)
        self._next_change: dict[int, datetime] = {}
        self._cache: dict[int, _Rendered] = {}
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._subscribers: dict[int, set[asyncio.Queue[str]]] = defaultdict(set)
        self._notifier: Notifier | None = None

    # ---- wiring -----------------------------------------------------------------------------

    def attach(self, notifier: Notifier) -> None:
        self._notifier = notifier
        notifier.subscribe("board", self.on_notify)
        notifier.subscribe("clock", lambda _payload: self.bump_all())
        notifier.on_connect(self.bump_all)  # what happened while disconnected is unknown

    @property
    def trusted(self) -> bool:
        return self._notifier is not None and self._notifier.connected

    def on_notify(self, payload: str) -> None:
        try:
            project_id = int(payload)
        except ValueError:
            self.bump_all()
            return
        self.bump(project_id)

    # ---- versions ---------------------------------------------------------------------------

    def tag(self, project_id: int, version: int | None = None) -> str:
        return f"{self.epoch}.{self._versions[project_id] if version is None else version}"

    def bump(self, project_id: int) -> None:
        self._versions[project_id] += 1
        self._next_change.pop(project_id, None)
        self._cache.pop(project_id, None)
        tag = self.tag(project_id)
        for q in self._subscribers.get(project_id, ()):
            # Only the latest version matters to a subscriber: replace whatever it has not read.
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            q.put_nowait(tag)

    def bump_all(self) -> None:
        for project_id in list(self._versions):
            self.bump(project_id)

    def check_time(self, project_id: int) -> bool:
        """Bump when time alone has changed the board since its last render; return whether it did."""
        due = self._next_change.get(project_id)
        if due is not None and clock.now() >= due:
            self.bump(project_id)
            return True
        return False

    def seconds_to_change(self, project_id: int) -> float | None:
        due = self._next_change.get(project_id)
        return None if due is None else max(0.0, (due - clock.now()).total_seconds())

    def current(self, project_id: int) -> str:
        self.check_time(project_id)
        return self.tag(project_id)

    def unchanged(self, project_id: int, seen: str | None) -> bool:
        """True when a poll that saw `seen` may be answered 204."""
        return bool(seen) and self.trusted and seen == self.current(project_id)

    # ---- render cache -----------------------------------------------------------------------

    async def fragment(
        self,
        project_id: int,
        variant: Hashable,
        render: Callable[[str], Awaitable[tuple[bytes, datetime | None]]],
    ) -> tuple[str, bytes]:
        """Return (version tag, body), rendering at most once per (project, version, variant).

        `render(tag)` reads the database and returns the body and its next time-driven change.
        """
        if not self.trusted:
            body, _due = await render(self.tag(project_id))
            self.renders += 1
            return self.tag(project_id), body
        self.check_time(project_id)
        hit = self._hit(project_id, variant)
        if hit is not None:
            return hit
        async with self._locks[project_id]:  # concurrent pollers wait for one render
            hit = self._hit(project_id, variant)
            if hit is not None:
                return hit
            version = self._versions[project_id]
            body, due = await render(self.tag(project_id, version))
            self.renders += 1
            if self._versions[project_id] != version:
                # Changed while reading: serve it, but do not keep it (the next poll re-renders).
                return self.tag(project_id, version), body
            entry = self._cache.get(project_id)
            if entry is None or entry.version != version:
                entry = self._cache[project_id] = _Rendered(version, {})
            entry.bodies[variant] = body
            if due is not None:
                self._next_change[project_id] = min(due, self._next_change.get(project_id, due))
            return self.tag(project_id, version), body

    def _hit(self, project_id: int, variant: Hashable) -> tuple[str, bytes] | None:
        entry = self._cache.get(project_id)
        if entry is not None and entry.version == self._versions[project_id] and variant in entry.bodies:
            return self.tag(project_id), entry.bodies[variant]
        return None

    # ---- server-sent events -----------------------------------------------------------------

    def subscribe(self, project_id: int) -> asyncio.Queue[str] | None:
        if sum(len(s) for s in self._subscribers.values()) >= MAX_SUBSCRIBERS:
            return None
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._subscribers[project_id].add(q)
        return q

    def unsubscribe(self, project_id: int, q: asyncio.Queue[str]) -> None:
        subs = self._subscribers.get(project_id)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subscribers[project_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
