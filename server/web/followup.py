"""Follow-up pages: the callback queue, finance, and the shift lists (slips, handover, >24 h)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain.messages import N_, DomainError
from server.domain.shifts import shift_windows
from server.domain.vocab import Role
from server.persistence import orders as orders_db
from server.persistence import worklists
from server.runtime import Runtime
from server.web.api_orders import actor_of, run_action
from server.web.errors import translate
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
CALLBACK_ROLES = {"roles": frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.MANAGER, Role.MONITOR})}
FINANCE_ROLES = {"roles": frozenset({Role.FINANCE, Role.MANAGER, Role.DISPATCHER})}
SHIFT_ROLES = {"roles": frozenset({Role.DISPATCHER, Role.MONITOR, Role.SUPERVISOR, Role.MANAGER})}


def _me(request: Request[Any, Any, Any]) -> tuple[Runtime, Principal]:
    p = current(request)
    assert p is not None
    return request.app.state.runtime, p


async def _callbacks_ctx(rt: Runtime, p: Principal) -> dict[str, Any]:
    pids = list(p.project_ids)
    now = clock.now()
    async with rt.engine.connect() as conn:
        return {
            "due": await worklists.callbacks_due(conn, pids),
            "unsatisfied": await worklists.unsatisfied_recent(conn, pids, now - timedelta(days=7)),
            "apologies": await worklists.on_breached_clock(conn, pids, "arrival"),
            "checks": await worklists.on_breached_clock(conn, pids, "first_callback"),
            "now": now,
            "user": p,
        }


@get("/callbacks", guards=[staff_guard], opt=CALLBACK_ROLES)
async def callbacks(request: Request[Any, Any, Any]) -> Response[str]:
    rt, p = _me(request)
    return Response(
        render("callbacks.html", request_path="/callbacks", **await _callbacks_ctx(rt, p)),
        media_type="text/html",
    )


@post("/callbacks/{number:str}/{action:str}", guards=[staff_guard], opt=CALLBACK_ROLES, status_code=200)
async def callback_do(request: Request[Any, Any, Any], number: str, action: str, data: Form) -> Response[str]:
    """Record a callback, or reopen an unsatisfied order, from the queue."""
    if action not in ("callback", "reopen"):
        raise DomainError("not_found", N_("Unknown action %(action)s"), action=action[:40])
    rt, p = _me(request)
    body: dict[str, Any] = {k: v for k, v in data.items() if v != "" and k != "_csrf"}
    row = await run_action(rt, p, number, action, body)
    ctx = await _callbacks_ctx(rt, p)
    flash = (
        translate(
            N_("%(number)s: rework order %(rework)s opened"),
            {"number": number, "rework": row["rework_number"]},
        )
        if row.get("rework_number")
        else translate(N_("%(number)s: done"), {"number": number})
    )
    return Response(
        render(
            "fragments/callbacks_main.html",
            flash=flash,
            **ctx,
        ),
        media_type="text/html",
    )


@get("/finance", guards=[staff_guard], opt=FINANCE_ROLES)
async def finance(request: Request[Any, Any, Any]) -> Response[str]:
    rt, p = _me(request)
    async with rt.engine.connect() as conn:
        rows = await worklists.finance(conn, list(p.project_ids))
    return Response(
        render("finance.html", rows=rows, user=p, request_path="/finance"), media_type="text/html"
    )


@post("/finance/{number:str}/paid", guards=[staff_guard], opt=FINANCE_ROLES, status_code=200)
async def finance_paid(request: Request[Any, Any, Any], number: str, data: Form) -> Response[str]:
    rt, p = _me(request)
    await run_action(rt, p, number, "mark_paid", {"version": data.get("version", "")})
    async with rt.engine.connect() as conn:
        rows = await worklists.finance(conn, list(p.project_ids))
    return Response(
        render(
            "finance.html",
            rows=rows,
            user=p,
            request_path="/finance",
            flash=translate(N_("%(number)s: done"), {"number": number}),
        ),
        media_type="text/html",
    )


async def shift_lists(conn: Any, pids: list[int], now: datetime) -> dict[str, Any]:
    proj = (
        await conn.execute(
            text("SELECT tz, desk_opens, desk_closes FROM projects WHERE id = ANY(:p) ORDER BY id LIMIT 1"),
            {"p": pids},
        )
    ).first()
    tz, opens, closes = proj if proj else ("Asia/Shanghai", time(9), time(17, 30))
    w = shift_windows(now, tz, opens, closes)
    return {
        "slips": await worklists.slips_out(conn, pids, w["midnight"]),
        "end_of_shift": await worklists.end_of_shift(conn, pids),
        "handover": await worklists.night_handover(conn, pids, w["night_start"], w["morning"]),
        "over_24h": await worklists.unfinished_over_24h(conn, pids, now),
        "windows": w,
        "tz": tz,
    }


@get("/shift", guards=[staff_guard], opt=SHIFT_ROLES)
async def shift(request: Request[Any, Any, Any]) -> Response[str]:
    rt, p = _me(request)
    async with rt.engine.connect() as conn:
        lists = await shift_lists(conn, list(p.project_ids), clock.now())
    return Response(render("shift.html", user=p, request_path="/shift", **lists), media_type="text/html")


@post("/shift/slip/{number:str}", guards=[staff_guard], opt=SHIFT_ROLES, status_code=200)
async def slip_returned(request: Request[Any, Any, Any], number: str) -> Response[str]:
    rt, p = _me(request)
    now = clock.now()
    async with rt.engine.begin() as conn:
        row = await orders_db.get_by_number(conn, number)
        if row is None or row["project_id"] not in p.project_ids:
            raise DomainError("not_found", N_("No order %(number)s"), number=number[:40])
        if await worklists.mark_slip_returned(conn, row["id"], now):
            await orders_db.add_event(
                conn, row["id"], now, actor_of(p), "slip_returned", row["status"], row["status"], None
            )
        lists = await shift_lists(conn, list(p.project_ids), now)
    return Response(render("shift.html", user=p, request_path="/shift", **lists), media_type="text/html")


ROUTES = [callbacks, callback_do, finance, finance_paid, shift, slip_returned]
