"""Administration: projects and their places, teams, staff, tokens, catalogs, SLA rules, audit.

Every function runs inside the caller's transaction; the web layer opens one per form, so a
refused form writes nothing, and writes the `admin_events` row in the same transaction.
Rows of projects the caller does not serve are filtered here by `project_ids` arguments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import sla_policy
from server.domain.vocab import Category, ClockKind, Kind, Urgency

Rows = Sequence[RowMapping]


async def audit(
    conn: AsyncConnection,
    actor_id: int | None,
    subject: str,
    action: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one admin_events row (the table refuses updates and deletes)."""
    await conn.execute(
        text(
            "INSERT INTO admin_events (actor_id, subject, action, details) VALUES (:a, :s, :act, CAST(:d AS jsonb))"
        ),
        {
            "a": actor_id,
            "s": subject,
            "act": action,
            "d": json.dumps(details or {}, ensure_ascii=False, default=str),
        },
    )


async def recent_events(conn: AsyncConnection, limit: int = 30) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT e.at, e.subject, e.action, e.details, s.display_name AS actor FROM admin_events e "
                    "LEFT JOIN staff s ON s.id = e.actor_id ORDER BY e.id DESC LIMIT :n"
                ),
                {"n": limit},
            )
        )
        .mappings()
        .all()
    )


async def notify_staff(conn: AsyncConnection, staff_id: int) -> None:
    """Drop cached principals of this person in every web process (sent at commit)."""
    await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"staff:{staff_id}"})


# ---- projects and places ------------------------------------------------------------------


async def projects(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT p.*, (SELECT count(*) FROM buildings b WHERE b.project_id = p.id) AS buildings, "
                    "(SELECT count(*) FROM rooms r JOIN buildings b ON b.id = r.building_id WHERE b.project_id = p.id) AS rooms "
                    "FROM projects p WHERE p.id = ANY(:ids) ORDER BY p.code"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def project(conn: AsyncConnection, project_id: int) -> RowMapping | None:
    return (
        (await conn.execute(text("SELECT * FROM projects WHERE id = :i"), {"i": project_id}))
        .mappings()
        .first()
    )


async def create_project(conn: AsyncConnection, values: dict[str, Any], creator_id: int | None) -> int:
    pid = (
        await conn.execute(
            text(
                "INSERT INTO projects (code, name, tz, desk_opens, desk_closes, business_hours, dispatch_mode, "
                "count_fairly_satisfied) VALUES (:code, :name, :tz, :desk_opens, :desk_closes, :business_hours, "
                ":dispatch_mode, :count_fairly_satisfied) RETURNING id"
            ),
            values,
        )
    ).scalar_one()
    if creator_id is not None:
        # The creator serves the new project at once, or they could not open it.
        await conn.execute(text("INSERT INTO staff_projects VALUES (:s, :p)"), {"s": creator_id, "p": pid})
        await notify_staff(conn, creator_id)
    return int(pid)


async def update_project(conn: AsyncConnection, project_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "UPDATE projects SET name = :name, tz = :tz, desk_opens = :desk_opens, desk_closes = :desk_closes, "
            "business_hours = :business_hours, dispatch_mode = :dispatch_mode, "
            "count_fairly_satisfied = :count_fairly_satisfied WHERE id = :id"
        ),
        {**values, "id": project_id},
    )


async def buildings(conn: AsyncConnection, project_id: int) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT b.id, b.code, b.name, count(r.id) AS rooms FROM buildings b LEFT JOIN rooms r ON r.building_id = b.id "
                    "WHERE b.project_id = :p GROUP BY b.id ORDER BY length(b.code), b.code"
                ),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )


async def building_project(conn: AsyncConnection, building_id: int) -> int | None:
    return (
        await conn.execute(text("SELECT project_id FROM buildings WHERE id = :i"), {"i": building_id})
    ).scalar()


async def add_building(conn: AsyncConnection, project_id: int, code: str, name: str) -> int:
    return int(
        (
            await conn.execute(
                text("INSERT INTO buildings (project_id, code, name) VALUES (:p, :c, :n) RETURNING id"),
                {"p": project_id, "c": code, "n": name},
            )
        ).scalar_one()
    )


async def add_rooms(conn: AsyncConnection, building_id: int, rooms: list[tuple[str, str]]) -> int:
    """Insert (unit, number) rooms; existing ones are kept as they are. Return how many were new."""
    if not rooms:
        return 0
    result = await conn.execute(
        text(
            "INSERT INTO rooms (building_id, unit, number) SELECT :b, u, n FROM unnest(CAST(:us AS text[]), "
            "CAST(:ns AS text[])) AS t(u, n) ON CONFLICT (building_id, unit, number) DO NOTHING"
        ),
        {"b": building_id, "us": [u for u, _ in rooms], "ns": [n for _, n in rooms]},
    )
    return int(result.rowcount or 0)


async def add_room(
    conn: AsyncConnection,
    building_id: int,
    unit: str,
    number: str,
    owner_name: str | None,
    owner_phone: str | None,
) -> int | None:
    """Insert one room; None when it exists already."""
    return (
        await conn.execute(
            text(
                "INSERT INTO rooms (building_id, unit, number, owner_name, owner_phone) VALUES (:b, :u, :n, :on, :op) "
                "ON CONFLICT (building_id, unit, number) DO NOTHING RETURNING id"
            ),
            {"b": building_id, "u": unit, "n": number, "on": owner_name, "op": owner_phone},
        )
    ).scalar()


async def public_areas(conn: AsyncConnection, project_id: int) -> Rows:
    return (
        (
            await conn.execute(
                text("SELECT id, name FROM public_areas WHERE project_id = :p ORDER BY name"),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )


async def add_public_area(conn: AsyncConnection, project_id: int, name: str) -> int:
    return int(
        (
            await conn.execute(
                text("INSERT INTO public_areas (project_id, name) VALUES (:p, :n) RETURNING id"),
                {"p": project_id, "n": name},
            )
        ).scalar_one()
    )


# ---- teams --------------------------------------------------------------------------------


async def departments(conn: AsyncConnection) -> Rows:
    return (await conn.execute(text("SELECT code, name FROM departments ORDER BY code"))).mappings().all()


async def teams(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT t.id, t.project_id, p.code AS project_code, p.name AS project_name, p.tz, t.department_code, t.name, "
                    "t.lead_id, s.display_name AS lead_name, t.saturated_on, "
                    "(SELECT count(*) FROM staff_teams st JOIN staff m ON m.id = st.staff_id "
                    " WHERE st.team_id = t.id AND m.active) AS members "
                    "FROM teams t JOIN projects p ON p.id = t.project_id LEFT JOIN staff s ON s.id = t.lead_id "
                    "WHERE t.project_id = ANY(:ids) ORDER BY p.code, t.department_code, t.name"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def team(conn: AsyncConnection, team_id: int) -> RowMapping | None:
    return (
        (
            await conn.execute(
                text("SELECT t.*, p.tz FROM teams t JOIN projects p ON p.id = t.project_id WHERE t.id = :i"),
                {"i": team_id},
            )
        )
        .mappings()
        .first()
    )


async def create_team(
    conn: AsyncConnection, project_id: int, department_code: str, name: str, lead_id: int | None
) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "INSERT INTO teams (project_id, department_code, name, lead_id) VALUES (:p, :d, :n, :l) RETURNING id"
                ),
                {"p": project_id, "d": department_code, "n": name, "l": lead_id},
            )
        ).scalar_one()
    )


async def departments_with_teams(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """The departments (shared by every project) with their team count in the given projects."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT d.code, d.name, (SELECT count(*) FROM teams t WHERE t.department_code = d.code"
                    " AND t.project_id = ANY(:ids)) AS teams FROM departments d ORDER BY d.code"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def rename_department(conn: AsyncConnection, code: str, name: str) -> str | None:
    """Set the shown name; return the previous one (None: no such department)."""
    before = await conn.scalar(text("SELECT name FROM departments WHERE code = :c FOR UPDATE"), {"c": code})
    if before is not None:
        await conn.execute(text("UPDATE departments SET name = :n WHERE code = :c"), {"n": name, "c": code})
    return before


async def serves_every_project(conn: AsyncConnection, project_ids: Iterable[int]) -> bool:
    missing = await conn.scalar(
        text("SELECT count(*) FROM projects WHERE NOT (id = ANY(:ids))"), {"ids": list(project_ids)}
    )
    return not missing


async def update_team(conn: AsyncConnection, team_id: int, name: str, department_code: str) -> None:
    await conn.execute(
        text("UPDATE teams SET name = :n, department_code = :d WHERE id = :i"),
        {"n": name, "d": department_code, "i": team_id},
    )


async def set_team_lead(conn: AsyncConnection, team_id: int, lead_id: int | None) -> None:
    await conn.execute(text("UPDATE teams SET lead_id = :l WHERE id = :i"), {"l": lead_id, "i": team_id})
    if lead_id is not None:
        # A lead belongs to the team they lead.
        await conn.execute(
            text("INSERT INTO staff_teams VALUES (:s, :t) ON CONFLICT DO NOTHING"),
            {"s": lead_id, "t": team_id},
        )


async def set_saturated(conn: AsyncConnection, team_id: int, day: date | None) -> None:
    """Mark the team saturated on `day` (the project's local date), or clear it with None."""
    await conn.execute(text("UPDATE teams SET saturated_on = :d WHERE id = :i"), {"d": day, "i": team_id})


async def team_saturated(conn: AsyncConnection, team_id: int, day: date) -> bool:
    """Return whether the team's lead marked it 工作量已饱和 for `day` (the project's local date).

    The mark is only good for the day it was set: tomorrow the team takes appointments again
    without anybody having to unmark it.
    """
    return bool(
        (
            await conn.execute(
                text("SELECT saturated_on = :d FROM teams WHERE id = :i"), {"d": day, "i": team_id}
            )
        ).scalar()
    )


# ---- staff --------------------------------------------------------------------------------


async def staff_list(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """Staff sharing a project with the caller, and staff with no project at all (just created)."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT s.id, s.username, s.display_name, s.role, s.department_code, s.phone, s.active, "
                    "s.pin_hash IS NOT NULL AS has_pin, "
                    "coalesce((SELECT array_agg(p.code ORDER BY p.code) FROM staff_projects sp JOIN projects p ON p.id = sp.project_id "
                    "  WHERE sp.staff_id = s.id AND sp.project_id = ANY(:ids)), '{}') AS projects, "
                    "coalesce((SELECT array_agg(t.name ORDER BY t.name) FROM staff_teams st JOIN teams t ON t.id = st.team_id "
                    "  WHERE st.staff_id = s.id AND t.project_id = ANY(:ids)), '{}') AS teams "
                    "FROM staff s WHERE EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id AND sp.project_id = ANY(:ids)) "
                    "   OR NOT EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id) "
                    "ORDER BY s.active DESC, s.role, s.username"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def staff_visible(conn: AsyncConnection, staff_id: int, project_ids: Iterable[int]) -> bool:
    ids = list(project_ids)
    return bool(
        (
            await conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM staff s WHERE s.id = :s AND ("
                    " EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id AND sp.project_id = ANY(:ids))"
                    " OR NOT EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id)))"
                ),
                {"s": staff_id, "ids": ids},
            )
        ).scalar()
    )


async def staff_in_projects(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """Active staff of these projects (choices for a team lead)."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT DISTINCT s.id, s.display_name, s.role, sp.project_id FROM staff s "
                    "JOIN staff_projects sp ON sp.staff_id = s.id WHERE sp.project_id = ANY(:ids) AND s.active "
                    "ORDER BY s.display_name"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def staff_serves(conn: AsyncConnection, staff_id: int, project_id: int) -> bool:
    return bool(
        (
            await conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM staff_projects sp JOIN staff s ON s.id = sp.staff_id "
                    "WHERE sp.staff_id = :s AND sp.project_id = :p AND s.active)"
                ),
                {"s": staff_id, "p": project_id},
            )
        ).scalar()
    )


async def teams_by_ids(conn: AsyncConnection, team_ids: list[int]) -> dict[int, int]:
    """{team id: project id} of the given teams that exist."""
    rows = await conn.execute(
        text("SELECT id, project_id FROM teams WHERE id = ANY(:ids)"), {"ids": team_ids}
    )
    return {r[0]: r[1] for r in rows}


async def update_staff(
    conn: AsyncConnection,
    staff_id: int,
    *,
    display_name: str,
    role: str,
    department_code: str | None,
    phone: str | None,
    project_ids: list[int],
    team_ids: list[int],
    managed_project_ids: Iterable[int],
) -> None:
    """Set the person's fields, and their projects and teams among the projects the editor manages.

    Memberships in projects the editor does not serve are left alone: they cannot see them.
    """
    managed = list(managed_project_ids)
    await conn.execute(
        text(
            "UPDATE staff SET display_name = :n, role = :r, department_code = :d, phone = :ph WHERE id = :i"
        ),
        {"n": display_name, "r": role, "d": department_code, "ph": phone, "i": staff_id},
    )
    await conn.execute(
        text("DELETE FROM staff_projects WHERE staff_id = :s AND project_id = ANY(:m)"),
        {"s": staff_id, "m": managed},
    )
    await conn.execute(
        text(
            "DELETE FROM staff_teams st USING teams t WHERE st.team_id = t.id AND st.staff_id = :s "
            "AND t.project_id = ANY(:m)"
        ),
        {"s": staff_id, "m": managed},
    )
    for pid in project_ids:
        await conn.execute(
            text("INSERT INTO staff_projects VALUES (:s, :p) ON CONFLICT DO NOTHING"),
            {"s": staff_id, "p": pid},
        )
    for tid in team_ids:
        await conn.execute(
            text("INSERT INTO staff_teams VALUES (:s, :t) ON CONFLICT DO NOTHING"), {"s": staff_id, "t": tid}
        )
    await notify_staff(conn, staff_id)


async def set_password(
    conn: AsyncConnection, staff_id: int, password_hash: str, pin_hash: str | None, *, set_pin: bool
) -> None:
    if set_pin:
        await conn.execute(
            text("UPDATE staff SET password_hash = :p, pin_hash = :pin WHERE id = :i"),
            {"p": password_hash, "pin": pin_hash, "i": staff_id},
        )
    else:
        await conn.execute(
            text("UPDATE staff SET password_hash = :p WHERE id = :i"), {"p": password_hash, "i": staff_id}
        )


# ---- tokens -------------------------------------------------------------------------------


async def kiosks(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """Kiosk tokens bound to one of these projects (or to none)."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT k.id, k.name, k.created_at, k.revoked_at, s.display_name AS created_by, "
                    "coalesce(array_agg(p.code ORDER BY p.code) FILTER (WHERE p.id IS NOT NULL), '{}') AS projects, "
                    "coalesce(array_agg(p.id) FILTER (WHERE p.id IS NOT NULL), '{}') AS project_ids "
                    "FROM kiosk_tokens k LEFT JOIN kiosk_token_projects kp ON kp.kiosk_id = k.id "
                    "LEFT JOIN projects p ON p.id = kp.project_id LEFT JOIN staff s ON s.id = k.created_by "
                    "GROUP BY k.id, s.display_name "
                    "HAVING bool_or(kp.project_id = ANY(:ids)) OR count(kp.project_id) = 0 ORDER BY k.revoked_at NULLS FIRST, k.id DESC"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def api_tokens(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """Personal API tokens of the staff the caller manages."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT t.id, t.name, t.created_at, t.last_used_at, t.revoked_at, s.id AS staff_id, s.username, "
                    "s.display_name FROM api_tokens t JOIN staff s ON s.id = t.staff_id "
                    "WHERE EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id AND sp.project_id = ANY(:ids)) "
                    "   OR NOT EXISTS (SELECT 1 FROM staff_projects sp WHERE sp.staff_id = s.id) "
                    "ORDER BY t.revoked_at NULLS FIRST, t.last_used_at DESC NULLS LAST, t.id DESC"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def api_token_owner(conn: AsyncConnection, token_id: int) -> int | None:
    return (
        await conn.execute(text("SELECT staff_id FROM api_tokens WHERE id = :i"), {"i": token_id})
    ).scalar()


# ---- catalog and suppliers ----------------------------------------------------------------


async def catalog_items(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT c.*, p.code AS project_code FROM catalog_items c LEFT JOIN projects p ON p.id = c.project_id "
                    "WHERE c.project_id IS NULL OR c.project_id = ANY(:ids) ORDER BY c.active DESC, c.category, c.code"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def catalog_item(conn: AsyncConnection, item_id: int) -> RowMapping | None:
    return (
        (await conn.execute(text("SELECT * FROM catalog_items WHERE id = :i"), {"i": item_id}))
        .mappings()
        .first()
    )


async def create_catalog_item(conn: AsyncConnection, values: dict[str, Any]) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "INSERT INTO catalog_items (project_id, category, code, name, minutes, price_fen, price_note, active) "
                    "VALUES (:project_id, :category, :code, :name, :minutes, :price_fen, :price_note, :active) RETURNING id"
                ),
                values,
            )
        ).scalar_one()
    )


async def update_catalog_item(conn: AsyncConnection, item_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "UPDATE catalog_items SET project_id = :project_id, category = :category, code = :code, name = :name, "
            "minutes = :minutes, price_fen = :price_fen, price_note = :price_note, active = :active WHERE id = :id"
        ),
        {**values, "id": item_id},
    )


async def set_catalog_active(conn: AsyncConnection, item_id: int, active: bool) -> None:
    await conn.execute(
        text("UPDATE catalog_items SET active = :a WHERE id = :i"), {"a": active, "i": item_id}
    )


async def suppliers(conn: AsyncConnection) -> Rows:
    return (
        (await conn.execute(text("SELECT * FROM suppliers ORDER BY active DESC, name, service")))
        .mappings()
        .all()
    )


async def supplier(conn: AsyncConnection, supplier_id: int) -> RowMapping | None:
    return (
        (await conn.execute(text("SELECT * FROM suppliers WHERE id = :i"), {"i": supplier_id}))
        .mappings()
        .first()
    )


async def create_supplier(conn: AsyncConnection, values: dict[str, Any]) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "INSERT INTO suppliers (name, service, contact, phone, note, active) "
                    "VALUES (:name, :service, :contact, :phone, :note, :active) RETURNING id"
                ),
                values,
            )
        ).scalar_one()
    )


async def update_supplier(conn: AsyncConnection, supplier_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        text(
            "UPDATE suppliers SET name = :name, service = :service, contact = :contact, phone = :phone, note = :note, "
            "active = :active WHERE id = :id"
        ),
        {**values, "id": supplier_id},
    )


async def set_supplier_active(conn: AsyncConnection, supplier_id: int, active: bool) -> None:
    await conn.execute(
        text("UPDATE suppliers SET active = :a WHERE id = :i"), {"a": active, "i": supplier_id}
    )


# ---- SLA rules ----------------------------------------------------------------------------

_RULE_COLUMNS = (
    "project_id, kind, category, urgency, catalog_item_id, clock, minutes, business_hours, priority"
)


async def sla_rules(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    """Stored rules, global and of these projects, live ones first."""
    return (
        (
            await conn.execute(
                text(
                    "SELECT r.*, p.code AS project_code, c.code AS catalog_code, c.name AS catalog_name, "
                    "s.display_name AS created_by_name FROM sla_rules r LEFT JOIN projects p ON p.id = r.project_id "
                    "LEFT JOIN catalog_items c ON c.id = r.catalog_item_id LEFT JOIN staff s ON s.id = r.created_by "
                    "WHERE r.project_id IS NULL OR r.project_id = ANY(:ids) "
                    "ORDER BY r.active DESC, r.clock, p.code NULLS FIRST, r.priority DESC, r.id"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


async def sla_rule(conn: AsyncConnection, rule_id: int) -> RowMapping | None:
    return (
        (await conn.execute(text("SELECT * FROM sla_rules WHERE id = :i"), {"i": rule_id})).mappings().first()
    )


def rule_of(row: RowMapping | dict[str, Any]) -> sla_policy.SlaRule:
    """A stored rule as the clocks see it (persistence.clocks.load_rules: stored priority + 1)."""
    return sla_policy.SlaRule(
        id=row.get("id"),
        project_id=row["project_id"],
        kind=Kind(row["kind"]) if row["kind"] else None,
        category=Category(row["category"]) if row["category"] else None,
        urgency=Urgency(row["urgency"]) if row["urgency"] else None,
        catalog_item_id=row["catalog_item_id"],
        clock=ClockKind(row["clock"]),
        minutes=row["minutes"],
        business_hours=row["business_hours"],
        priority=row["priority"] + 1,
    )


async def live_rules(conn: AsyncConnection, *, lock: bool = False) -> list[sla_policy.SlaRule]:
    """Every live stored rule (all projects): rules of different projects never overlap."""
    if lock:
        # Two admins adding overlapping rules at once: the second waits and validates against the first.
        await conn.execute(text("LOCK TABLE sla_rules IN SHARE ROW EXCLUSIVE MODE"))
    rows = (
        (await conn.execute(text(f"SELECT id, {_RULE_COLUMNS} FROM sla_rules WHERE active"))).mappings().all()
    )
    return [rule_of(r) for r in rows]


async def create_sla_rule(conn: AsyncConnection, values: dict[str, Any], created_by: int | None) -> int:
    return int(
        (
            await conn.execute(
                text(
                    f"INSERT INTO sla_rules ({_RULE_COLUMNS}, created_by) VALUES (:project_id, :kind, :category, :urgency, "
                    ":catalog_item_id, :clock, :minutes, :business_hours, :priority, :created_by) RETURNING id"
                ),
                {**values, "created_by": created_by},
            )
        ).scalar_one()
    )


async def set_sla_rule_active(conn: AsyncConnection, rule_id: int, active: bool) -> None:
    await conn.execute(text("UPDATE sla_rules SET active = :a WHERE id = :i"), {"a": active, "i": rule_id})


async def catalog_choices(conn: AsyncConnection, project_ids: Iterable[int]) -> Rows:
    return (
        (
            await conn.execute(
                text(
                    "SELECT id, code, name, project_id FROM catalog_items WHERE project_id IS NULL OR project_id = ANY(:ids) "
                    "ORDER BY code"
                ),
                {"ids": list(project_ids)},
            )
        )
        .mappings()
        .all()
    )


def local_day(tz_name: str, now: datetime) -> date:
    """The project's calendar date at `now`."""
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(tz_name)).date()
