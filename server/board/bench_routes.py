"""Endpoints mounted only for `make bench` (BAOXIU_BENCH=1), never in production.

- GET /_bench/board_raw?project=: the board's rows as JSON straight from asyncpg (the same
  statement as the board, no view, no template): the reference the full fragment is held to.
- GET /_bench/board_changed?project=: the full fragment when the board has just changed (the
  process is told its snapshot is stale, as a NOTIFY would, and that what it shows changed, so
  the fragment is assembled again from the cached cards), through the board's own path.
Both sit behind the same guard (kiosk token) as the board, so they pay the same per-request costs.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
from litestar import Request, Response, get

from server import clock
from server.auth import board_guard, current
from server.notifier import asyncpg_dsn
from server.persistence import board as board_db
from server.runtime import Runtime

ENABLED = os.environ.get("BAOXIU_BENCH") == "1"

_pool: asyncpg.Pool | None = None
_pool_lock = asyncio.Lock()


@get("/_bench/board_raw", guards=[board_guard])
async def board_raw(request: Request[Any, Any, Any], project: str | None = None) -> Response[bytes]:
    global _pool
    from server.web.board import _project

    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    info = await _project(request, p, project)
    async with _pool_lock:
        if _pool is None:  # as many connections as the board's own pool keeps
            _pool = await asyncpg.create_pool(asyncpg_dsn(rt.settings.database_url), min_size=10, max_size=10)
    async with _pool.acquire() as conn:
        row = await board_db.fetch_board(conn, info, clock.now())
    assert row is not None
    counts = ",".join(str(row[k]) for k in board_db.SHIFT_KEYS)
    body = f'{{"cards":[{",".join(row["cards"])}],"alerts":{row["alerts"]},"shifts":{row["shifts"]},"counts":[{counts}]}}'
    return Response(body.encode(), media_type="application/json")


@get("/_bench/board_changed", guards=[board_guard])
async def board_changed(request: Request[Any, Any, Any], project: str | None = None) -> Response[bytes]:
    from server.web.board import _project, _state, serve_fragment

    p = current(request)
    assert p is not None
    info = await _project(request, p, project)
    state = _state(request)
    state.invalidate(info.id)  # what a NOTIFY 'board' for this project does
    state.forget_rendered(info.id)  # and the change shows: the fragment is assembled again
    return await serve_fragment(request, project, None)


ROUTES: list[Any] = [board_raw, board_changed] if ENABLED else []
