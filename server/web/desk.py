"""The desk: fast keyboard intake, customer lookup, the order page with its timeline and slip."""

from __future__ import annotations

from typing import Annotated, Any

import segno
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain import lifecycle
from server.domain.intake import normalize_phone
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import REPAIR_CATEGORIES, Category, Channel, Kind, Role, Urgency
from server.labels import action_label
from server.persistence import orders as orders_db
from server.runtime import Runtime
from server.web.api_orders import INTAKE_ROLES, actor_of, create_order_from, run_action
from server.web.errors import is_htmx, translate
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
DESK_ROLES = {"roles": INTAKE_ROLES}


async def _desk_context(conn: Any, p: Principal) -> dict[str, Any]:
    projects = (
        (
            await conn.execute(
                text("SELECT id, code, name FROM projects WHERE id = ANY(:ids) AND active ORDER BY code"),
                {"ids": list(p.project_ids)},
            )
        )
        .mappings()
        .all()
    )
    areas = (
        (
            await conn.execute(
                text(
                    "SELECT a.name, p.code FROM public_areas a JOIN projects p ON p.id = a.project_id "
                    "WHERE a.project_id = ANY(:ids) ORDER BY a.name"
                ),
                {"ids": list(p.project_ids)},
            )
        )
        .mappings()
        .all()
    )
    catalog = (
        (
            await conn.execute(
                text(
                    "SELECT code, name, minutes, price_fen, category FROM catalog_items "
                    "WHERE active AND (project_id IS NULL OR project_id = ANY(:ids)) ORDER BY category, name"
                ),
                {"ids": list(p.project_ids)},
            )
        )
        .mappings()
        .all()
    )
    engineers = (
        (
            await conn.execute(
                text(
                    "SELECT DISTINCT s.id, s.display_name FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    "WHERE sp.project_id = ANY(:ids) AND s.role = 'engineer' AND s.active ORDER BY s.display_name"
                ),
                {"ids": list(p.project_ids)},
            )
        )
        .mappings()
        .all()
    )
    recent = (
        (
            await conn.execute(
                text(
                    "SELECT number, status, summary, location, received_at FROM orders WHERE project_id = ANY(:ids) "
                    "ORDER BY id DESC LIMIT 15"
                ),
                {"ids": list(p.project_ids)},
            )
        )
        .mappings()
        .all()
    )
    return {
        "projects": projects,
        "areas": areas,
        "catalog": catalog,
        "engineers": engineers,
        "recent": recent,
        "kinds": list(Kind),
        "urgencies": list(Urgency),
        "channels": list(Channel),
        "repair_categories": [c for c in Category if c in REPAIR_CATEGORIES],
        "matter_categories": [c for c in Category if c not in REPAIR_CATEGORIES],
    }


@get("/desk", guards=[staff_guard], opt=DESK_ROLES)
async def desk(request: Request[Any, Any, Any]) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.connect() as conn:
        ctx = await _desk_context(conn, p)
    return Response(
        render("desk.html", user=p, form={}, errors={}, created=None, request_path="/desk", **ctx),
        media_type="text/html",
    )


@post("/desk/orders", guards=[staff_guard], opt=DESK_ROLES, status_code=200)
async def desk_create(request: Request[Any, Any, Any], data: Form) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    form = {k: v for k, v in data.items() if k != "_csrf"}
    errors: dict[str, str] = {}
    created = None
    try:
        created = await create_order_from(rt, p, form)
    except ValidationErrors as e:
        errors = {f: translate(m, prm) for f, (m, prm) in e.errors.items()}
    except DomainError as e:
        errors = {e.field or "form": translate(e.msgid, e.params)}
    async with rt.engine.connect() as conn:
        ctx = await _desk_context(conn, p)
    html = render(
        "fragments/desk_form.html" if is_htmx(request) else "desk.html",
        user=p,
        form={} if created else form,
        errors=errors,
        created=created,
        request_path="/desk",
        **ctx,
    )
    return Response(html, status_code=422 if errors else 200, media_type="text/html")


@get("/desk/lookup", guards=[staff_guard], opt=DESK_ROLES)
async def desk_lookup(request: Request[Any, Any, Any], q: str = "") -> Response[str]:
    """Customers by phone (any part) or room (1-1-101 prefix): the autocomplete of the intake."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    q = q.strip()[:40]
    rows: list[Any] = []
    if len(q) >= 3:
        phone = normalize_phone(q) or "".join(ch for ch in q if ch.isdigit())
        async with rt.engine.connect() as conn:
            rows = list(
                (
                    await conn.execute(
                        text(
                            "SELECT b.code || '-' || r.unit || '-' || r.number AS room, r.owner_name, r.owner_phone, pr.code AS project "
                            "FROM rooms r JOIN buildings b ON b.id = r.building_id JOIN projects pr ON pr.id = b.project_id "
                            "WHERE b.project_id = ANY(:ids) AND ((:phone <> '' AND r.owner_phone LIKE '%' || :phone || '%') "
                            "   OR (b.code || '-' || r.unit || '-' || r.number) LIKE :room || '%') "
                            "ORDER BY 1 LIMIT 8"
                        ),
                        {"ids": list(p.project_ids), "phone": phone if len(phone) >= 3 else "", "room": q},
                    )
                )
                .mappings()
                .all()
            )
    return Response(render("fragments/desk_lookup.html", rows=rows), media_type="text/html")


async def _order_page_context(rt: Runtime, p: Principal, number: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        row = await orders_db.get_by_number(conn, number)
        if row is None or row["project_id"] not in p.project_ids:
            raise DomainError("not_found", N_("No order %(number)s"), number=number[:40])
        hist = await orders_db.history(conn, row["id"])
        clocks = (
            (
                await conn.execute(
                    text(
                        "SELECT kind, generation, started_at, deadline, state, breached_at, ended_at FROM order_clocks "
                        "WHERE order_id = :o ORDER BY id"
                    ),
                    {"o": row["id"]},
                )
            )
            .mappings()
            .all()
        )
        materials = (
            (
                await conn.execute(
                    text(
                        "SELECT name, quantity, unit, unit_price_fen, provided_by, verified FROM order_materials "
                        "WHERE order_id = :o ORDER BY id"
                    ),
                    {"o": row["id"]},
                )
            )
            .mappings()
            .all()
        )
        engineers = (
            (
                await conn.execute(
                    text(
                        "SELECT s.id, s.display_name FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                        "WHERE sp.project_id = :p AND s.role = 'engineer' AND s.active ORDER BY s.display_name"
                    ),
                    {"p": row["project_id"]},
                )
            )
            .mappings()
            .all()
        )
        teams = (
            (
                await conn.execute(
                    text("SELECT id, name FROM teams WHERE project_id = :p ORDER BY id"),
                    {"p": row["project_id"]},
                )
            )
            .mappings()
            .all()
        )
        departments = (
            (await conn.execute(text("SELECT code, name FROM departments ORDER BY code"))).mappings().all()
        )
        reworks = (
            (
                await conn.execute(
                    text("SELECT number, status FROM orders WHERE reopened_from_id = :o ORDER BY id"),
                    {"o": row["id"]},
                )
            )
            .mappings()
            .all()
        )
        designated_name = (
            await conn.execute(
                text("SELECT display_name FROM staff WHERE id = :s"), {"s": row["designated_engineer_id"]}
            )
        ).scalar()
    view = orders_db.order_view(row)
    allowed = lifecycle.allowed_actions(view, actor_of(p).as_lifecycle_actor())
    can_spawn = (
        row["kind"] == Kind.MATTER.value
        and row["status"] not in ("closed", "cancelled")
        and p.role in INTAKE_ROLES
    )
    children = (await _children(rt, row["id"])) if row["kind"] == Kind.MATTER.value else []
    return {
        "order": row,
        "history": hist,
        "clocks": clocks,
        "materials": materials,
        "allowed": allowed,
        "specs": lifecycle.ACTIONS,
        "engineers": engineers,
        "teams": teams,
        "departments": departments,
        "reworks": reworks,
        "designated_name": designated_name,
        "now": clock.now(),
        "user": p,
        "can_spawn": can_spawn,
        "repair_categories": [c for c in Category if c in REPAIR_CATEGORIES],
        "children": children,
    }


async def _children(rt: Runtime, order_id: int) -> list[Any]:
    async with rt.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text("SELECT number, status FROM orders WHERE parent_order_id = :o ORDER BY id"),
                    {"o": order_id},
                )
            )
            .mappings()
            .all()
        )


@get("/orders/{number:str}", guards=[staff_guard])
async def order_page(request: Request[Any, Any, Any], number: str) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    ctx = await _order_page_context(rt, p, number)
    return Response(render("order.html", request_path=f"/orders/{number}", **ctx), media_type="text/html")


@post("/orders/{number:str}/do/{action:str}", guards=[staff_guard], status_code=200)
async def order_do(request: Request[Any, Any, Any], number: str, action: str, data: Form) -> Response[str]:
    """A button on a page: the same lifecycle step as the API; refusals shown in place."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    body: dict[str, Any] = {k: v for k, v in data.items() if v != ""}
    row = await run_action(rt, p, number, action, body)
    ctx = await _order_page_context(rt, p, number)
    flash = (
        translate(
            N_("%(number)s: rework order %(rework)s opened"),
            {"number": number, "rework": row["rework_number"]},
        )
        if row.get("rework_number")
        else translate(N_("Done: %(action)s"), {"action": action_label(action)})
    )
    html = render(
        "fragments/order_main.html" if is_htmx(request) else "order.html",
        request_path=f"/orders/{number}",
        flash=flash,
        **ctx,
    )
    return Response(html, media_type="text/html")


@get("/orders/{number:str}/slip", guards=[staff_guard])
async def order_slip(request: Request[Any, Any, Any], number: str) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    ctx = await _order_page_context(rt, p, number)
    link = str(request.base_url).rstrip("/") + f"/orders/{number}"
    qr = segno.make(link, error="m").svg_inline(scale=3, dark="#000", light="#fff")
    return Response(render("slip.html", qr_svg=qr, link=link, **ctx), media_type="text/html")


@post("/orders/{number:str}/spawn", guards=[staff_guard], opt=DESK_ROLES, status_code=200)
async def order_spawn(request: Request[Any, Any, Any], number: str, data: Form) -> Response[str]:
    from server.web.api_orders import spawn_from

    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    reg = await spawn_from(rt, p, number, data.get("category", ""))
    ctx = await _order_page_context(rt, p, number)
    html = render(
        "fragments/order_main.html" if is_htmx(request) else "order.html",
        request_path=f"/orders/{number}",
        flash=translate(N_("Repair %(number)s registered"), {"number": reg.number}),
        **ctx,
    )
    return Response(html, media_type="text/html")


ROUTES = [desk, desk_create, desk_lookup, order_page, order_do, order_slip, order_spawn]
_ = Role  # re-exported for route opts in other modules
