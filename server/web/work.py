"""The engineer's tablet and the supervisor's triage screen: lists of orders with one-tap steps.

Both call the same lifecycle step as the API (api_orders.run_action); a refusal (409, 422)
comes back as a message in place, and the list re-renders with the order's new state.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain import lifecycle
from server.domain.messages import N_, DomainError
from server.domain.vocab import Category, Kind, Role, Status
from server.persistence import orders as orders_db
from server.persistence.queries import sql
from server.runtime import Runtime
from server.web.api_orders import actor_of, run_action
from server.web.errors import translate
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
TABLET = {"roles": frozenset({Role.ENGINEER, Role.HANDLER, Role.SUPERVISOR})}
TRIAGE = {"roles": frozenset({Role.SUPERVISOR, Role.DISPATCHER, Role.MONITOR, Role.MANAGER})}


def _with_actions(rows: list[dict[str, Any]], p: Principal) -> list[dict[str, Any]]:
    actor = actor_of(p).as_lifecycle_actor()
    for r in rows:
        r["allowed"] = lifecycle.allowed_actions(orders_db.order_view(r), actor)
    return rows


async def _tablet_data(rt: Runtime, p: Principal) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    sql("tablet_orders"),
                    {
                        "me": p.staff_id,
                        "pids": list(p.project_ids),
                        "teams": list(p.team_ids),
                        "dept": p.department,
                    },
                )
            )
            .mappings()
            .all()
        ]
        alerts = [
            dict(r)
            for r in (
                await conn.execute(
                    text(
                        "SELECT a.id, a.kind, a.title, a.started_at, a.next_step_index, o.number, o.location "
                        "FROM alerts a LEFT JOIN orders o ON o.id = a.order_id "
                        "WHERE a.project_id = ANY(:pids) AND a.state = 'triggered' ORDER BY a.started_at"
                    ),
                    {"pids": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        ]
    _with_actions(rows, p)
    mine = [
        r
        for r in rows
        if r["assignee_id"] == p.staff_id or (r["assignee_id"] is None and r["status"] != "pooled")
    ]
    pool = [r for r in rows if r["status"] == Status.POOLED.value]
    return {"mine": mine, "pool": pool, "alerts": alerts, "now": clock.now(), "user": p}


@get("/tablet", guards=[staff_guard], opt=TABLET)
async def tablet(request: Request[Any, Any, Any]) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    data = await _tablet_data(rt, p)
    return Response(render("tablet.html", request_path="/tablet", **data), media_type="text/html")


@get("/tablet/list", guards=[staff_guard], opt=TABLET)
async def tablet_list(request: Request[Any, Any, Any]) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    data = await _tablet_data(rt, p)
    return Response(render("fragments/tablet_list.html", **data), media_type="text/html")


@post("/tablet/do/{number:str}/{action:str}", guards=[staff_guard], opt=TABLET, status_code=200)
async def tablet_do(request: Request[Any, Any, Any], number: str, action: str, data: Form) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    body: dict[str, Any] = {k: v for k, v in data.items() if v != "" and k != "_csrf"}
    await run_action(rt, p, number, action, body)
    data_ = await _tablet_data(rt, p)
    flash = translate(N_("%(number)s: done"), {"number": number})
    return Response(render("fragments/tablet_list.html", flash=flash, **data_), media_type="text/html")


def _triage_filters(q: dict[str, str], p: Principal) -> dict[str, Any]:
    f: dict[str, Any] = {
        "pids": list(p.project_ids),
        "project": None,
        "team": None,
        "category": None,
        "kind": None,
        "status": None,
        "breached": False,
    }
    if q.get("project"):
        f["project"] = q["project"][:20]
    if q.get("team", "").isdigit():
        f["team"] = int(q["team"])
    if q.get("category"):
        try:
            f["category"] = Category(q["category"]).value
        except ValueError:
            raise DomainError(
                "invalid", N_("Unknown value %(value)s"), field="category", value=q["category"][:30]
            ) from None
    if q.get("kind"):
        try:
            f["kind"] = Kind(q["kind"]).value
        except ValueError:
            raise DomainError(
                "invalid", N_("Unknown value %(value)s"), field="kind", value=q["kind"][:30]
            ) from None
    if q.get("status"):
        try:
            f["status"] = Status(q["status"]).value
        except ValueError:
            raise DomainError(
                "invalid", N_("Unknown value %(value)s"), field="status", value=q["status"][:30]
            ) from None
    f["breached"] = q.get("breached") in ("1", "on", "true")
    return f


async def _triage_data(rt: Runtime, p: Principal, q: dict[str, str]) -> dict[str, Any]:
    f = _triage_filters(q, p)
    async with rt.engine.connect() as conn:
        rows = [
            dict(r)
            for r in (await conn.execute(sql("triage_orders"), {**f, "now": clock.now()})).mappings().all()
        ]
        engineers = (
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT s.id, s.display_name FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                        "WHERE sp.project_id = ANY(:pids) AND s.role IN ('engineer', 'handler') AND s.active "
                        "ORDER BY s.display_name"
                    ),
                    {"pids": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        )
        teams = (
            (
                await conn.execute(
                    text("SELECT id, name FROM teams WHERE project_id = ANY(:pids) ORDER BY name"),
                    {"pids": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        )
        projects = (
            (
                await conn.execute(
                    text("SELECT code, name FROM projects WHERE id = ANY(:pids) ORDER BY code"),
                    {"pids": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        )
    _with_actions(rows, p)
    return {
        "rows": rows,
        "engineers": engineers,
        "teams": teams,
        "projects": projects,
        "filters": q,
        "categories": list(Category),
        "kinds": list(Kind),
        "statuses": list(Status),
        "now": clock.now(),
        "user": p,
    }


@get("/triage", guards=[staff_guard], opt=TRIAGE)
async def triage(request: Request[Any, Any, Any]) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    q = dict(request.query_params)
    data = await _triage_data(rt, p, q)
    return Response(render("triage.html", request_path="/triage", **data), media_type="text/html")


@get("/triage/rows", guards=[staff_guard], opt=TRIAGE)
async def triage_rows(request: Request[Any, Any, Any]) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    data = await _triage_data(rt, p, dict(request.query_params))
    return Response(render("fragments/triage_rows.html", **data), media_type="text/html")


@post("/triage/do/{action:str}", guards=[staff_guard], opt=TRIAGE, status_code=200)
async def triage_do(request: Request[Any, Any, Any], action: str, data: Form) -> Response[str]:
    """One order (number + version) or a bulk selection (numbers "N1@v1,N2@v2")."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    inputs = {
        k: v for k, v in data.items() if v != "" and k not in ("_csrf", "number", "version", "selected")
    }
    targets: list[tuple[str, int]] = []
    if data.get("number"):
        targets.append((data["number"], int(data.get("version") or 0)))
    for item in (data.get("selected") or "").split(","):
        if "@" in item:
            n, _, v = item.partition("@")
            if v.isdigit():
                targets.append((n, int(v)))
    if not targets:
        raise DomainError("invalid", N_("Select at least one order"), field="selected")
    done, refused = [], []
    for number, version in targets:
        try:
            await run_action(rt, p, number, action, {"version": version, **inputs})
            done.append(number)
        except DomainError as e:
            if len(targets) == 1:
                raise
            refused.append(f"{number}: {translate(e.msgid, e.params)}")
    q = dict(request.query_params)
    data_ = await _triage_data(rt, p, q)
    flash = translate(N_("%(count)s done"), {"count": len(done)}) + (
        "; " + "; ".join(refused) if refused else ""
    )
    return Response(render("fragments/triage_rows.html", flash=flash, **data_), media_type="text/html")


ROUTES = [tablet, tablet_list, tablet_do, triage, triage_rows, triage_do]
