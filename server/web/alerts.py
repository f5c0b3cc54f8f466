"""Alerts on the web: the supervisor's /alerts page, one-tap acknowledge, resolve by hand, the
JSON API, the desk's elevator choice and who is on call.

Handlers stay thin: rules live in server.domain.{oncall,escalation}, SQL in
server.persistence.{alerts,oncall}. Step jobs are enqueued only after the commit. The admin
pages (rota, chains, channels, elevators) are in alerts_admin.py, the IoT webhook in iot.py.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from sqlalchemy import text

from server import clock
from server.auth import Principal, staff_guard
from server.domain.messages import N_, DomainError
from server.domain.vocab import Role
from server.persistence import alert_setup
from server.persistence import alerts as alerts_db
from server.persistence import oncall as oncall_db
from server.runtime import Runtime
from server.web import alerts_admin, iot
from server.web.alerts_admin import principal, runtime
from server.web.api_orders import actor_of
from server.web.errors import is_htmx
from server.web.templates import local_time, render

log = logging.getLogger("baoxiu.alerts.web")

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
VIEW = {"roles": frozenset({Role.SUPERVISOR, Role.MANAGER, Role.MONITOR, Role.DISPATCHER, Role.ADMIN})}
LIST = {"roles": alerts_db.ACK_ROLES | {Role.ADMIN}}
ACK = {"roles": alerts_db.ACK_ROLES}
RESOLVE = {"roles": alerts_db.RESOLVE_ROLES}
DESK = {"roles": frozenset({Role.DISPATCHER, Role.MONITOR, Role.SUPERVISOR})}


async def schedule_after_commit(rt: Runtime, steps: list[Any]) -> None:
    """Enqueue the step jobs of alerts opened or stepped by a committed transaction."""
    steps = [s for s in steps if isinstance(s, alerts_db.Scheduled)]
    if not steps:
        return
    try:
        from workers.alert_jobs import schedule
        from workers.scheduling import arq_pool

        await schedule(await arq_pool(rt), steps)
    except Exception as e:  # Redis down: the escalation sweep runs the step on time anyway
        log.warning("could not schedule alert steps: %s", e)


# ---- acknowledge and resolve ---------------------------------------------------------------


async def _acknowledge(rt: Runtime, p: Principal, alert_id: int) -> alerts_db.AckResult:
    async with rt.engine.begin() as conn:
        result = await alerts_db.acknowledge(conn, alert_id, actor_of(p), clock.now())
    if result.changed and rt.board is not None:
        rt.board.bump(result.alert["project_id"])  # the board redraws without waiting for NOTIFY
    return result


async def _resolve(rt: Runtime, p: Principal, alert_id: int, reason: str) -> bool:
    async with rt.engine.begin() as conn:
        changed = await alerts_db.resolve(conn, alert_id, actor_of(p), clock.now(), reason, by_hand=True)
    return changed


async def _one(rt: Runtime, p: Principal, alert_id: int) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        rows = await alerts_db.list_alerts(conn, p.project_ids, alert_id=alert_id)
    return alerts_db.alert_json(rows[0])


@post("/alerts/{alert_id:int}/acknowledge", guards=[staff_guard], opt=ACK, status_code=200)
async def acknowledge_page(request: Request[Any, Any, Any], alert_id: int) -> Response[Any]:
    """One tap from the tablet, the board or /alerts; repeating it changes nothing."""
    await _acknowledge(runtime(request), principal(request), alert_id)
    if is_htmx(request) and request.headers.get("hx-target"):
        # The tablet swaps its list: reload the page instead so every panel agrees.
        return Response(b"", status_code=200, headers={"HX-Refresh": "true"})
    if is_htmx(request):
        return Response(b"", status_code=204, headers={"HX-Trigger": "board-refresh"})
    return Response(b"", status_code=303, headers={"Location": "/alerts"})


@post("/alerts/{alert_id:int}/resolve", guards=[staff_guard], opt=RESOLVE, status_code=303)
async def resolve_page(request: Request[Any, Any, Any], alert_id: int, data: Form) -> Response[Any]:
    """A supervisor ends an alert by hand, saying why (the order may stay open)."""
    await _resolve(runtime(request), principal(request), alert_id, data.get("reason", ""))
    return Response(b"", status_code=303, headers={"Location": "/alerts?show=all"})


class ResolveIn(msgspec.Struct):
    reason: str


@post(
    "/api/v1/alerts/{alert_id:int}/acknowledge",
    guards=[staff_guard],
    opt=ACK,
    status_code=200,
    tags=["alerts"],
)
async def acknowledge_api(request: Request[Any, Any, Any], alert_id: int) -> dict[str, Any]:
    """Acknowledge (idempotent: a repeat answers 200 with `changed` false and the first record)."""
    rt, p = runtime(request), principal(request)
    result = await _acknowledge(rt, p, alert_id)
    return {**await _one(rt, p, alert_id), "changed": result.changed}


@post(
    "/api/v1/alerts/{alert_id:int}/resolve",
    guards=[staff_guard],
    opt=RESOLVE,
    status_code=200,
    tags=["alerts"],
)
async def resolve_api(request: Request[Any, Any, Any], alert_id: int, data: ResolveIn) -> dict[str, Any]:
    """Resolve by hand with a reason (supervisor, manager); a repeat answers `changed` false."""
    rt, p = runtime(request), principal(request)
    changed = await _resolve(rt, p, alert_id, data.reason)
    return {**await _one(rt, p, alert_id), "changed": changed}


# ---- lists ---------------------------------------------------------------------------------


@get("/api/v1/alerts", guards=[staff_guard], opt=LIST, tags=["alerts"])
async def list_api(
    request: Request[Any, Any, Any],
    alert_state: str | None = Parameter(
        query="state", default=None, description="triggered | acknowledged | resolved | open"
    ),
    project: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Alerts, newest first, with their order number, kind, state, steps and deliveries.

    `steps[].index` is a step's place in the chain (0-based integer); `deliveries[].step` is the
    integer step it paged (it keeps growing as the chain repeats; `round` counts from 1), or
    null for a reminder (`purpose` "reminder") or a no-contractor notice; `position` names the
    latest step paged as {index, step, round, steps}.
    """
    p = principal(request)
    state = alert_state
    if state and state not in alerts_db.STATES and state != "open":
        raise DomainError("invalid", N_("Unknown value %(value)s"), field="state", value=state[:20])
    pids = await _project_ids(runtime(request), p, project)
    async with runtime(request).engine.connect() as conn:
        rows = await alerts_db.list_alerts(
            conn,
            pids,
            state=None if state == "open" else state,
            open_only=state == "open",
            limit=max(1, min(limit, 500)),
        )
    return {"alerts": [alerts_db.alert_json(a) for a in rows]}


async def _project_ids(rt: Runtime, p: Principal, code: str | None) -> frozenset[int]:
    if not code:
        return p.project_ids
    async with rt.engine.connect() as conn:
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": code[:20]})).scalar()
    if pid is None or pid not in p.project_ids:
        raise DomainError("not_found", N_("Unknown project %(value)s"), field="project", value=code[:20])
    return frozenset({pid})


async def _alerts_page_data(rt: Runtime, p: Principal, show: str) -> dict[str, Any]:
    now = clock.now()
    async with rt.engine.begin() as conn:
        rows = await alerts_db.list_alerts(conn, p.project_ids, open_only=show != "all", limit=100)
        # This page is one of the viewer's screens: alerts shown here reached them.
        await alerts_db.mark_seen(conn, p.staff_id, [a["id"] for a in rows if a["state"] != "resolved"], now)
    return {
        "alerts": rows,
        "show": show,
        "user": p,
        "now": now,
        "can_ack": p.role in alerts_db.ACK_ROLES,
        "can_resolve": p.role in alerts_db.RESOLVE_ROLES,
        "local_time": local_time,
        "target_label": alerts_admin.target_label,
    }


@get("/alerts", guards=[staff_guard], opt=VIEW)
async def alerts_page(request: Request[Any, Any, Any], show: str = "open") -> Response[str]:
    data = await _alerts_page_data(runtime(request), principal(request), show)
    return Response(render("alerts.html", request_path="/alerts", **data), media_type="text/html")


@get("/alerts/list", guards=[staff_guard], opt=VIEW)
async def alerts_list(request: Request[Any, Any, Any], show: str = "open") -> Response[str]:
    data = await _alerts_page_data(runtime(request), principal(request), show)
    return Response(render("alerts_list.html", **data), media_type="text/html")


@get("/alerts/elevator-options", guards=[staff_guard], opt=DESK)
async def elevator_options(request: Request[Any, Any, Any], selected: str = "") -> Response[str]:
    """The desk's elevator choice for an entrapment: the options of the caller's projects."""
    p = principal(request)
    async with runtime(request).engine.connect() as conn:
        elevators = [
            {**e, "project_code": code}
            for pid, code in (
                await conn.execute(
                    text("SELECT id, code FROM projects WHERE id = ANY(:p) AND active ORDER BY code"),
                    {"p": list(p.project_ids)},
                )
            ).all()
            for e in await alert_setup.elevators_of(conn, pid, active_only=True)
        ]
    return Response(
        render("alerts_elevator_options.html", elevators=elevators, selected=selected), media_type="text/html"
    )


@get("/api/v1/oncall", guards=[staff_guard], tags=["alerts"])
async def oncall_api(request: Request[Any, Any, Any], project: str) -> dict[str, Any]:
    """Who is on call now, the rota's gaps in the next 7 days, and when the answer next changes."""
    rt, p = runtime(request), principal(request)
    pid = next(iter(await _project_ids(rt, p, project)))
    async with rt.engine.connect() as conn:
        summary = await oncall_db.duty_summary(conn, pid, clock.now())
    duty = summary["on_call"]
    if duty:
        duty = {
            **duty,
            "starts": duty["starts"].isoformat(timespec="minutes"),
            "ends": duty["ends"].isoformat(timespec="minutes"),
        }
    return {
        "on_call": duty,
        "gaps": [{"from": a, "to": b} for a, b in summary["gaps"]],
        "next_change": summary["next_change"],
    }


ROUTES: list[Any] = [
    acknowledge_page,
    resolve_page,
    acknowledge_api,
    resolve_api,
    list_api,
    alerts_page,
    alerts_list,
    elevator_options,
    oncall_api,
    *alerts_admin.ROUTES,
    *iot.ROUTES,
]
