"""The wall board of the monitoring center (GET /board): page, polled fragment, SSE push, alert ack.

The page polls one fragment every BOARD_POLL_SECONDS with the version it last saw; an unchanged
board answers 204 from memory (server/board/state.py). A changed board is rendered once per
version and variant (locale, may-acknowledge) and the same bytes go to every poller. The SSE stream
only says "look now"; polling alone keeps the board right when the stream is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from server import clock
from server.auth import Principal, board_guard, current
from server.board import view
from server.board.state import BoardState
from server.domain.vocab import Role
from server.i18n import get_locale
from server.i18n import gettext as _
from server.labels import label
from server.persistence import board as board_db
from server.runtime import Runtime
from server.web import test_clock
from server.web.templates import local_time, render

ACK_ROLES = frozenset({Role.SUPERVISOR})
PROJECT_REFRESH_SECONDS = 5.0  # an unknown project code re-reads the project list at most this often
SSE_HEARTBEAT_SECONDS = 15.0


def _state(request: Request[Any, Any, Any]) -> BoardState:
    rt: Runtime = request.app.state.runtime
    if rt.board is None:  # an app assembled without it (create_app sets it)
        rt.board = BoardState()
    return rt.board


_projects: dict[int, board_db.ProjectInfo] = {}
_projects_read_at = 0.0


async def _project(request: Request[Any, Any, Any], p: Principal, code: str | None) -> board_db.ProjectInfo:
    """The project asked for (default: the caller's first by code); 404 for one the caller does not serve."""
    global _projects_read_at
    code = (code or "").strip().upper()[:20]

    def pick() -> board_db.ProjectInfo | None:
        mine = sorted((x for x in _projects.values() if x.id in p.project_ids), key=lambda x: x.code)
        if not code:
            return mine[0] if mine else None
        return next((x for x in mine if x.code == code), None)

    found = pick()
    if found is None and time.monotonic() - _projects_read_at > PROJECT_REFRESH_SECONDS:
        rt: Runtime = request.app.state.runtime
        async with rt.engine.connect() as conn:
            rows = await board_db.projects(conn)
        _projects.clear()
        _projects.update({x.id: x for x in rows})
        _projects_read_at = time.monotonic()
        found = pick()
    if found is None:
        raise NotFoundException("project")
    return found


def _can_ack(p: Principal) -> bool:
    return p.is_staff and p.role in ACK_ROLES


async def _fragment(
    request: Request[Any, Any, Any], p: Principal, project: board_db.ProjectInfo
) -> tuple[str, bytes]:
    rt: Runtime = request.app.state.runtime
    can_ack = _can_ack(p)
    locale = get_locale()

    async def draw(tag: str) -> tuple[bytes, datetime | None]:
        now = clock.now()
        async with rt.engine.connect() as conn:
            data = await board_db.load(conn, project.id)
        if data is None:
            raise NotFoundException("project")
        board = view.build(data, now, day_unit=_("d"), translate=_)
        html = render(
            "fragments/board_body.html",
            board=board,
            version=tag,
            can_ack=can_ack,
            label=label,
            local_time=local_time,
        )
        return html.encode(), board.next_change

    return await _state(request).fragment(project.id, (locale, can_ack), draw)


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
    tag, body = await _fragment(request, p, proj)
    kiosk = request.query_params.get("kiosk")
    qs = {"project": proj.code, **({"kiosk": kiosk} if kiosk and p.kind == "kiosk" else {})}
    html = render(
        "board.html",
        user=p if p.is_staff else None,
        project=proj,
        body=body.decode(),
        version=tag,
        qs=qs,
        poll_seconds=rt.settings.board_poll_seconds,
        sse=rt.settings.board_sse,
        now_ms=int(clock.now().timestamp() * 1000),
        request_path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )
    return Response(html, media_type="text/html", headers=_headers(tag))


@get("/board/fragment", guards=[board_guard])
async def board_fragment(
    request: Request[Any, Any, Any], project: str | None = None, v: str | None = None
) -> Response[bytes]:
    p = current(request)
    assert p is not None
    proj = await _project(request, p, project)
    state = _state(request)
    if state.unchanged(proj.id, v):
        return Response(b"", status_code=204, headers=_headers(state.tag(proj.id)))
    tag, body = await _fragment(request, p, proj)
    return Response(body, media_type="text/html; charset=utf-8", headers=_headers(tag))


@get("/board/events", guards=[board_guard])
async def board_events(request: Request[Any, Any, Any], project: str | None = None) -> ServerSentEvent:
    """Server-sent events: `board` with the new version whenever the project's board changes."""
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
            yield ServerSentEventMessage(event="board", data=state.current(proj.id), retry=3000)
            while True:
                wait = SSE_HEARTBEAT_SECONDS
                due = state.seconds_to_change(proj.id)
                if due is not None:
                    wait = min(wait, due + 0.05)
                try:
                    tag = await asyncio.wait_for(queue.get(), timeout=wait)
                except TimeoutError:
                    if not state.check_time(
                        proj.id
                    ):  # a colour turned by time alone: that bump fills the queue
                        yield ServerSentEventMessage(comment="ping")
                    continue
                yield ServerSentEventMessage(event="board", data=tag)
        finally:
            state.unsubscribe(proj.id, queue)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


ROUTES: list[Any] = [board_page, board_fragment, board_events, *test_clock.ROUTES]
