"""Per-project board snapshots, the render caches and the SSE fan-out, kept in each web process.

The board's version (its tag) is a digest of what the board shows (view.BoardView.signature),
so every web process that has read the same rows shows the same tag between two time-driven
changes: a poll carrying the tag it last saw is answered 204 by whichever process it lands on.

A process keeps the last snapshot of each project (rows, view, tag) and trusts it while
  1. no NOTIFY 'board' named the project since the read began (triggers on orders, alerts,
     clocks, the rota, staff names, project settings send it),
  2. the LISTEN connection has stayed up (a reconnect, or the test clock moving, distrusts all),
  3. the database's time-driven counts have not turned (BoardData.reload_at).
A trusted snapshot answers an unchanged poll without a database round trip or rendering. When
time alone changes the look (a colour band, the on-call shift) the view is rebuilt from the
rows already read, without the database. While LISTEN is down every poll reads the database.

Rendered bytes are kept per snapshot and variant (locale, may-acknowledge); each card's HTML is
kept per card content and band, so a change re-renders only the cards that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from server import clock
from server.board import view
from server.persistence.board import BoardData

if TYPE_CHECKING:
    from server.notifier import Notifier

log = logging.getLogger(__name__)

MAX_SUBSCRIBERS = 2000  # SSE streams per process; beyond it the page lives on polling alone
# Board reads running at once per process: more only make PostgreSQL's few cores thrash.
MAX_READS = 10

Loader = Callable[[int, datetime], Awaitable[BoardData | None]]


@dataclass
class Snapshot:
    project_id: int
    data: BoardData
    view: view.BoardView
    tag: str
    rows: list[view.Row]
    changes: int  # the project's change count when its read began
    epoch: int  # the process-wide trust epoch then
    bodies: dict[Hashable, bytes] = field(default_factory=dict)
    gzipped: dict[Hashable, bytes] = field(default_factory=dict)

    @property
    def next_change(self) -> datetime | None:
        return self.view.next_change

    def needs_reload(self, now: datetime) -> bool:
        return self.data.reload_at is not None and now >= self.data.reload_at

    def due(self, now: datetime) -> bool:
        return self.next_change is not None and now >= self.next_change


class CardCache:
    """Each card's HTML per (project, locale), kept while the card is on the board."""

    def __init__(self) -> None:
        self._by_board: dict[tuple[int, str], dict[view.Card, str]] = {}
        self.rendered = 0  # cards rendered (tests read it)

    def html(
        self, project_id: int, locale: str, cards: list[view.Card], render: Callable[[view.Card], str]
    ) -> list[str]:
        """The HTML of `cards`, rendering only the ones not seen before; forget the others."""
        old = self._by_board.get((project_id, locale), {})
        new: dict[view.Card, str] = {}
        out = []
        for c in cards:
            html = old.get(c)
            if html is None:
                html = render(c)
                self.rendered += 1
            new[c] = html
            out.append(html)
        self._by_board[(project_id, locale)] = new
        return out


class BoardState:
    def __init__(self, loader: Loader | None = None) -> None:
        self.loader = loader
        self.loads = 0  # database reads of a board (tests read it)
        self.renders = 0  # fragments assembled
        self.fast = 0  # polls answered before routing (server/web/board.py BoardFastPath)
        self.cards = CardCache()
        self._snaps: dict[int, Snapshot] = {}
        self._changes: dict[int, int] = defaultdict(int)
        self._epoch = 0
        self._reads = asyncio.Semaphore(MAX_READS)
        self._flights: dict[int, tuple[tuple[int, int], asyncio.Future[Snapshot | None]]] = {}
        self._subscribers: dict[int, set[asyncio.Queue[str]]] = defaultdict(set)
        self._refreshing: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._notifier: Notifier | None = None

    # ---- wiring -----------------------------------------------------------------------------

    def attach(self, notifier: Notifier) -> None:
        self._notifier = notifier
        notifier.subscribe("board", self.on_notify)
        notifier.subscribe("clock", lambda _payload: self.invalidate_all())
        notifier.on_connect(self.invalidate_all)  # what happened while disconnected is unknown

    @property
    def trusted(self) -> bool:
        return self._notifier is not None and self._notifier.connected

    def on_notify(self, payload: str) -> None:
        try:
            project_id = int(payload)
        except ValueError:
            self.invalidate_all()  # '*': something every board shows (a department's name)
            return
        self.invalidate(project_id)

    # ---- trust --------------------------------------------------------------------------------

    def invalidate(self, project_id: int) -> None:
        """The project's rows may have changed: read them again before answering from memory."""
        self._changes[project_id] += 1
        if self._subscribers.get(project_id):
            self._schedule_refresh(project_id)

    def forget_rendered(self, project_id: int) -> None:
        """Drop the project's assembled fragments (the bench's way to say "what is shown changed")."""
        snap = self._snaps.get(project_id)
        if snap is not None:
            snap.bodies.clear()
            snap.gzipped.clear()

    bump = invalidate  # the name the alert handlers call after acknowledging (before the NOTIFY)

    def invalidate_all(self) -> None:
        self._epoch += 1
        for project_id in list(self._subscribers):
            self._schedule_refresh(project_id)

    def _fresh(self, snap: Snapshot | None, now: datetime) -> bool:
        return (
            snap is not None
            and self.trusted
            and snap.changes == self._changes[snap.project_id]
            and snap.epoch == self._epoch
            and not snap.needs_reload(now)
        )

    def current(self, project_id: int) -> Snapshot | None:
        """The snapshot that may answer now without the database or any work, if there is one."""
        snap = self._snaps.get(project_id)
        now = clock.now()
        if self._fresh(snap, now) and not snap.due(now):  # type: ignore[union-attr]
            return snap
        return None

    def unchanged(self, project_id: int, seen: str | None) -> bool:
        """True when a poll that saw `seen` may be answered 204 at once."""
        snap = self.current(project_id) if seen else None
        return snap is not None and snap.tag == seen

    def seconds_to_change(self, project_id: int) -> float | None:
        snap = self._snaps.get(project_id)
        if snap is None or snap.next_change is None:
            return None
        return max(0.0, (snap.next_change - clock.now()).total_seconds())

    # ---- snapshots --------------------------------------------------------------------------

    async def snapshot(self, project_id: int) -> Snapshot | None:
        """The board as it is now: from memory when trusted, rebuilt when time moved it, else read.

        Pollers that find the same change share one read; a change during a read starts another.
        """
        snap = self._from_memory(project_id)
        if snap is not None:
            return snap
        if not self.trusted:
            return await self._read(project_id)  # nothing is shared while nothing is trusted
        key = (self._changes[project_id], self._epoch)
        flight = self._flights.get(project_id)
        if flight is None or flight[0] != key:
            task = asyncio.ensure_future(self._read(project_id))
            flight = self._flights[project_id] = (key, task)
            task.add_done_callback(lambda _t: self._land(project_id, key))
        # shielded: a poller that hangs up does not cancel the read the others wait for
        return await asyncio.shield(flight[1])

    def _land(self, project_id: int, key: tuple[int, int]) -> None:
        flight = self._flights.get(project_id)
        if flight is not None and flight[0] == key:
            del self._flights[project_id]

    def _from_memory(self, project_id: int) -> Snapshot | None:
        snap = self._snaps.get(project_id)
        now = clock.now()
        if snap is None or not self._fresh(snap, now):
            return None
        if snap.due(now):
            board = view.build(snap.data, now, snap.rows)  # time moved the look: no database
            snap = self._keep(
                Snapshot(project_id, snap.data, board, board.signature(), snap.rows, snap.changes, snap.epoch)
            )
        return snap

    async def _read(self, project_id: int) -> Snapshot | None:
        if self.loader is None:
            raise RuntimeError("BoardState has no loader")
        key = (self._changes[project_id], self._epoch)
        await self._reads.acquire()
        newer = self._flights.get(project_id)
        if self.trusted and newer is not None and newer[0] > key:
            # Another change came while this read waited its turn: the newer read answers for
            # both (a storm of changes costs one read at a time, not a backlog of stale ones).
            self._reads.release()
            return await asyncio.shield(newer[1])
        try:
            changes, epoch = self._changes[project_id], self._epoch
            now = clock.now()
            data = await self.loader(project_id, now)
        finally:
            self._reads.release()
        self.loads += 1
        if data is None:
            return None
        old = self._snaps.get(project_id)
        rows = view.prepare(data, {r.key: r for r in old.rows} if old is not None else None)
        board = view.build(data, now, rows)
        return self._keep(Snapshot(project_id, data, board, board.signature(), rows, changes, epoch))

    def _keep(self, snap: Snapshot) -> Snapshot:
        """Remember `snap` unless a later read landed first (then answer with that one); the
        rendered bytes carry over when nothing shown changed."""
        old = self._snaps.get(snap.project_id)
        if old is not None and (old.epoch, old.changes) > (snap.epoch, snap.changes):
            return old
        if old is not None and old.tag == snap.tag:
            snap.bodies, snap.gzipped = old.bodies, old.gzipped
        self._snaps[snap.project_id] = snap
        if old is None or old.tag != snap.tag:
            self._publish(snap.project_id, snap.tag)
        return snap

    # ---- rendered bytes -----------------------------------------------------------------------

    def body(self, snap: Snapshot, variant: Hashable, render: Callable[[Snapshot], str]) -> bytes:
        """The fragment of `snap` for `variant`, assembled at most once."""
        body = snap.bodies.get(variant)
        if body is None:
            body = snap.bodies[variant] = render(snap).encode()
            self.renders += 1
        return body

    def gzipped(self, snap: Snapshot, variant: Hashable, body: bytes) -> bytes:
        gz = snap.gzipped.get(variant)
        if gz is None:
            gz = snap.gzipped[variant] = gzip.compress(body, compresslevel=6, mtime=0)
        return gz

    # ---- server-sent events -----------------------------------------------------------------

    def _schedule_refresh(self, project_id: int) -> None:
        """Read the board again soon and tell its streams if what it shows changed."""
        if project_id in self._refreshing:
            self._again.add(project_id)  # a NOTIFY during the read: read once more after it
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refreshing[project_id] = loop.create_task(self._refresh(project_id))

    async def _refresh(self, project_id: int) -> None:
        try:
            while True:
                self._again.discard(project_id)
                try:
                    await self.snapshot(project_id)
                except Exception:
                    log.exception("board refresh of project %s failed", project_id)
                if project_id not in self._again:
                    break
        finally:
            self._refreshing.pop(project_id, None)

    def _publish(self, project_id: int, tag: str) -> None:
        for q in self._subscribers.get(project_id, ()):
            # Only the latest version matters to a subscriber: replace whatever it has not read.
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            q.put_nowait(tag)

    def subscribe(self, project_id: int) -> asyncio.Queue[str] | None:
        if self.subscriber_count() >= MAX_SUBSCRIBERS:
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
