"""The on-call rota in the database: shifts per project, who is on call now, the gaps.

The rules (precedence of holiday / weekend / day / night, gaps) live in server.domain.oncall;
this module reads and writes oncall_shifts and names the people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import oncall
from server.domain.messages import N_, DomainError, ValidationErrors
from server.persistence.admin import audit

ROLE_FIELDS = ("primary_id", "backup_id", "supervisor_id", "manager_id")
# Who may stand in each slot of a shift.
SLOT_ROLES = {
    "primary_id": ("engineer", "supervisor"),
    "backup_id": ("engineer", "supervisor"),
    "supervisor_id": ("supervisor",),
    "manager_id": ("manager", "supervisor"),
}

_SHIFT_SQL = """
SELECT s.*, pr.display_name AS primary_name, pr.phone AS primary_phone,
       bk.display_name AS backup_name, bk.phone AS backup_phone,
       su.display_name AS supervisor_name, su.phone AS supervisor_phone,
       ma.display_name AS manager_name, ma.phone AS manager_phone
FROM oncall_shifts s
JOIN staff pr ON pr.id = s.primary_id
LEFT JOIN staff bk ON bk.id = s.backup_id
LEFT JOIN staff su ON su.id = s.supervisor_id
LEFT JOIN staff ma ON ma.id = s.manager_id
"""
KIND_ORDER = "array_position(ARRAY['day','night','weekend','holiday'], s.kind)"


def to_rota(row: Mapping[str, Any]) -> oncall.RotaShift:
    return oncall.RotaShift.from_mapping(row)


async def project_tz(conn: AsyncConnection, project_id: int) -> ZoneInfo:
    tz = (await conn.execute(text("SELECT tz FROM projects WHERE id = :p"), {"p": project_id})).scalar()
    return ZoneInfo(tz or "Asia/Shanghai")


async def list_shifts(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(_SHIFT_SQL + f" WHERE s.project_id = :p ORDER BY {KIND_ORDER}, s.starts, s.id"),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _person(row: Mapping[str, Any], slot: str) -> dict[str, Any] | None:
    staff_id = row[f"{slot}_id"]
    if staff_id is None:
        return None
    return {"id": staff_id, "name": row[f"{slot}_name"], "phone": row[f"{slot}_phone"]}


async def shift_at(conn: AsyncConnection, project_id: int, now: datetime) -> oncall.RotaShift | None:
    """The shift on duty at `now`, or None (no rota, or a gap)."""
    shifts = [to_rota(r) for r in await list_shifts(conn, project_id)]
    return oncall.on_call_at(shifts, now, await project_tz(conn, project_id)) if shifts else None


def _duty(rows: list[dict[str, Any]], shift: oncall.RotaShift | None) -> dict[str, Any] | None:
    row = next((r for r in rows if shift is not None and r["id"] == shift.id), None)
    if row is None:
        return None
    return {
        "shift_id": row["id"],
        "kind": row["kind"],
        "starts": row["starts"],
        "ends": row["ends"],
        "primary": _person(row, "primary"),
        "backup": _person(row, "backup"),
        "supervisor": _person(row, "supervisor"),
        "manager": _person(row, "manager"),
    }


async def on_call_now(conn: AsyncConnection, project_id: int, now: datetime) -> dict[str, Any] | None:
    """Who is on call at `now`: {shift_id, kind, starts, ends, primary, backup, supervisor, manager}
    (each a {id, name, phone} or None), or None when the rota has a gap then."""
    rows = await list_shifts(conn, project_id)
    if not rows:
        return None
    return _duty(rows, oncall.on_call_at([to_rota(r) for r in rows], now, await project_tz(conn, project_id)))


async def rota_gaps(
    conn: AsyncConnection, project_id: int, now: datetime, days: int = oncall.GAP_HORIZON_DAYS
) -> list[tuple[datetime, datetime]]:
    """Periods in the next `days` days (from today, project time) with nobody on call, exact
    to the minute; a gap that has already ended today is left out."""
    tz = await project_tz(conn, project_id)
    shifts = [to_rota(r) for r in await list_shifts(conn, project_id)]
    gaps = oncall.find_gaps(shifts, tz, days=days, start=now.astimezone(tz).date())
    return [(max(a, now), b) for a, b in gaps if b > now]


async def duty_summary(
    conn: AsyncConnection, project_id: int, now: datetime, days: int = 7
) -> dict[str, Any]:
    """For the board and the tablet: who is on call now (as on_call_now, or None in a gap), the
    rota's gaps in the next `days` days, and when the answer next changes (redraw then)."""
    rows = await list_shifts(conn, project_id)
    tz = await project_tz(conn, project_id)
    shifts = [to_rota(r) for r in rows]
    periods = oncall.duty_periods(shifts, now, now + timedelta(days=days), tz)
    return {
        "on_call": _duty(rows, periods[0].shift),
        "gaps": [(p.begins, p.ends) for p in periods if p.shift is None],
        "next_change": periods[0].ends,
    }


async def staff_choices(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT s.id, s.display_name AS name, s.role FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    "WHERE sp.project_id = :p AND s.active AND s.role IN ('engineer', 'supervisor', 'manager') "
                    "ORDER BY array_position(ARRAY['engineer','supervisor','manager'], s.role), s.id"
                ),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _time(raw: object, field: str, errors: dict[str, tuple[str, dict[str, object]]]) -> time | None:
    value = str(raw or "").strip()
    if not value:
        errors[field] = (N_("This field is required"), {})
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        errors[field] = (N_("Give the time as HH:MM"), {})
        return None


def _int(raw: object, field: str, errors: dict[str, tuple[str, dict[str, object]]]) -> int | None:
    value = str(raw if raw is not None else "").strip()
    if not value:
        return None
    if not value.isdigit():
        errors[field] = (N_("Unknown value %(value)s"), {"value": value[:20]})
        return None
    return int(value)


async def parse_shift(conn: AsyncConnection, project_id: int, raw: Mapping[str, object]) -> dict[str, Any]:
    """Check a submitted shift (form or JSON); raise ValidationErrors naming each field at fault."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    kind = str(raw.get("kind") or "").strip()
    starts = _time(raw.get("starts"), "starts", errors)
    ends = _time(raw.get("ends"), "ends", errors)
    ids = {f: _int(raw.get(f), f, errors) for f in ROLE_FIELDS}
    if not errors:
        try:
            oncall.validate_shift(kind, starts, ends, ids["primary_id"], ids["backup_id"])
        except DomainError as e:
            errors[e.field or "form"] = (e.msgid, dict(e.params))
    people = {r["id"]: r for r in await staff_choices(conn, project_id)}
    for f in ROLE_FIELDS:
        staff_id = ids[f]
        if staff_id is not None and f not in errors:
            person = people.get(staff_id)
            if person is None or person["role"] not in SLOT_ROLES[f]:
                errors[f] = (N_("Not someone of this project who can stand in this slot"), {})
    if errors:
        raise ValidationErrors(errors)
    return {"kind": kind, "starts": starts, "ends": ends, **ids}


async def save_shift(
    conn: AsyncConnection,
    project_id: int,
    raw: Mapping[str, object],
    actor_id: int | None,
    shift_id: int | None = None,
) -> int:
    """Add (or, with shift_id, change) a shift; return its id. Running alerts keep their frozen chain."""
    data = await parse_shift(conn, project_id, raw)
    params = {"p": project_id, **data}
    if shift_id is None:
        shift_id = (
            await conn.execute(
                text(
                    "INSERT INTO oncall_shifts (project_id, kind, starts, ends, primary_id, backup_id, supervisor_id, "
                    "manager_id) VALUES (:p, :kind, :starts, :ends, :primary_id, :backup_id, :supervisor_id, :manager_id) "
                    "RETURNING id"
                ),
                params,
            )
        ).scalar_one()
        action = "add"
    else:
        found = (
            await conn.execute(
                text(
                    "UPDATE oncall_shifts SET kind = :kind, starts = :starts, ends = :ends, primary_id = :primary_id, "
                    "backup_id = :backup_id, supervisor_id = :supervisor_id, manager_id = :manager_id "
                    "WHERE id = :id AND project_id = :p RETURNING id"
                ),
                {**params, "id": shift_id},
            )
        ).first()
        if found is None:
            raise DomainError("not_found", N_("No such shift"))
        action = "change"
    await audit(
        conn, actor_id, "oncall_shift", action, {"shift_id": shift_id, "project_id": project_id, **data}
    )
    return shift_id


async def delete_shift(conn: AsyncConnection, project_id: int, shift_id: int, actor_id: int | None) -> None:
    row = (
        (
            await conn.execute(
                text(
                    "DELETE FROM oncall_shifts WHERE id = :id AND project_id = :p RETURNING kind, starts, "
                    "ends, primary_id"
                ),
                {"id": shift_id, "p": project_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise DomainError("not_found", N_("No such shift"))
    await audit(
        conn,
        actor_id,
        "oncall_shift",
        "remove",
        {"shift_id": shift_id, "project_id": project_id, **dict(row)},
    )


async def seed_demo(conn: AsyncConnection, project_id: int) -> None:
    """Demo rota: day / night / weekend / holiday shifts covering every minute of the year."""
    ids = dict(
        (
            await conn.execute(
                text(
                    "SELECT username, id FROM staff WHERE username IN "
                    "('shifu1', 'shifu2', 'zhuguan', 'jingli')"
                )
            )
        ).all()
    )
    s1, s2, sup, mgr = ids["shifu1"], ids["shifu2"], ids["zhuguan"], ids["jingli"]
    for kind, starts, ends, primary, backup in (
        ("day", "09:00", "17:30", s1, s2),
        ("night", "17:30", "09:00", s2, s1),
        ("weekend", "09:00", "09:00", s1, s2),
        ("holiday", "09:00", "09:00", s2, s1),
    ):
        await conn.execute(
            text(
                "INSERT INTO oncall_shifts (project_id, kind, starts, ends, primary_id, backup_id, supervisor_id, "
                "manager_id) VALUES (:p, :k, :s, :e, :a, :b, :sup, :mgr)"
            ),
            {
                "p": project_id,
                "k": kind,
                "s": time.fromisoformat(starts),
                "e": time.fromisoformat(ends),
                "a": primary,
                "b": backup,
                "sup": sup,
                "mgr": mgr,
            },
        )
