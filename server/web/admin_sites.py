"""Admin: projects, their buildings, rooms and public areas; teams, leads and 工作量已饱和.

Every page here is scoped to one project the caller serves (another project answers 404).
The saturation mark is the one thing a team's lead may set besides supervisors and admins.
"""

from __future__ import annotations

import re
from datetime import time
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from litestar import Response, get, post
from litestar.datastructures import MultiDict
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from server import clock
from server.auth import Principal, require_project, staff_guard
from server.domain import sla_policy
from server.domain.intake import normalize_phone
from server.domain.messages import N_, DomainError
from server.domain.vocab import Department, Role
from server.i18n import gettext as _
from server.persistence import admin as admin_db
from server.web.admin_common import (
    ADMIN,
    Form,
    Invalid,
    Req,
    checkbox,
    int_field,
    need,
    page,
    read_form,
    small_id,
    text_field,
    who,
    write,
)
from server.web.errors import translate

PROJECT_CODE_RE = re.compile(r"^[A-Z0-9_-]{2,20}$")
HHMM_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_BULK_ROOMS = 5000
MAX_FLOOR = 200
MAX_DOORS = 99  # door numbers are two digits: 1302 = floor 13, door 02
SITE_CONSTRAINTS = {
    "buildings_project_id_code_key": ("b_code", N_("This building exists already")),
    "public_areas_project_id_name_key": ("area_name", N_("This public area exists already")),
}


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _hhmm(form: Form, name: str, errors: dict[str, str]) -> time | None:
    m = HHMM_RE.match(form.get(name) or "")
    if m is None:
        errors[name] = _("Enter a time like 09:00")
        return None
    return time(int(m.group(1)), int(m.group(2)))


# ---- projects -----------------------------------------------------------------------------


def _parse_project(form: Form, errors: dict[str, str]) -> dict[str, Any]:
    name = text_field(form, "name", errors, max_len=100)
    tz = (form.get("tz") or "").strip()
    if tz not in _zones():
        errors["tz"] = _("Unknown time zone; use a name like Asia/Shanghai")
    opens, closes = _hhmm(form, "desk_opens", errors), _hhmm(form, "desk_closes", errors)
    if opens and closes and not opens < closes:
        errors["desk_closes"] = _("The desk must close after it opens")
    hours_raw = (form.get("business_hours") or "").strip()
    business_hours = None
    if hours_raw:
        try:
            business_hours = sla_policy.parse_business_hours(hours_raw).to_text()
        except DomainError as e:
            errors["business_hours"] = translate(e.msgid, e.params)
    mode = form.get("dispatch_mode") or ""
    if mode not in ("grab", "assign"):
        errors["dispatch_mode"] = _("Invalid value")
    return {
        "name": name,
        "tz": tz,
        "desk_opens": opens,
        "desk_closes": closes,
        "business_hours": business_hours,
        "dispatch_mode": mode,
        "count_fairly_satisfied": checkbox(form, "count_fairly_satisfied"),
    }


async def _projects_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        rows = await admin_db.projects(conn, p.project_ids)
    defaults = MultiDict(
        [
            ("tz", "Asia/Shanghai"),
            ("desk_opens", "09:00"),
            ("desk_closes", "17:30"),
            ("dispatch_mode", "grab"),
            ("count_fairly_satisfied", "1"),
        ]
    )
    return page(
        request,
        "projects",
        _("Projects"),
        status=status,
        projects=rows,
        form=form or defaults,
        errors=errors or {},
        flash=flash,
    )


@get("/admin/projects", guards=[staff_guard], opt=ADMIN)
async def projects_index(request: Req) -> Response[str]:
    return await _projects_page(request)


@post("/admin/projects", guards=[staff_guard], opt=ADMIN, status_code=200)
async def project_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        code = text_field(form, "code", errors, max_len=20).upper()
        if code and "code" not in errors and not PROJECT_CODE_RE.match(code):
            errors["code"] = _("Use 2–20 capital letters, digits, dash or underscore")
        values = {"code": code, **_parse_project(form, errors)}
        if errors:
            raise Invalid(errors)
        pid = await admin_db.create_project(conn, values, p.staff_id)
        await admin_db.audit(conn, p.staff_id, f"project:{pid}", "create", values)
        return pid

    _pid, errors = await write(rt, create)
    if errors:
        return await _projects_page(request, status=422, form=form, errors=errors)
    assert p.staff_id is not None
    rt.sessions.on_notify(f"staff:{p.staff_id}")  # the creator's session now serves the new project
    return await _projects_page(request, flash=_("Saved: %(name)s", name=form.get("name") or ""))


async def _project_page(
    request: Req,
    project_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    async with rt.engine.connect() as conn:
        row = await admin_db.project(conn, project_id)
        need(row is not None)
        assert row is not None
        buildings = await admin_db.buildings(conn, project_id)
        areas = await admin_db.public_areas(conn, project_id)
    settings = MultiDict(
        [
            ("name", row["name"]),
            ("tz", row["tz"]),
            ("desk_opens", f"{row['desk_opens']:%H:%M}"),
            ("desk_closes", f"{row['desk_closes']:%H:%M}"),
            ("business_hours", row["business_hours"] or ""),
            ("dispatch_mode", row["dispatch_mode"]),
            ("count_fairly_satisfied", "1" if row["count_fairly_satisfied"] else ""),
        ]
    )
    # A refused settings form comes back as typed; the other forms start from the row.
    form = form if form is not None else MultiDict()
    shown = MultiDict([*settings.multi_items()]) if "name" not in form else form
    return page(
        request,
        "project",
        row["name"],
        status=status,
        project=row,
        buildings=buildings,
        areas=areas,
        settings=shown,
        form=form,
        errors=errors or {},
        flash=flash,
    )


@get("/admin/projects/{project_id:int}", guards=[staff_guard], opt=ADMIN)
async def project_detail(request: Req, project_id: int) -> Response[str]:
    return await _project_page(request, project_id)


@post("/admin/projects/{project_id:int}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def project_save(request: Req, project_id: int) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> None:
        before = await admin_db.project(conn, project_id)
        need(before is not None)
        assert before is not None
        errors: dict[str, str] = {}
        values = _parse_project(form, errors)
        if errors:
            raise Invalid(errors)
        await admin_db.update_project(conn, project_id, values)
        changed = {k: [before[k], v] for k, v in values.items() if before[k] != v}
        await admin_db.audit(conn, p.staff_id, f"project:{project_id}", "update", changed)

    _unused, errors = await write(rt, save)
    if errors:
        return await _project_page(request, project_id, status=422, form=form, errors=errors)
    return await _project_page(request, project_id, flash=_("Saved"))


@post("/admin/projects/{project_id:int}/buildings", guards=[staff_guard], opt=ADMIN, status_code=200)
async def building_add(request: Req, project_id: int) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def add(conn: AsyncConnection) -> None:
        errors: dict[str, str] = {}
        code = text_field(form, "b_code", errors, max_len=20)
        name = text_field(form, "b_name", errors, required=False, max_len=50) or f"{code}栋"
        if errors:
            raise Invalid(errors)
        bid = await admin_db.add_building(conn, project_id, code, name)
        await admin_db.audit(
            conn,
            p.staff_id,
            f"building:{bid}",
            "create",
            {"project_id": project_id, "code": code, "name": name},
        )

    _unused, errors = await write(rt, add, SITE_CONSTRAINTS)
    if errors:
        return await _project_page(request, project_id, status=422, form=form, errors=errors)
    return await _project_page(request, project_id, flash=_("Saved"))


def _unit_codes(raw: str, errors: dict[str, str]) -> list[str]:
    """ "2" → units 1 and 2; "1,3,A" → exactly those."""
    raw = raw.strip()
    if re.fullmatch(r"[0-9]{1,3}", raw):
        n = int(raw)
        if not 1 <= n <= 20:
            errors["bulk_units"] = _("Must be between %(a)s and %(b)s", a=1, b=20)
            return []
        return [str(i) for i in range(1, n + 1)]
    units = [u.strip() for u in re.split(r"[,，、\s]+", raw) if u.strip()]
    if not units or len(units) > 20 or any(len(u) > 20 for u in units):
        errors["bulk_units"] = _("Give a number of units, or unit names separated by commas")
        return []
    return list(dict.fromkeys(units))


def _floors(raw: str, errors: dict[str, str]) -> range:
    """ "13" → floors 1..13; "2-13" → floors 2..13."""
    m = re.match(r"^\s*(\d{1,3})\s*(?:[-–~～至]\s*(\d{1,3}))?\s*$", raw or "")
    if m is None:
        errors["bulk_floors"] = _("Give the top floor, or a range like 2-13")
        return range(0)
    low, high = (1, int(m.group(1))) if m.group(2) is None else (int(m.group(1)), int(m.group(2)))
    if not 1 <= low <= high <= MAX_FLOOR:
        errors["bulk_floors"] = _("Give the top floor, or a range like 2-13")
        return range(0)
    return range(low, high + 1)


async def _building_of(
    conn: AsyncConnection, form: Form, name: str, project_id: int, errors: dict[str, str]
) -> int | None:
    bid = small_id(form.get(name))
    if bid is None or await admin_db.building_project(conn, bid) != project_id:
        errors[name] = _("Choose a building")
        return None
    return bid


@post("/admin/projects/{project_id:int}/rooms/bulk", guards=[staff_guard], opt=ADMIN, status_code=200)
async def rooms_bulk(request: Req, project_id: int) -> Response[str]:
    """Generate every unit × floor × door: floor 13, door 2 → room 1302."""
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def add(conn: AsyncConnection) -> tuple[int, int]:
        errors: dict[str, str] = {}
        bid = await _building_of(conn, form, "bulk_building", project_id, errors)
        units = _unit_codes(form.get("bulk_units") or "", errors)
        floors = _floors(form.get("bulk_floors") or "", errors)
        doors = int_field(form, "bulk_doors", errors, minimum=1, maximum=MAX_DOORS)
        if not errors and doors and len(units) * len(floors) * doors > MAX_BULK_ROOMS:
            errors["bulk_doors"] = _("At most %(n)s rooms at once", n=MAX_BULK_ROOMS)
        if errors or bid is None or doors is None:
            raise Invalid(errors)
        rooms = [(u, f"{f}{d:02d}") for u in units for f in floors for d in range(1, doors + 1)]
        added = await admin_db.add_rooms(conn, bid, rooms)
        await admin_db.audit(
            conn,
            p.staff_id,
            f"building:{bid}",
            "add_rooms",
            {
                "units": units,
                "floors": [floors.start, floors.stop - 1],
                "doors": doors,
                "generated": len(rooms),
                "added": added,
            },
        )
        return added, len(rooms) - added

    result, errors = await write(rt, add)
    if errors:
        return await _project_page(request, project_id, status=422, form=form, errors=errors)
    added, existing = result
    return await _project_page(
        request,
        project_id,
        flash=_("Added %(added)s rooms; %(existing)s existed already", added=added, existing=existing),
    )


@post("/admin/projects/{project_id:int}/rooms", guards=[staff_guard], opt=ADMIN, status_code=200)
async def room_add(request: Req, project_id: int) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def add(conn: AsyncConnection) -> None:
        errors: dict[str, str] = {}
        bid = await _building_of(conn, form, "room_building", project_id, errors)
        unit = text_field(form, "room_unit", errors, max_len=20)
        number = text_field(form, "room_number", errors, max_len=20)
        owner = text_field(form, "owner_name", errors, required=False, max_len=40) or None
        phone_raw = (form.get("owner_phone") or "").strip()
        phone = normalize_phone(phone_raw) if phone_raw else None
        if phone_raw and phone is None:
            errors["owner_phone"] = _("Enter a mobile or landline number")
        if errors or bid is None:
            raise Invalid(errors)
        room_id = await admin_db.add_room(conn, bid, unit, number, owner, phone)
        if room_id is None:
            raise Invalid({"room_number": _("This room exists already")})
        # The owner's phone is private (严守业主秘密): the audit records that it was set, not the number.
        await admin_db.audit(
            conn,
            p.staff_id,
            f"room:{room_id}",
            "create",
            {
                "building_id": bid,
                "unit": unit,
                "number": number,
                "owner_set": owner is not None or phone is not None,
            },
        )

    _unused, errors = await write(rt, add)
    if errors:
        return await _project_page(request, project_id, status=422, form=form, errors=errors)
    return await _project_page(request, project_id, flash=_("Saved"))


@post("/admin/projects/{project_id:int}/areas", guards=[staff_guard], opt=ADMIN, status_code=200)
async def area_add(request: Req, project_id: int) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def add(conn: AsyncConnection) -> None:
        errors: dict[str, str] = {}
        name = text_field(form, "area_name", errors, max_len=100)
        if errors:
            raise Invalid(errors)
        aid = await admin_db.add_public_area(conn, project_id, name)
        await admin_db.audit(
            conn, p.staff_id, f"public_area:{aid}", "create", {"project_id": project_id, "name": name}
        )

    _unused, errors = await write(rt, add, SITE_CONSTRAINTS)
    if errors:
        return await _project_page(request, project_id, status=422, form=form, errors=errors)
    return await _project_page(request, project_id, flash=_("Saved"))


# ---- teams --------------------------------------------------------------------------------


async def _teams_page(
    request: Req,
    project_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    async with rt.engine.connect() as conn:
        row = await admin_db.project(conn, project_id)
        need(row is not None)
        assert row is not None
        teams = await admin_db.teams(conn, [project_id])
        people = await admin_db.staff_in_projects(conn, [project_id])
    return page(
        request,
        "teams",
        _("Teams: %(project)s", project=row["name"]),
        status=status,
        project=row,
        teams=teams,
        people=people,
        departments=list(Department),
        today=admin_db.local_day(row["tz"], clock.now()),
        form=form or MultiDict(),
        errors=errors or {},
        flash=flash,
    )


@get("/admin/projects/{project_id:int}/teams", guards=[staff_guard], opt=ADMIN)
async def teams_index(request: Req, project_id: int) -> Response[str]:
    return await _teams_page(request, project_id)


async def _lead_of(conn: AsyncConnection, form: Form, project_id: int, errors: dict[str, str]) -> int | None:
    if not form.get("lead"):
        return None
    lead = small_id(form.get("lead"))
    if lead is None or not await admin_db.staff_serves(conn, lead, project_id):
        errors["lead"] = _("Choose a member of this project's staff")
        return None
    return lead


@post("/admin/projects/{project_id:int}/teams", guards=[staff_guard], opt=ADMIN, status_code=200)
async def team_create(request: Req, project_id: int) -> Response[str]:
    rt, p = who(request)
    require_project(p, project_id)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> None:
        errors: dict[str, str] = {}
        name = text_field(form, "name", errors, max_len=50)
        department = form.get("department") or ""
        if department not in {d.value for d in Department}:
            errors["department"] = _("Choose a department")
        lead = await _lead_of(conn, form, project_id, errors)
        if errors:
            raise Invalid(errors)
        tid = await admin_db.create_team(conn, project_id, department, name, lead)
        if lead is not None:
            await admin_db.set_team_lead(conn, tid, lead)
            await admin_db.notify_staff(conn, lead)
        await admin_db.audit(
            conn,
            p.staff_id,
            f"team:{tid}",
            "create",
            {"project_id": project_id, "department_code": department, "name": name, "lead_id": lead},
        )

    _unused, errors = await write(rt, create)
    if errors:
        return await _teams_page(request, project_id, status=422, form=form, errors=errors)
    return await _teams_page(request, project_id, flash=_("Saved: %(name)s", name=form.get("name") or ""))


async def _team(conn: AsyncConnection, p: Principal, team_id: int) -> RowMapping:
    row = await admin_db.team(conn, team_id)
    need(row is not None and row["project_id"] in p.project_ids)
    assert row is not None
    return row


@post("/admin/teams/{team_id:int}/lead", guards=[staff_guard], opt=ADMIN, status_code=200)
async def team_lead(request: Req, team_id: int) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)
    async with rt.engine.connect() as conn:
        project_id = (await _team(conn, p, team_id))["project_id"]

    async def save(conn: AsyncConnection) -> None:
        before = await _team(conn, p, team_id)
        errors: dict[str, str] = {}
        lead = await _lead_of(conn, form, project_id, errors)
        if errors:
            raise Invalid(errors)
        await admin_db.set_team_lead(conn, team_id, lead)
        if lead is not None:
            await admin_db.notify_staff(conn, lead)  # their team list changed
        await admin_db.audit(
            conn, p.staff_id, f"team:{team_id}", "set_lead", {"lead_id": [before["lead_id"], lead]}
        )

    _unused, errors = await write(rt, save)
    if errors:
        return await _teams_page(request, project_id, status=422, errors=errors)
    return await _teams_page(request, project_id, flash=_("Saved"))


@post("/admin/teams/{team_id:int}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def team_edit(request: Req, team_id: int) -> Response[str]:
    """Rename a team or move it to another department (its members and open orders stay)."""
    rt, p = who(request)
    form = await read_form(request)
    async with rt.engine.connect() as conn:
        project_id = (await _team(conn, p, team_id))["project_id"]

    async def save(conn: AsyncConnection) -> None:
        before = await _team(conn, p, team_id)
        errors: dict[str, str] = {}
        name = text_field(form, "name", errors, max_len=50)
        department = form.get("department") or ""
        if department not in {d.value for d in Department}:
            errors["department"] = _("Choose a department")
        if errors:
            raise Invalid(errors)
        await admin_db.update_team(conn, team_id, name, department)
        changes = {
            k: [before[k], v] for k, v in (("name", name), ("department_code", department)) if before[k] != v
        }
        await admin_db.audit(conn, p.staff_id, f"team:{team_id}", "update", changes)

    _unused, errors = await write(rt, save)
    if errors:
        return await _teams_page(request, project_id, status=422, errors=errors)
    return await _teams_page(request, project_id, flash=_("Saved: %(name)s", name=form.get("name") or ""))


# ---- departments ----------------------------------------------------------------------------
# The five departments are the domain's fixed vocabulary (intake routes categories to them), so
# they are neither added nor removed here; their shown name (on orders, triage and the board) is
# the company's own. They are shared by every project: only an administrator serving all
# projects may rename one, so an admin of one 小区 cannot change what another 小区 sees.


async def _departments_page(
    request: Req, *, status: int = 200, errors: dict[str, str] | None = None, flash: str | None = None
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        rows = await admin_db.departments_with_teams(conn, p.project_ids)
        may_rename = await admin_db.serves_every_project(conn, p.project_ids)
    return page(
        request,
        "departments",
        _("Departments"),
        status=status,
        departments=rows,
        may_rename=may_rename,
        errors=errors or {},
        flash=flash,
    )


@get("/admin/departments", guards=[staff_guard], opt=ADMIN)
async def departments_index(request: Req) -> Response[str]:
    return await _departments_page(request)


@post("/admin/departments/{code:str}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def department_rename(request: Req, code: str) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> None:
        if not await admin_db.serves_every_project(conn, p.project_ids):
            raise PermissionDeniedException("departments are shared by every project")
        errors: dict[str, str] = {}
        name = text_field(form, "name", errors, max_len=20)
        if errors:
            raise Invalid(errors)
        before = await admin_db.rename_department(conn, code, name)
        need(before is not None)
        await admin_db.audit(conn, p.staff_id, f"department:{code}", "rename", {"name": [before, name]})

    _unused, errors = await write(rt, save)
    if errors:
        return await _departments_page(request, status=422, errors=errors)
    return await _departments_page(request, flash=_("Saved: %(name)s", name=form.get("name") or ""))


# ---- 工作量已饱和 ---------------------------------------------------------------------------


def _may_saturate(p: Principal, team: RowMapping) -> bool:
    return p.role in (Role.ADMIN, Role.SUPERVISOR) or team["lead_id"] == p.staff_id


async def _workload_page(
    request: Req, *, status: int = 200, flash: str | None = None, errors: dict[str, str] | None = None
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        rows = [t for t in await admin_db.teams(conn, p.project_ids) if _may_saturate(p, t)]
    if not rows and p.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise PermissionDeniedException("not a team lead")
    now = clock.now()
    teams = [{**t, "today": admin_db.local_day(t["tz"], now)} for t in rows]
    return page(
        request, "workload", _("Team workload"), status=status, teams=teams, flash=flash, errors=errors or {}
    )


@get("/admin/workload", guards=[staff_guard])
async def workload(request: Req) -> Response[str]:
    """Teams whose saturation the caller may set: all of their projects' for supervisors, their own for leads."""
    return await _workload_page(request)


@post("/admin/teams/{team_id:int}/saturation", guards=[staff_guard], status_code=200)
async def team_saturation(request: Req, team_id: int) -> Response[str]:
    """Mark (saturated=1) or unmark the team 工作量已饱和 for today, in the project's time zone."""
    rt, p = who(request)
    form = await read_form(request)
    saturated = form.get("saturated") == "1"
    project_id: int | None = None

    async def mark(conn: AsyncConnection) -> None:
        nonlocal project_id
        team = await _team(conn, p, team_id)
        if not _may_saturate(p, team):
            raise PermissionDeniedException("not the team's lead")
        project_id = team["project_id"]
        day = admin_db.local_day(team["tz"], clock.now())
        await admin_db.set_saturated(conn, team_id, day if saturated else None)
        await admin_db.audit(
            conn, p.staff_id, f"team:{team_id}", "saturated" if saturated else "unsaturated", {"day": day}
        )

    await write(rt, mark)
    flash = _("Marked saturated for today") if saturated else _("Saturation mark removed")
    if form.get("back") == "teams" and p.role == Role.ADMIN and project_id is not None:
        return await _teams_page(request, project_id, flash=flash)
    return await _workload_page(request, flash=flash)


ROUTES = [
    projects_index,
    project_create,
    project_detail,
    project_save,
    building_add,
    rooms_bulk,
    room_add,
    area_add,
    teams_index,
    team_create,
    team_lead,
    team_edit,
    departments_index,
    department_rename,
    workload,
    team_saturation,
]
