"""Work orders in the database: register, apply lifecycle steps, read with history.

Every step is one transaction: a conditional update on (id, version) decides who wins when
two people click at once, the event row, the clock plan and the outbox rows go with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import clock_plan, lifecycle
from server.domain.intake import Intake
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import Category, Department, Kind, Role, Status, Urgency
from server.persistence import clocks as clocks_db
from server.persistence import outbox
from server.security import verification_code

PREFIX_OF_KIND = {Kind.REPAIR: "BX", Kind.MATTER: "BS", Kind.ENTRAPMENT: "KR"}


@dataclass(frozen=True)
class ActorInfo:
    """Who acts: a staff member, or the system (jobs, IoT) with staff_id None."""

    staff_id: int | None
    name: str
    role: Role | None
    project_ids: frozenset[int] = frozenset()
    team_ids: frozenset[int] = frozenset()
    department: str | None = None

    def as_lifecycle_actor(self) -> lifecycle.Actor:
        return lifecycle.Actor(
            id=self.staff_id or 0,
            name=self.name,
            roles=frozenset({self.role}) if self.role else frozenset(),
            team_ids=self.team_ids,
            department=Department(self.department) if self.department else None,
        )


@dataclass
class Registered:
    id: int
    number: str
    status: str
    version: int
    verification_code: str
    project_id: int
    kind: str
    post_commit: list[Any] = field(default_factory=list)


# Hooks other features add (entrapment alerts): async fn(conn, order_row: dict, now) run inside
# the registration transaction.
REGISTRATION_HOOKS: list[Any] = []
TRANSITION_HOOKS: list[Any] = []


async def next_number(conn: AsyncConnection, kind: Kind, day: date) -> str:
    """BX-20261124-0007: a counter row per prefix and day, incremented atomically."""
    prefix = PREFIX_OF_KIND[kind]
    n = (
        await conn.execute(
            text(
                "INSERT INTO order_counters (prefix, day, last) VALUES (:p, :d, 1) "
                "ON CONFLICT (prefix, day) DO UPDATE SET last = order_counters.last + 1 RETURNING last"
            ),
            {"p": prefix, "d": day},
        )
    ).scalar_one()
    return f"{prefix}-{day:%Y%m%d}-{n:04d}"


async def _project(conn: AsyncConnection, code: str) -> Mapping[str, Any]:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT id, code, name, tz, dispatch_mode, business_hours FROM projects WHERE code = :c AND active"
                ),
                {"c": code},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ValidationErrors({"project": (N_("Unknown project %(value)s"), {"value": code[:20]})})
    return row


async def _location(
    conn: AsyncConnection, project_id: int, intake: Intake
) -> tuple[int | None, int | None, str]:
    if intake.room is not None:
        b, u, n = intake.room
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT r.id, b.name AS building FROM rooms r JOIN buildings b ON b.id = r.building_id "
                        "WHERE b.project_id = :p AND b.code = :b AND r.unit = :u AND r.number = :n"
                    ),
                    {"p": project_id, "b": b, "u": u, "n": n},
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ValidationErrors(
                {"room": (N_("No room %(room)s in this project"), {"room": f"{b}-{u}-{n}"})}
            )
        return row["id"], None, f"{row['building']}-{u}单元-{n}"
    if intake.public_area:
        area_id = (
            await conn.execute(
                text("SELECT id FROM public_areas WHERE project_id = :p AND name = :n"),
                {"p": project_id, "n": intake.public_area},
            )
        ).scalar()
        if area_id is None:
            raise ValidationErrors(
                {"public_area": (N_("Unknown public area %(value)s"), {"value": intake.public_area})}
            )
        return None, area_id, intake.public_area
    return None, None, "电梯" if intake.kind is Kind.ENTRAPMENT else "—"


async def _catalog(conn: AsyncConnection, code: str | None) -> Mapping[str, Any] | None:
    if not code:
        return None
    row = (
        (
            await conn.execute(
                text("SELECT id, minutes, price_fen, category FROM catalog_items WHERE code = :c AND active"),
                {"c": code},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ValidationErrors({"catalog_item": (N_("Unknown value %(value)s"), {"value": code[:40]})})
    return row


async def _engineer_in_project(conn: AsyncConnection, staff_id: int, project_id: int, field: str) -> str:
    name = (
        await conn.execute(
            text(
                "SELECT s.display_name FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                "WHERE s.id = :s AND sp.project_id = :p AND s.active AND s.role IN ('engineer', 'handler', 'supervisor')"
            ),
            {"s": staff_id, "p": project_id},
        )
    ).scalar()
    if name is None:
        raise ValidationErrors({field: (N_("No such engineer in this project"), {})})
    return name


def _project_day(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


async def register(conn: AsyncConnection, intake: Intake, actor: ActorInfo, now: datetime) -> Registered:
    """Create an order with its first event, clocks and the customer's verification code."""
    project = await _project(conn, intake.project)
    if actor.staff_id is not None and project["id"] not in actor.project_ids:
        raise DomainError("not_found", N_("Unknown project %(value)s"), field="project", value=intake.project)
    room_id, area_id, location = await _location(conn, project["id"], intake)
    item = await _catalog(conn, intake.catalog_item)
    assignee_id = None
    if intake.designated_engineer_id:
        await _engineer_in_project(
            conn, intake.designated_engineer_id, project["id"], "designated_engineer_id"
        )
        assignee_id = intake.designated_engineer_id

    rule = (
        await dispatch_rule(conn, project["id"], intake.category.value)
        if intake.kind is Kind.REPAIR
        else None
    )
    team_id = rule["team_id"] if rule else None
    if intake.kind is Kind.MATTER:
        status = Status.ASSIGNED  # to the department; a handler accepts it
    elif assignee_id is not None:
        status = Status.ASSIGNED
    elif intake.kind is Kind.ENTRAPMENT:
        status = Status.NEW  # the alert pages the on-call engineer; whoever acknowledges takes it
    else:
        mode = rule["mode"] if rule else project["dispatch_mode"]
        status = Status.POOLED if mode == "grab" else Status.NEW

    today = _project_day(now, project["tz"])
    if (
        intake.kind is Kind.REPAIR
        and intake.urgency is not Urgency.EMERGENCY
        and (intake.appointment_at is None or _project_day(intake.appointment_at, project["tz"]) <= today)
        and await _saturated(conn, project["id"], team_id, today)
    ):
        slots = ", ".join(s.strftime("%m-%d %H:%M") for s in later_slots(now, project["tz"]))
        raise ValidationErrors(
            {
                "appointment_at": (
                    N_("The engineers are fully booked today; offer the customer a later slot: %(slots)s"),
                    {"slots": slots},
                )
            }
        )

    code = verification_code(6)
    number = await next_number(conn, intake.kind, _project_day(now, project["tz"]))
    price = item["price_fen"] if item else 0
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO orders (number, project_id, kind, category, urgency, status, area, room_id, public_area_id, "
                    "location, reporter_name, reporter_phone, summary, content, channel, appointment_at, catalog_item_id, "
                    "designated_engineer_id, department_code, assignee_id, received_by, received_at, dispatched_at, "
                    "verification_code, catalog_fee_fen, total_fen, team_id) VALUES (:number, :p, :kind, :cat, :urg, "
                    ":status, :area, :room, :parea, :loc, :rname, :rphone, :summary, :content, :channel, :appt, :item, "
                    ":designated, :dept, :assignee, :by, :now, :dispatched, :code, :price, :price, :team) "
                    "RETURNING id, version"
                ),
                {
                    "number": number,
                    "p": project["id"],
                    "kind": intake.kind.value,
                    "cat": intake.category.value,
                    "urg": intake.urgency.value,
                    "status": status.value,
                    "area": intake.area,
                    "room": room_id,
                    "parea": area_id,
                    "loc": location,
                    "rname": intake.reporter_name,
                    "rphone": intake.reporter_phone,
                    "summary": intake.summary,
                    "content": intake.content,
                    "channel": intake.channel.value,
                    "appt": intake.appointment_at,
                    "item": item["id"] if item else None,
                    "designated": intake.designated_engineer_id,
                    "dept": intake.department.value,
                    "assignee": assignee_id,
                    "by": actor.staff_id,
                    "now": now,
                    "dispatched": now if status is Status.ASSIGNED else None,
                    "code": code,
                    "price": price,
                    "team": team_id,
                },
            )
        )
        .mappings()
        .one()
    )
    order_id = row["id"]
    await add_event(
        conn,
        order_id,
        now,
        actor,
        "register",
        None,
        status.value,
        None,
        {"channel": intake.channel.value, "kind": intake.kind.value, "urgency": intake.urgency.value},
    )
    ctx = await clock_context(conn, order_id)
    await clocks_db.apply_plan(
        conn,
        ctx,
        clock_plan.plan_for_registration(intake.kind, status, intake.appointment_at is not None),
        now,
    )
    await outbox.enqueue(
        conn,
        dedupe_key=f"sms:code:{order_id}",
        topic="sms",
        channel="sms",
        project_id=project["id"],
        order_id=order_id,
        payload={
            "phone": intake.reporter_phone,
            "text": f"【{project['name']}】您的报修单 {number} 已受理，师傅上门时请出示验证码 {code}。",
        },
    )
    reg = Registered(order_id, number, status.value, row["version"], code, project["id"], intake.kind.value)
    for hook in REGISTRATION_HOOKS:
        await hook(conn, reg, now)
    return reg


async def dispatch_rule(conn: AsyncConnection, project_id: int, category: str) -> Mapping[str, Any] | None:
    """The project's rule for this category: its team and grab pool or assignment."""
    return (
        (
            await conn.execute(
                text("SELECT team_id, mode FROM dispatch_rules WHERE project_id = :p AND category = :c"),
                {"p": project_id, "c": category},
            )
        )
        .mappings()
        .first()
    )


async def list_dispatch_rules(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT r.category, r.mode, r.team_id, t.name AS team FROM dispatch_rules r "
            "LEFT JOIN teams t ON t.id = r.team_id WHERE r.project_id = :p ORDER BY r.category"
        ),
        {"p": project_id},
    )
    return [dict(r) for r in rows.mappings().all()]


async def put_dispatch_rule(
    conn: AsyncConnection, project_id: int, category: str, team_id: int | None, mode: str
) -> None:
    """Set the rule of one category (its team must be of the project)."""
    if team_id is not None:
        found = (
            await conn.execute(
                text("SELECT 1 FROM teams WHERE id = :t AND project_id = :p"), {"t": team_id, "p": project_id}
            )
        ).first()
        if found is None:
            raise ValidationErrors({"team_id": (N_("No such team in this project"), {})})
    await conn.execute(
        text(
            "INSERT INTO dispatch_rules (project_id, category, team_id, mode) VALUES (:p, :c, :t, :m) "
            "ON CONFLICT (project_id, category) DO UPDATE SET team_id = EXCLUDED.team_id, mode = EXCLUDED.mode"
        ),
        {"p": project_id, "c": category, "t": team_id, "m": mode},
    )


async def delete_dispatch_rule(conn: AsyncConnection, project_id: int, category: str) -> bool:
    gone = await conn.execute(
        text("DELETE FROM dispatch_rules WHERE project_id = :p AND category = :c RETURNING id"),
        {"p": project_id, "c": category},
    )
    return gone.first() is not None


async def _saturated(conn: AsyncConnection, project_id: int, team_id: int | None, day: date) -> bool:
    """工作量已饱和 today: the order's team, or (no team) every engineering team of the project."""
    if team_id is not None:
        return bool(
            (
                await conn.execute(
                    text("SELECT saturated_on = :d FROM teams WHERE id = :t"), {"d": day, "t": team_id}
                )
            ).scalar()
        )
    row = (
        await conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE saturated_on = :d) FROM teams "
                "WHERE project_id = :p AND department_code = 'engineering'"
            ),
            {"p": project_id, "d": day},
        )
    ).one()
    return row[0] > 0 and row[0] == row[1]


def later_slots(now: datetime, tz: str) -> list[datetime]:
    """The next working day's 09:00 and 14:00 (the morning and afternoon rounds), in the project's zone."""
    from server.domain.clocks import is_chinese_workday

    day = now.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)
    while not is_chinese_workday(day):
        day += timedelta(days=1)
    return [datetime.combine(day, time(9), ZoneInfo(tz)), datetime.combine(day, time(14), ZoneInfo(tz))]


async def add_event(
    conn: AsyncConnection,
    order_id: int,
    now: datetime,
    actor: ActorInfo,
    action: str,
    from_status: str | None,
    to_status: str | None,
    reason: str | None,
    inputs: Mapping[str, Any] | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO order_events (order_id, at, actor_id, actor_label, action, from_status, to_status, reason, inputs) "
            "VALUES (:o, :at, :a, :label, :action, :f, :t, :r, CAST(:i AS jsonb))"
        ),
        {
            "o": order_id,
            "at": now,
            "a": actor.staff_id,
            "label": actor.name,
            "action": action,
            "f": from_status,
            "t": to_status,
            "r": reason,
            "i": json.dumps(dict(inputs or {}), ensure_ascii=False, default=str),
        },
    )


async def clock_context(conn: AsyncConnection, order_id: int) -> clocks_db.OrderClockContext:
    r = (
        (
            await conn.execute(
                text(
                    "SELECT o.id, o.project_id, p.tz, p.business_hours, o.kind, o.category, o.urgency, o.catalog_item_id, "
                    "c.minutes AS catalog_minutes, o.appointment_at FROM orders o JOIN projects p ON p.id = o.project_id "
                    "LEFT JOIN catalog_items c ON c.id = o.catalog_item_id WHERE o.id = :o"
                ),
                {"o": order_id},
            )
        )
        .mappings()
        .one()
    )
    return clocks_db.OrderClockContext(
        order_id=r["id"],
        project_id=r["project_id"],
        tz=r["tz"],
        business_hours=r["business_hours"],
        kind=Kind(r["kind"]),
        category=Category(r["category"]),
        urgency=Urgency(r["urgency"]),
        catalog_item_id=r["catalog_item_id"],
        catalog_minutes=r["catalog_minutes"],
        appointment_at=r["appointment_at"],
    )


_ORDER_SQL = """
SELECT o.*, p.code AS project_code, p.name AS project_name, p.tz,
       a.display_name AS assignee_name, rb.display_name AS received_by_name,
       t.name AS team_name, d.name AS department_name, ro.number AS reopened_from_number,
       po.number AS parent_number
FROM orders o
JOIN projects p ON p.id = o.project_id
LEFT JOIN staff a ON a.id = o.assignee_id
LEFT JOIN staff rb ON rb.id = o.received_by
LEFT JOIN teams t ON t.id = o.team_id
LEFT JOIN departments d ON d.code = o.department_code
LEFT JOIN orders ro ON ro.id = o.reopened_from_id
LEFT JOIN orders po ON po.id = o.parent_order_id
"""


async def get_by_number(conn: AsyncConnection, number: str) -> dict[str, Any] | None:
    row = (await conn.execute(text(_ORDER_SQL + " WHERE o.number = :n"), {"n": number})).mappings().first()
    return dict(row) if row else None


async def history(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, at, actor_id, actor_label, action, from_status, to_status, reason, inputs "
                    "FROM order_events WHERE order_id = :o ORDER BY id"
                ),
                {"o": order_id},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def materials(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT name, quantity, unit, unit_price_fen, provided_by, verified FROM order_materials "
            "WHERE order_id = :o ORDER BY id"
        ),
        {"o": order_id},
    )
    return [dict(r) for r in rows.mappings().all()]


def order_view(row: Mapping[str, Any]) -> lifecycle.OrderView:
    return lifecycle.OrderView(
        status=Status(row["status"]),
        kind=Kind(row["kind"]),
        version=row["version"],
        assignee_id=row["assignee_id"],
        team_id=row["team_id"],
        department=Department(row["department_code"]) if row["department_code"] else None,
        verification_code=row["verification_code"],
        paused_from=Status(row["paused_from"]) if row["paused_from"] else None,
        designated_engineer_id=row["designated_engineer_id"],
        fee_total_fen=row["total_fen"],
        agreement_recorded=row["agreement_recorded"],
        prepaid=row["prepaid"],
        reopen_count=row["reopen_count"],
        assignee_name=row.get("assignee_name"),
        catalog_fee_fen=row.get("catalog_fee_fen") or 0,
        agreed_fen=row.get("agreed_fen") or 0,
    )


# Columns a transition may set (anything else in `changes` is a programming error).
SETTABLE = frozenset(
    {
        "assignee_id",
        "team_id",
        "department_code",
        "paused_from",
        "pause_reason",
        "promised_at",
        "result",
        "unfinished_reason",
        "next_at",
        "appointment_at",
        "callback_method",
        "callback_rating",
        "callback_comment",
        "callback_by",
        "callback_at",
        "reopen_count",
        "dispatched_at",
        "accepted_at",
        "arrived_at",
        "finished_at",
        "closed_at",
        "cancelled_at",
        "labour_fen",
        "material_fen",
        "total_fen",
        "agreement_recorded",
        "agreed_fen",
        "started_at",
        "prepaid",
        "paid",
        "man_hours",
        "supplier_id",
        "urgency",
    }
)


async def apply_action(
    conn: AsyncConnection,
    number: str,
    action: str,
    seen_version: int,
    actor: ActorInfo,
    inputs: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Apply one lifecycle step; raise DomainError (403/404/409/422) with nothing written."""
    row = await get_by_number(conn, number)
    if row is None or (actor.staff_id is not None and row["project_id"] not in actor.project_ids):
        raise DomainError("not_found", N_("No order %(number)s"), number=number[:40])
    if action not in lifecycle.ACTIONS:
        raise DomainError("not_found", N_("Unknown action %(action)s"), action=action[:40])
    if seen_version != row["version"]:
        raise _conflict(row, action)
    transition = lifecycle.decide(order_view(row), action, actor.as_lifecycle_actor(), inputs, now=now)
    changes = {k: v for k, v in transition.changes.items() if k in SETTABLE}
    changes = _stamp(changes, transition, now, actor)
    if "assignee_id" in changes and changes["assignee_id"] is not None:
        await _engineer_in_project(conn, int(changes["assignee_id"]), row["project_id"], "assignee_id")
    if changes.get("team_id") is not None:
        team = (
            await conn.execute(
                text("SELECT 1 FROM teams WHERE id = :t AND project_id = :p"),
                {"t": changes["team_id"], "p": row["project_id"]},
            )
        ).first()
        if team is None:
            raise ValidationErrors({"team_id": (N_("No such team in this project"), {})})

    sets = ", ".join(
        f"{k} = COALESCE({k}, :c_{k})" if k in FIRST_OCCURRENCE else f"{k} = :c_{k}" for k in changes
    )
    params = {f"c_{k}": v for k, v in changes.items()}
    updated = (
        await conn.execute(
            text(
                f"UPDATE orders SET status = :to, version = version + 1, updated_at = :now{', ' + sets if sets else ''} "
                "WHERE id = :id AND version = :v RETURNING version"
            ),
            {"to": transition.to_status.value, "now": now, "id": row["id"], "v": seen_version, **params},
        )
    ).first()
    if updated is None:
        fresh = await get_by_number(conn, number)
        raise _conflict(fresh or row, action)
    reason = inputs.get("reason") if isinstance(inputs.get("reason"), str) else None
    event_inputs = dict(transition.event_inputs)
    rework = None
    if lifecycle.Effect.LINK_REWORK in transition.effects:
        rework = await open_rework(conn, row, actor, now, str(event_inputs.get("reason") or ""))
        event_inputs["rework"] = rework.number
    await add_event(
        conn,
        row["id"],
        now,
        actor,
        action,
        transition.from_status.value,
        transition.to_status.value,
        reason,
        event_inputs,
    )
    if lifecycle.ACTIONS[action].clocks:
        ctx = await clock_context(conn, row["id"])
        ops = clock_plan.plan_for(
            action,
            transition.from_status,
            transition.to_status,
            Kind(row["kind"]),
            (changes.get("appointment_at") or row["appointment_at"]) is not None,
        )
        await clocks_db.apply_plan(conn, ctx, ops, now)
    for hook in TRANSITION_HOOKS:
        await hook(conn, row, transition, actor, now)
    await _effects(conn, row, transition, actor, now)
    result = await get_by_number(conn, number)
    assert result is not None
    if rework is not None:
        result["rework_id"], result["rework_number"] = rework.id, rework.number
    return result


# The paper form's times keep their first occurrence (a second dispatch after 未完成, a second
# arrival after a new appointment leave them as they were).
FIRST_OCCURRENCE = frozenset({"dispatched_at", "accepted_at", "arrived_at", "started_at"})


def _stamp(
    changes: dict[str, Any], t: lifecycle.Transition, now: datetime, actor: ActorInfo
) -> dict[str, Any]:
    """Timestamps of the paper form (接单/到场/完工/回访 times) follow from the step."""
    to = t.to_status
    if to in (Status.ASSIGNED, Status.ACCEPTED) and t.from_status in (
        Status.NEW,
        Status.POOLED,
        Status.UNFINISHED,
    ):
        changes.setdefault("dispatched_at", now)
    if to is Status.ACCEPTED:
        changes.setdefault("accepted_at", now)
    if to is Status.ON_SITE and t.from_status is not Status.PAUSED and t.action != "start":
        changes.setdefault("arrived_at", now)
    if t.action == "start":
        changes.setdefault("started_at", now)
    if to in (Status.DONE, Status.CALLBACK):
        changes.setdefault("finished_at", now)
    if to is Status.CLOSED:
        changes.setdefault("closed_at", now)
        if t.action == "callback":
            changes.setdefault("callback_at", now)
            changes.setdefault("callback_by", actor.staff_id)
    if to is Status.CANCELLED:
        changes.setdefault("cancelled_at", now)
    return changes


def _conflict(row: Mapping[str, Any], action: str) -> DomainError:
    if action == "grab" and row.get("assignee_name") and row["status"] != Status.POOLED.value:
        return DomainError("conflict", N_("Already grabbed by %(engineer)s"), engineer=row["assignee_name"])
    from server.labels import label

    return DomainError(
        "conflict",
        N_("This order has just changed (now: %(status)s); reload and try again"),
        status=label(row["status"]),
    )


async def _effects(
    conn: AsyncConnection, row: Mapping[str, Any], t: lifecycle.Transition, actor: ActorInfo, now: datetime
) -> None:
    """Carry out the transition's declared effects (the rework order is opened before the event)."""
    if lifecycle.Effect.SAVE_MATERIALS in t.effects:
        for m in t.event_inputs.get("materials") or []:  # type: ignore[union-attr]
            await conn.execute(
                text(
                    "INSERT INTO order_materials (order_id, name, quantity, unit, unit_price_fen, provided_by, "
                    "verified, created_at) VALUES (:o, :n, CAST(:q AS numeric), :u, :p, :by, :v, :now)"
                ),
                {
                    "o": row["id"],
                    "n": m["name"],
                    "q": m["quantity"],
                    "u": m["unit"],
                    "p": m["unit_price_fen"],
                    "by": m["provided_by"],
                    "v": m["verified"],
                    "now": now,
                },
            )
    if lifecycle.Effect.NOTIFY_SUPERVISOR in t.effects:
        for sup in await supervisors_of(conn, row["project_id"]):
            await outbox.enqueue(
                conn,
                dedupe_key=f"unsatisfied:{row['id']}:{row['version']}:{sup}",
                topic="notify",
                channel="screen",
                project_id=row["project_id"],
                order_id=row["id"],
                recipient_id=sup,
                payload={"text": f"{row['number']} 回访不满意，请跟进", "action": t.action},
            )


async def open_rework(
    conn: AsyncConnection, original: Mapping[str, Any], actor: ActorInfo, now: datetime, reason: str
) -> Registered:
    """返修: a new order for the same place, customer and work, linked by reopened_from_id.

    It goes back to the engineer who did the work when he is still active in the project,
    else where a new order of its kind waits (the grab pool, the desk, the department).
    """
    project = (
        (
            await conn.execute(
                text("SELECT id, name, tz, dispatch_mode FROM projects WHERE id = :p"),
                {"p": original["project_id"]},
            )
        )
        .mappings()
        .one()
    )
    kind = Kind(original["kind"])
    assignee_id = original["assignee_id"]
    if assignee_id is not None:
        still_here = (
            await conn.execute(
                text(
                    "SELECT 1 FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    "WHERE s.id = :s AND sp.project_id = :p AND s.active"
                ),
                {"s": assignee_id, "p": project["id"]},
            )
        ).first()
        if still_here is None:
            assignee_id = None
    if assignee_id is not None or kind is Kind.MATTER:
        status = Status.ASSIGNED
    elif kind is Kind.REPAIR and project["dispatch_mode"] == "grab":
        status = Status.POOLED
    else:
        status = Status.NEW
    code = verification_code(6)
    number = await next_number(conn, kind, _project_day(now, project["tz"]))
    new = (
        (
            await conn.execute(
                text(
                    "INSERT INTO orders (number, project_id, kind, category, urgency, status, area, room_id, "
                    "public_area_id, location, reporter_name, reporter_phone, summary, content, channel, "
                    "catalog_item_id, supplier_id, designated_engineer_id, team_id, department_code, assignee_id, "
                    "received_by, received_at, dispatched_at, verification_code, elevator_id, reopened_from_id) "
                    "SELECT :number, project_id, kind, category, urgency, :status, area, room_id, public_area_id, "
                    "location, reporter_name, reporter_phone, summary, content, channel, catalog_item_id, "
                    "supplier_id, designated_engineer_id, team_id, department_code, :assignee, :by, :now, "
                    ":dispatched, :code, elevator_id, id FROM orders WHERE id = :orig RETURNING id, version"
                ),
                {
                    "number": number,
                    "status": status.value,
                    "assignee": assignee_id,
                    "by": actor.staff_id,
                    "now": now,
                    "dispatched": now if status is Status.ASSIGNED else None,
                    "code": code,
                    "orig": original["id"],
                },
            )
        )
        .mappings()
        .one()
    )
    await add_event(
        conn,
        new["id"],
        now,
        actor,
        "register",
        None,
        status.value,
        reason or None,
        {"reopened_from": original["number"], "kind": kind.value, "urgency": original["urgency"]},
    )
    ctx = await clock_context(conn, new["id"])
    await clocks_db.apply_plan(conn, ctx, clock_plan.plan_for_registration(kind, status, False), now)
    await outbox.enqueue(
        conn,
        dedupe_key=f"sms:code:{new['id']}",
        topic="sms",
        channel="sms",
        project_id=project["id"],
        order_id=new["id"],
        payload={
            "phone": original["reporter_phone"],
            "text": f"【{project['name']}】您的返修单 {number} 已受理，师傅上门时请出示验证码 {code}。",
        },
    )
    return Registered(new["id"], number, status.value, new["version"], code, project["id"], kind.value)


async def supervisors_of(conn: AsyncConnection, project_id: int) -> list[int]:
    return [
        r[0]
        for r in await conn.execute(
            text(
                "SELECT s.id FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                "WHERE sp.project_id = :p AND s.role = 'supervisor' AND s.active ORDER BY s.id"
            ),
            {"p": project_id},
        )
    ]


async def list_orders(
    conn: AsyncConnection,
    project_ids: frozenset[int],
    *,
    status: str | None = None,
    project_code: str | None = None,
    kind: str | None = None,
    updated_since: datetime | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    where = ["o.project_id = ANY(:pids)"]
    params: dict[str, Any] = {"pids": list(project_ids), "lim": limit}
    if status:
        where.append("o.status = :status")
        params["status"] = status
    if project_code:
        where.append("p.code = :pcode")
        params["pcode"] = project_code
    if kind:
        where.append("o.kind = :kind")
        params["kind"] = kind
    if updated_since:
        where.append("o.updated_at >= :since")
        params["since"] = updated_since
    rows = (
        (
            await conn.execute(
                text(_ORDER_SQL + " WHERE " + " AND ".join(where) + " ORDER BY o.id DESC LIMIT :lim"), params
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def spawn_repair(
    conn: AsyncConnection, number: str, category: str, actor: ActorInfo, now: datetime
) -> Registered:
    """A matter that needs a repair spawns a linked repair order (same place and customer)."""
    from server.domain.intake import validate_intake

    row = await get_by_number(conn, number)
    if row is None or (actor.staff_id is not None and row["project_id"] not in actor.project_ids):
        raise DomainError("not_found", N_("No order %(number)s"), number=number[:40])
    if row["kind"] != Kind.MATTER.value or row["status"] in (Status.CLOSED.value, Status.CANCELLED.value):
        raise DomainError("conflict", N_("Only an open matter can spawn a repair"))
    room = None
    if row["room_id"]:
        room = (
            await conn.execute(
                text(
                    "SELECT b.code || '-' || r.unit || '-' || r.number FROM rooms r JOIN buildings b ON b.id = r.building_id "
                    "WHERE r.id = :r"
                ),
                {"r": row["room_id"]},
            )
        ).scalar()
    area = (
        (
            await conn.execute(
                text("SELECT name FROM public_areas WHERE id = :a"), {"a": row["public_area_id"]}
            )
        ).scalar()
        if row["public_area_id"]
        else None
    )
    raw = {
        "project": row["project_code"],
        "kind": "repair",
        "category": category,
        "urgency": row["urgency"],
        "area": "private" if room else "public",
        "room": room or "",
        "public_area": area or "",
        "reporter_name": row["reporter_name"],
        "reporter_phone": row["reporter_phone"],
        "summary": row["summary"],
        "content": row["content"],
        "channel": "department",
    }
    reg = await register(conn, validate_intake(raw, now=now), actor, now)
    await conn.execute(
        text("UPDATE orders SET parent_order_id = :p WHERE id = :o"), {"p": row["id"], "o": reg.id}
    )
    await add_event(
        conn,
        row["id"],
        now,
        actor,
        "spawn_repair",
        row["status"],
        row["status"],
        None,
        {"repair": reg.number},
    )
    return reg
