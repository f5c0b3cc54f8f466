"""JSON API for work orders: /api/v1/orders. Same rules and messages as the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import Parameter

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain.intake import parse_datetime, validate_intake
from server.domain.lifecycle import ACTIONS, Person
from server.domain.messages import N_, DomainError
from server.domain.vocab import Category, Channel, Kind, Role, Status, Urgency
from server.persistence import orders as orders_db
from server.runtime import Runtime

INTAKE_ROLES = frozenset({Role.DISPATCHER, Role.MONITOR, Role.SUPERVISOR})


class OrderIn(msgspec.Struct, kw_only=True):
    """A new order. `room` is building-unit-room (e.g. 1-1-101); `public_area` names an area."""

    project: str
    kind: Kind
    reporter_name: str
    reporter_phone: str
    summary: str
    category: Category | None = None
    urgency: Urgency | None = None
    area: Literal["private", "public"] | None = None
    room: str | None = None
    public_area: str | None = None
    content: str = ""
    channel: Channel | None = None
    appointment_at: datetime | None = None
    catalog_item: str | None = None
    designated_engineer_id: int | None = None
    elevator: str | None = None  # an entrapment's elevator (its code): its contractor is notified


class OrderCreated(msgspec.Struct):
    number: str
    status: Status
    version: int
    verification_code: str


def actor_of(p: Principal) -> orders_db.ActorInfo:
    return orders_db.ActorInfo(
        staff_id=p.staff_id,
        name=p.name,
        role=p.role,
        project_ids=p.project_ids,
        team_ids=p.team_ids,
        department=p.department,
    )


def order_json(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    keys = (
        "number",
        "status",
        "version",
        "kind",
        "category",
        "urgency",
        "area",
        "location",
        "reporter_name",
        "reporter_phone",
        "summary",
        "content",
        "channel",
        "appointment_at",
        "assignee_id",
        "assignee_name",
        "department_code",
        "team_id",
        "received_at",
        "dispatched_at",
        "accepted_at",
        "arrived_at",
        "finished_at",
        "closed_at",
        "cancelled_at",
        "next_deadline",
        "next_clock",
        "result",
        "pause_reason",
        "promised_at",
        "unfinished_reason",
        "next_at",
        "callback_method",
        "callback_rating",
        "callback_comment",
        "reopen_count",
        "labour_fen",
        "material_fen",
        "catalog_fee_fen",
        "total_fen",
        "agreed_fen",
        "agreement_recorded",
        "prepaid",
        "paid",
        "started_at",
        "reopened_from_number",
        "parent_number",
        "rework_number",
        "project_code",
        "updated_at",
    )
    out: dict[str, Any] = {k: row.get(k) for k in keys}
    out["project"] = out.pop("project_code")
    out["reopened_from"] = out.pop("reopened_from_number")
    out["spawned_from"] = out.pop("parent_number")
    if out["rework_number"] is None:
        del out["rework_number"]
    out["man_hours"] = str(row["man_hours"]) if row.get("man_hours") is not None else None
    if history is not None:
        out["history"] = [
            {
                "at": h["at"],
                "actor": h["actor_label"],
                "actor_id": h["actor_id"],
                "action": h["action"],
                "from": h["from_status"],
                "to": h["to_status"],
                "reason": h["reason"],
                "inputs": h["inputs"],
            }
            for h in history
        ]
    return out


async def create_order_from(rt: Runtime, p: Principal, raw: dict[str, Any]) -> orders_db.Registered:
    """Validate and register; shared by the API, the desk form and the public form."""
    if p.role not in INTAKE_ROLES:
        raise DomainError("forbidden", N_("You are not allowed to do this"))
    from server.persistence.alerts import for_elevator

    now = clock.now()
    intake = validate_intake(raw, now=now)
    with for_elevator(raw.get("elevator")):
        async with rt.engine.begin() as conn:
            reg = await orders_db.register(conn, intake, actor_of(p), now)
    await after_register(rt, reg)
    return reg


async def after_register(rt: Runtime, reg: orders_db.Registered) -> None:
    """After commit: the deadline job of the new order and the step jobs of an alert it opened."""
    from server.web.alerts import schedule_after_commit

    await rt.after_commit(reg.id)
    await schedule_after_commit(rt, reg.post_commit)


@post("/api/v1/orders", guards=[staff_guard], status_code=201, tags=["orders"])
async def create_order(request: Request[Any, Any, Any], data: OrderIn) -> OrderCreated:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    raw = {k: (v.value if hasattr(v, "value") else v) for k, v in msgspec.structs.asdict(data).items()}
    if data.appointment_at is not None:
        raw["appointment_at"] = data.appointment_at.isoformat()
    reg = await create_order_from(rt, p, raw)
    return OrderCreated(
        number=reg.number,
        status=Status(reg.status),
        version=reg.version,
        verification_code=reg.verification_code,
    )


@get("/api/v1/orders/{number:str}", guards=[staff_guard], tags=["orders"])
async def get_order(request: Request[Any, Any, Any], number: str) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.connect() as conn:
        row = await orders_db.get_by_number(conn, number)
        if row is None or row["project_id"] not in p.project_ids:
            raise DomainError("not_found", N_("No order %(number)s"), number=number[:40])
        hist = await orders_db.history(conn, row["id"])
        materials = await orders_db.materials(conn, row["id"])
    out = order_json(row, hist)
    out["materials"] = [{**m, "quantity": str(m["quantity"])} for m in materials]
    return out


@get("/api/v1/orders", guards=[staff_guard], tags=["orders"])
async def list_orders(
    request: Request[Any, Any, Any],
    status: Status | None = None,
    project: str | None = None,
    kind: Kind | None = None,
    updated_since: str | None = Parameter(default=None, description="ISO 8601 time"),
    limit: int = Parameter(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    since = None
    if updated_since:
        since = parse_datetime(updated_since)
        if since is None or since.tzinfo is None:
            raise DomainError("invalid", N_("Not a valid date and time"), field="updated_since")
    async with rt.engine.connect() as conn:
        rows = await orders_db.list_orders(
            conn,
            p.project_ids,
            status=status.value if status else None,
            project_code=project,
            kind=kind.value if kind else None,
            updated_since=since,
            limit=limit,
        )
    return {"orders": [order_json(r) for r in rows]}


async def run_action(
    rt: Runtime, p: Principal, number: str, action: str, body: dict[str, Any]
) -> dict[str, Any]:
    version = body.get("version")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DomainError("invalid", N_("The version you saw is required"), field="version")
    inputs = {k: v for k, v in body.items() if k not in ("version", "_csrf")}
    async with rt.engine.begin() as conn:
        row = await orders_db.apply_action(conn, number, action, version, actor_of(p), inputs, clock.now())
    await rt.after_commit(row["id"])
    if row.get("rework_id"):
        await rt.after_commit(row["rework_id"])
    return row


def actions_doc() -> str:
    """The steps of the lifecycle table, who may take them and their inputs (for /schema)."""
    lines = [
        "One lifecycle step. The body carries `version` (the one you saw) and the step's inputs. "
        "200 with the new state; 403 when your role or person may not; 404 unknown order or step; "
        "409 when the order has moved on; 422 naming the input at fault.",
        "",
        "| step | from | roles | required | optional |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in ACTIONS.values():
        person = "" if spec.person is Person.ANYONE else f" ({spec.person.value})"
        lines.append(
            f"| `{spec.name}` | {', '.join(sorted(s.value for s in spec.from_statuses))} | "
            f"{', '.join(sorted(r.value for r in spec.roles))}{person} | {', '.join(spec.required) or '—'} | "
            f"{', '.join(spec.optional) or '—'} |"
        )
    return "\n".join(lines)


@post(
    "/api/v1/orders/{number:str}/actions/{action:str}",
    guards=[staff_guard],
    status_code=200,
    tags=["orders"],
    description=actions_doc(),
)
async def order_action(
    request: Request[Any, Any, Any],
    number: str,
    action: str = Parameter(description="a step of the lifecycle table: " + ", ".join(ACTIONS)),
    *,
    data: dict[str, Any],
) -> Response[dict[str, Any]]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    row = await run_action(rt, p, number, action, data)
    return Response(order_json(row), status_code=200)


class SpawnIn(msgspec.Struct, kw_only=True):
    category: Category


async def spawn_from(rt: Runtime, p: Principal, number: str, category: str) -> orders_db.Registered:
    if p.role not in INTAKE_ROLES:
        raise DomainError("forbidden", N_("You are not allowed to do this"))
    async with rt.engine.begin() as conn:
        reg = await orders_db.spawn_repair(conn, number, category, actor_of(p), clock.now())
    await after_register(rt, reg)
    return reg


@post("/api/v1/orders/{number:str}/spawn-repair", guards=[staff_guard], status_code=201, tags=["orders"])
async def spawn_repair(request: Request[Any, Any, Any], number: str, data: SpawnIn) -> OrderCreated:
    """A matter (报事) that needs a repair spawns a linked repair order."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    reg = await spawn_from(rt, p, number, data.category.value)
    return OrderCreated(
        number=reg.number,
        status=Status(reg.status),
        version=reg.version,
        verification_code=reg.verification_code,
    )


# ---- dispatch per project and category ---------------------------------------------------------

RULE_EDITORS = {"roles": frozenset({Role.ADMIN, Role.SUPERVISOR})}


class DispatchRuleIn(msgspec.Struct, kw_only=True):
    """How new repairs of a category are dispatched: `grab` (the team's pool) or `assign` (the desk)."""

    mode: Literal["grab", "assign"]
    team_id: int | None = None


async def _project_of(conn: Any, p: Principal, code: str) -> int:
    from sqlalchemy import text

    pid = (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": code[:20]})).scalar()
    if pid is None or pid not in p.project_ids:
        raise DomainError("not_found", N_("Unknown project %(value)s"), field="project", value=code[:20])
    return pid


def _repair_category(category: str) -> str:
    from server.domain.vocab import REPAIR_CATEGORIES

    if category not in {c.value for c in REPAIR_CATEGORIES}:
        raise DomainError(
            "invalid", N_("%(category)s is not a repair category"), field="category", category=category[:40]
        )
    return category


@get("/api/v1/dispatch-rules", guards=[staff_guard], tags=["orders"])
async def get_dispatch_rules(request: Request[Any, Any, Any], project: str) -> dict[str, Any]:
    """The project's dispatch rules; categories without one follow the project's dispatch mode."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.connect() as conn:
        pid = await _project_of(conn, p, project)
        return {"rules": await orders_db.list_dispatch_rules(conn, pid)}


@put("/api/v1/dispatch-rules/{category:str}", guards=[staff_guard], opt=RULE_EDITORS, tags=["orders"])
async def put_dispatch_rule(
    request: Request[Any, Any, Any], category: str, project: str, data: DispatchRuleIn
) -> dict[str, Any]:
    """Set how new repairs of this category are dispatched in the project (supervisor, admin)."""
    from server.persistence.admin import audit

    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    _repair_category(category)
    if data.team_id is not None and not 0 < data.team_id < 2**31:
        raise DomainError("invalid", N_("Invalid value"), field="team_id")
    async with rt.engine.begin() as conn:
        pid = await _project_of(conn, p, project)
        await orders_db.put_dispatch_rule(conn, pid, category, data.team_id, data.mode)
        await audit(
            conn,
            p.staff_id,
            f"dispatch:{project}:{category}",
            "set",
            {"mode": data.mode, "team_id": data.team_id},
        )
        return {"rules": await orders_db.list_dispatch_rules(conn, pid)}


@delete(
    "/api/v1/dispatch-rules/{category:str}",
    guards=[staff_guard],
    opt=RULE_EDITORS,
    tags=["orders"],
    status_code=204,
)
async def delete_dispatch_rule(request: Request[Any, Any, Any], category: str, project: str) -> None:
    from server.persistence.admin import audit

    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    async with rt.engine.begin() as conn:
        pid = await _project_of(conn, p, project)
        if not await orders_db.delete_dispatch_rule(conn, pid, category[:40]):
            raise DomainError("not_found", N_("Not found"))
        await audit(conn, p.staff_id, f"dispatch:{project}:{category}", "delete", {})


ROUTES = [
    create_order,
    get_order,
    list_orders,
    order_action,
    spawn_repair,
    get_dispatch_rules,
    put_dispatch_rule,
    delete_dispatch_rule,
]
