"""POST /_test/clock {offset_seconds}: move the shared test clock (mounted only with BAOXIU_TEST_CLOCK=1).

Every process adds the offset to its wall clock (server/clock.py); the row in app_clock is what a
process reads at start, the NOTIFY 'clock' moves the running ones (this one included).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.exceptions import NotFoundException
from sqlalchemy import text

from server import clock
from server.config import get_settings
from server.runtime import Runtime


class ClockOffset(msgspec.Struct):
    offset_seconds: float


@post("/_test/clock", status_code=200)
async def set_test_clock(request: Request[Any, Any, Any], data: ClockOffset) -> Response[dict[str, Any]]:
    rt: Runtime = request.app.state.runtime
    if not rt.settings.test_clock:  # belt and braces: the route is not even mounted then
        raise NotFoundException("clock")
    async with rt.engine.begin() as conn:
        await conn.execute(
            text("UPDATE app_clock SET offset_seconds = :o WHERE id = 1"), {"o": data.offset_seconds}
        )
        await conn.execute(text("SELECT pg_notify('clock', :p)"), {"p": repr(float(data.offset_seconds))})
    clock.set_offset(data.offset_seconds)  # at once here; other processes follow the NOTIFY
    if rt.board is not None:
        rt.board.invalidate_all()  # every colour may have turned
    return Response({"offset_seconds": data.offset_seconds, "now": clock.now().isoformat()})


ROUTES: list[Any] = [set_test_clock] if get_settings().test_clock else []
