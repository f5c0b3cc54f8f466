"""The wall board of the monitoring center (GET /board): page, polled fragment, SSE push.

The page polls one fragment every BOARD_POLL_SECONDS with the version it last saw. An unchanged
board answers 204 from memory in whichever web process the poll lands on (server/board/state.py:
the version is a digest of what the board shows). A changed board is read once per process and
change, assembled once per variant (locale, may-acknowledge) from cached cards, and the same
bytes (gzipped once) go to every poller. The SSE stream only says "look now"; polling alone
keeps the board right when the stream is down.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage
from markupsafe import Markup, escape

from server import clock
from server.auth import Principal, board_guard, current
from server.board import bench_routes, view
from server.board.state import BoardState, Snapshot
from server.domain.vocab import Role
from server.i18n import get_locale
from server.i18n import gettext as _
from server.persistence import board as board_db
from server.persistence.board import BoardData, ProjectInfo
from server.runtime import Runtime
from server.web import test_clock
from server.web.templates import local_time, render

ACK_ROLES = frozenset({Role.SUPERVISOR})
PROJECT_REFRESH_SECONDS = 5.0  # an unknown project code re-reads the project list at most this often
SSE_HEARTBEAT_SECONDS = 15.0
NO_BREAK_HYPHEN = "\u2011"  # "4栋-2单元-802" stays on one line


# ---- what the templates format ---------------------------------------------------------------


def nobreak(text: str) -> str:
    """A location with non-breaking hyphens: building-unit-room never breaks inside."""
    return text.replace("-", NO_BREAK_HYPHEN)


def _small_units(text: str) -> Markup:
    """Digits big, units small: "+19小时05分" stays narrow enough to share a line with the summary."""
    return Markup(re.sub(r"([^\d+:]+)", r"<small>\1</small>", str(escape(text))))  # escaped first


def span_text(seconds: int) -> Markup:
    """05:07 · 1 h 05 min · 2 d 03 h; overdue with a "+" (static/board.js formats alike)."""
    sign = "+" if seconds < 0 else ""
    s = abs(int(seconds))
    if s < 3600:
        return Markup(f"{sign}{s // 60:02d}:{s % 60:02d}")  # digits only
    if s < 86400:
        return _small_units(sign + _("%(h)s h %(m)s min", h=s // 3600, m=f"{s % 3600 // 60:02d}"))
    return _small_units(sign + _("%(d)s d %(h)s h", d=s // 86400, h=f"{s % 86400 // 3600:02d}"))


def minutes_text(minutes: int) -> Markup:
    """A business-hours countdown, by the minute: 42 min, 3.5 h."""
    if minutes < 100:
        return _small_units(_("%(n)s min", n=minutes))
    return _small_units(_("%(n)s h", n=f"{minutes / 60:.1f}".rstrip("0").rstrip(".")))


def js_formats() -> dict[str, str]:
    """The same formats for static/board.js, with {placeholders}."""
    return {
        "hm": _("%(h)s h %(m)s min", h="{h}", m="{m}"),
        "dh": _("%(d)s d %(h)s h", d="{d}", h="{h}"),
        "more": _("+%(n)s more", n="{n}"),
    }


# ---- the board's data and bytes ----------------------------------------------------------------


def _state(request: Request[Any, Any, Any]) -> BoardState:
    rt: Runtime = request.app.state.runtime
    if rt.board is None:  # an app assembled without it (create_app sets it)
        rt.board = BoardState()
    if rt.board.loader is None:

        async def load(project_id: int, now: datetime) -> BoardData | None:
            info = _projects.get(project_id)
            if info is None:
                return None
            async with rt.engine.connect() as conn:
                data = await board_db.load(conn, info, now)
            if data is not None:  # the project's settings as just read (a NOTIFY brought us here)
                _projects[project_id] = ProjectInfo(
                    data.project_id, data.code, data.name, data.tz, data.desk_opens, data.desk_closes
                )
            return data

        rt.board.loader = load
    return rt.board


_projects: dict[int, ProjectInfo] = {}
_projects_read_at = 0.0


async def _project(request: Request[Any, Any, Any], p: Principal, code: str | None) -> ProjectInfo:
    """The project asked for (default: the caller's first by code); 404 for one the caller does not serve."""
    global _projects_read_at
    found = _known_project(p, code)
    if found is None and time.monotonic() - _projects_read_at > PROJECT_REFRESH_SECONDS:
        rt: Runtime = request.app.state.runtime
        async with rt.engine.connect() as conn:
            rows = await board_db.projects(conn)
        _projects.clear()
        _projects.update({x.id: x for x in rows})
        _projects_read_at = time.monotonic()
        found = _known_project(p, code)
    if found is None:
        raise NotFoundException("project")
    return found


def _can_ack(p: Principal) -> bool:
    return p.is_staff and p.role in ACK_ROLES


def _assemble(state: BoardState, snap: Snapshot, locale: str, can_ack: bool) -> str:
    def card_html(card: view.Card) -> str:
        return render(
            "fragments/board_card.html",
            c=card,
            nobreak=nobreak,
            span_text=span_text,
            minutes_text=minutes_text,
        )

    shown = [c for col in snap.view.columns for c in col.cards]
    html = iter(state.cards.html(snap.project_id, locale, shown, card_html))
    columns = [
        {
            "key": col.key,
            "heading": col.heading,
            "total": col.total,
            "hidden": col.hidden,
            # each card was rendered by an autoescaping template
            "html": Markup("".join(next(html) for _c in col.cards)),
        }
        for col in snap.view.columns
    ]
    return render(
        "fragments/board_body.html",
        board=snap.view,
        columns=columns,
        version=snap.tag,
        can_ack=can_ack,
        local_time=local_time,
        nobreak=nobreak,
    )


async def _fragment(
    request: Request[Any, Any, Any], p: Principal, project: ProjectInfo
) -> tuple[Snapshot, bytes]:
    state = _state(request)
    snap = await state.snapshot(project.id)
    if snap is None:
        raise NotFoundException("project")
    locale, can_ack = get_locale(), _can_ack(p)
    body = state.body(snap, (locale, can_ack), lambda s: _assemble(state, s, locale, can_ack))
    return snap, body


def _headers(tag: str) -> dict[str, str]:
    # X-Board-Now lets the browser count down on the server's clock (the test clock included).
    return {
        "X-Board-Version": tag,
        "X-Board-Now": str(int(clock.now().timestamp() * 1000)),
        "Cache-Control": "no-store",
    }


@get("/board", guards=[board_guard])
async def board_page(request: Request[Any, Any, Any], project: str | None = None) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    proj = await _project(request, p, project)
    snap, body = await _fragment(request, p, proj)
    kiosk = request.query_params.get("kiosk")
    qs = {"project": proj.code, **({"kiosk": kiosk} if kiosk and p.kind == "kiosk" else {})}
    html = render(
        "board.html",
        user=p if p.is_staff else None,
        project=proj,
        body=body.decode(),
        version=snap.tag,
        qs=qs,
        poll_seconds=rt.settings.board_poll_seconds,
        sse=rt.settings.board_sse,
        formats=js_formats(),
        now_ms=int(clock.now().timestamp() * 1000),
        request_path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )
    return Response(html, media_type="text/html", headers=_headers(snap.tag))


async def serve_fragment(
    request: Request[Any, Any, Any], project: str | None, v: str | None
) -> Response[bytes]:
    """GET /board/fragment: 204 when the poller has seen this version, else the body."""
    p = current(request)
    assert p is not None
    proj = await _project(request, p, project)
    state = _state(request)
    if state.unchanged(proj.id, v):  # from memory: no database, no rendering
        return Response(b"", status_code=204, headers=_headers(v or ""))
    snap, body = await _fragment(request, p, proj)
    headers = _headers(snap.tag)
    if v == snap.tag:
        return Response(b"", status_code=204, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        # Compressed once per version and variant (the compression middleware skips this path).
        body = state.gzipped(snap, (get_locale(), _can_ack(p)), body)
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def _known_project(p: Principal, code: str | None) -> ProjectInfo | None:
    """The project of a poll from the process's project list alone (None: ask the handler)."""
    code = (code or "").strip().upper()[:20]
    mine = [x for x in _projects.values() if x.id in p.project_ids]
    if not code:
        return min(mine, key=lambda x: x.code) if mine else None
    return next((x for x in mine if x.code == code), None)


class BoardFastPath:
    """The wall's polls answered before routing, from the process's board state alone.

    Hundreds of walls and supervisors poll every two seconds and nearly every poll finds the
    board as it left it: such a poll (its `v` is the version held, trusted and not due) is
    answered 204 here, and one that has not seen it yet gets the bytes already assembled for
    its variant. Anything else (no caller, a project not in the list yet, a snapshot to read or
    a fragment to assemble) goes through the router and the handler as usual. The caller was
    resolved by AuthMiddleware, which wraps this, exactly as board_guard needs it.
    """

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/board/fragment" and scope["method"] == "GET":
            if await self._answer(scope, send):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Any, send: Any) -> bool:
        p: Principal | None = scope.get("user")
        state = self.runtime.board
        if p is None or state is None:
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        proj = _known_project(p, (query.get("project") or [None])[0])
        if proj is None:
            return False
        snap = state.current(proj.id)
        if snap is None:
            return False
        seen = (query.get("v") or [None])[0]
        headers = [(k.lower().encode(), v.encode()) for k, v in _headers(snap.tag).items()]
        if seen == snap.tag:
            state.fast += 1
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        variant = (get_locale(), _can_ack(p))
        body = snap.bodies.get(variant)
        if body is None:
            return False  # to be assembled: the handler does it once for everyone
        accept = b"".join(v for k, v in scope.get("headers", ()) if k == b"accept-encoding")
        if b"gzip" in accept:
            body = state.gzipped(snap, variant, body)
            headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        headers += [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        state.fast += 1
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


@get("/board/fragment", guards=[board_guard])
async def board_fragment(
    request: Request[Any, Any, Any], project: str | None = None, v: str | None = None
) -> Response[bytes]:
    return await serve_fragment(request, project, v)


@get("/board/events", guards=[board_guard])
async def board_events(request: Request[Any, Any, Any], project: str | None = None) -> ServerSentEvent:
    """Server-sent events: `board` with the new version whenever what the project's board shows changes."""
    rt: Runtime = request.app.state.runtime
    if not rt.settings.board_sse:
        raise NotFoundException("events")
    p = current(request)
    assert p is not None
    proj = await _project(request, p, project)
    state = _state(request)
    queue = state.subscribe(proj.id)
    if queue is None:
        raise NotFoundException("events")  # too many streams: the page keeps polling

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        try:
            snap = await state.snapshot(proj.id)
            last = snap.tag if snap else ""
            yield ServerSentEventMessage(event="board", data=last, retry=3000)
            while True:
                wait = SSE_HEARTBEAT_SECONDS
                due = state.seconds_to_change(proj.id)
                if due is not None:
                    wait = min(wait, due + 0.05)
                try:
                    tag = await asyncio.wait_for(queue.get(), timeout=wait)
                except TimeoutError:
                    # Time may have changed the look (a colour band): a changed snapshot fills the queue.
                    await state.snapshot(proj.id)
                    if queue.empty():
                        yield ServerSentEventMessage(comment="ping")
                    continue
                if tag != last:  # the first read may have queued the version just sent
                    last = tag
                    yield ServerSentEventMessage(event="board", data=tag)
        finally:
            state.unsubscribe(proj.id, queue)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


ROUTES: list[Any] = [board_page, board_fragment, board_events, *test_clock.ROUTES, *bench_routes.ROUTES]
