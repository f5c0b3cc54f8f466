"""Admin pages (/admin): index, staff, kiosk and API tokens; catalogs, SLA and sites live in
admin_catalog.py and admin_sites.py. ROUTES here lists all of them.

Admins manage the projects they serve (their staff_projects): rows of other projects answer
404, as everywhere. Supervisors reach the SLA policy and team saturation only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from litestar import Response, get, post
from litestar.datastructures import MultiDict
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server import clock
from server.auth import Principal, staff_guard
from server.domain.intake import normalize_phone
from server.domain.vocab import Department, Role
from server.i18n import gettext as _
from server.persistence import admin as admin_db
from server.persistence import staff as staff_db
from server.runtime import Runtime
from server.security import hash_password, new_token, token_hash
from server.web.admin_common import (
    ADMIN,
    ADMIN_OR_SUPERVISOR,
    Form,
    Invalid,
    Req,
    id_list,
    need,
    page,
    read_form,
    text_field,
    who,
    write,
)

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{2,40}$")
PIN_RE = re.compile(r"^\d{4,6}$")
PIN_ROLES = {Role.ENGINEER, Role.HANDLER}  # they log in on shared tablets with a PIN
MIN_PASSWORD = 8


@get("/admin", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR)
async def admin_index(request: Req) -> Response[str]:
    rt, p = who(request)
    events: Any = []
    if p.role == Role.ADMIN:
        async with rt.engine.connect() as conn:
            events = [
                {**e, "details_text": json.dumps(e["details"], ensure_ascii=False)}
                for e in await admin_db.recent_events(conn)
            ]
    return page(request, "index", _("Administration"), events=events)


# ---- staff --------------------------------------------------------------------------------


async def _staff_choices(conn: AsyncConnection, p: Principal) -> dict[str, Any]:
    return {
        "projects": await admin_db.projects(conn, p.project_ids),
        "teams": await admin_db.teams(conn, p.project_ids),
        "roles": list(Role),
        "departments": list(Department),
    }


async def _parse_staff(
    conn: AsyncConnection, form: Form, p: Principal, errors: dict[str, str]
) -> dict[str, Any]:
    """The fields shared by create and edit: name, role, department, phone, projects, teams."""
    display_name = text_field(form, "display_name", errors, max_len=40)
    role = form.get("role") or ""
    if role not in {r.value for r in Role}:
        errors["role"] = _("Choose a role")
    department = form.get("department") or None
    if department is not None and department not in {d.value for d in Department}:
        errors["department"] = _("Invalid value")
    phone_raw = (form.get("phone") or "").strip()
    phone = normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        errors["phone"] = _("Enter a mobile or landline number")
    project_ids = id_list(form, "projects", errors)
    if any(pid not in p.project_ids for pid in project_ids):
        errors["projects"] = _("Invalid value")
    elif not project_ids and "projects" not in errors:
        errors["projects"] = _("Choose at least one project")
    team_ids = id_list(form, "teams", errors)
    if team_ids:
        found = await admin_db.teams_by_ids(conn, team_ids)
        if len(found) != len(team_ids) or any(pid not in project_ids for pid in found.values()):
            errors["teams"] = _("A team must belong to one of the chosen projects")
    return {
        "display_name": display_name,
        "role": role,
        "department_code": department,
        "phone": phone,
        "project_ids": project_ids,
        "team_ids": team_ids,
    }


def _password(
    form: Form, role: str, errors: dict[str, str], *, required: bool
) -> tuple[str | None, str | None]:
    """Return (password, pin) as typed, after checking them."""
    password = form.get("password") or ""
    if password or required:
        if len(password) < MIN_PASSWORD:
            errors["password"] = _("The password needs at least %(n)s characters", n=MIN_PASSWORD)
        elif len(password) > 128:
            errors["password"] = _("At most %(n)s characters", n=128)
    pin = (form.get("pin") or "").strip() or None
    if pin is not None:
        if role not in PIN_ROLES:
            errors["pin"] = _("Only engineers and department handlers log in with a PIN")
        elif not PIN_RE.match(pin):
            errors["pin"] = _("A PIN is 4 to 6 digits")
    return password or None, pin


def _forget(rt: Runtime, staff_id: int) -> None:
    # The NOTIFY sent at commit reaches every process soon; this one forgets at once.
    rt.sessions.on_notify(f"staff:{staff_id}")


async def _staff_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        rows = await admin_db.staff_list(conn, p.project_ids)
        choices = await _staff_choices(conn, p)
    return page(
        request,
        "staff",
        _("Staff"),
        status=status,
        staff=rows,
        form=form or MultiDict(),
        errors=errors or {},
        flash=flash,
        **choices,
    )


@get("/admin/staff", guards=[staff_guard], opt=ADMIN)
async def staff_index(request: Req) -> Response[str]:
    return await _staff_page(request)


@post("/admin/staff", guards=[staff_guard], opt=ADMIN, status_code=200)
async def staff_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        username = text_field(form, "username", errors, max_len=40).lower()
        if username and "username" not in errors and not USERNAME_RE.match(username):
            errors["username"] = _("Use 2–40 lowercase letters, digits, dot, dash or underscore")
        values = await _parse_staff(conn, form, p, errors)
        password, pin = _password(form, values["role"], errors, required=True)
        if errors:
            raise Invalid(errors)
        if await staff_db.by_username(conn, username) is not None:
            raise Invalid({"username": _("This user name is taken")})
        assert password is not None
        sid = await staff_db.create_staff(
            conn,
            username=username,
            display_name=values["display_name"],
            role=values["role"],
            password_hash=hash_password(password),
            project_ids=values["project_ids"],
            team_ids=values["team_ids"],
            department_code=values["department_code"],
            phone=values["phone"],
            pin_hash=hash_password(pin) if pin else None,
        )
        await admin_db.audit(
            conn,
            p.staff_id,
            f"staff:{sid}",
            "create",
            {"username": username, **{k: v for k, v in values.items() if k != "phone"}, "pin": bool(pin)},
        )
        return sid

    _sid, errors = await write(rt, create)
    if errors:
        return await _staff_page(request, status=422, form=form, errors=errors)
    return await _staff_page(request, flash=_("Saved: %(name)s", name=form.get("display_name") or ""))


async def _staff_edit_page(
    request: Req,
    staff_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        need(await admin_db.staff_visible(conn, staff_id, p.project_ids))
        row = await staff_db.by_id(conn, staff_id)
        assert row is not None
        choices = await _staff_choices(conn, p)
        phone = (await conn.execute(text("SELECT phone FROM staff WHERE id = :i"), {"i": staff_id})).scalar()
    if form is None:
        form = MultiDict(
            [
                ("display_name", row.display_name),
                ("role", row.role),
                ("department", row.department_code or ""),
                ("phone", phone or ""),
                *[("projects", str(i)) for i in row.project_ids if i in p.project_ids],
                *[("teams", str(i)) for i in row.team_ids],
            ]
        )
    return page(
        request,
        "staff_edit",
        row.display_name,
        status=status,
        person=row,
        form=form,
        errors=errors or {},
        flash=flash,
        **choices,
    )


@get("/admin/staff/{staff_id:int}", guards=[staff_guard], opt=ADMIN)
async def staff_edit(request: Req, staff_id: int) -> Response[str]:
    return await _staff_edit_page(request, staff_id)


@post("/admin/staff/{staff_id:int}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def staff_save(request: Req, staff_id: int) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> None:
        need(await admin_db.staff_visible(conn, staff_id, p.project_ids))
        before = await staff_db.by_id(conn, staff_id)
        assert before is not None
        errors: dict[str, str] = {}
        values = await _parse_staff(conn, form, p, errors)
        if staff_id == p.staff_id and values["role"] != before.role:
            errors["role"] = _("You cannot change your own role")
        if errors:
            raise Invalid(errors)
        if values["role"] not in PIN_ROLES and before.pin_hash:
            # A PIN left from an earlier tablet role would still open the tablet login.
            await admin_db.set_password(conn, staff_id, before.password_hash, None, set_pin=True)
        await admin_db.update_staff(conn, staff_id, managed_project_ids=p.project_ids, **values)
        await admin_db.audit(
            conn,
            p.staff_id,
            f"staff:{staff_id}",
            "update",
            {
                "role": [before.role, values["role"]],
                "project_ids": [sorted(before.project_ids & p.project_ids), values["project_ids"]],
                "team_ids": [sorted(before.team_ids), values["team_ids"]],
                "department_code": [before.department_code, values["department_code"]],
                "display_name": [before.display_name, values["display_name"]],
            },
        )

    _unused, errors = await write(rt, save)
    if errors:
        return await _staff_edit_page(request, staff_id, status=422, form=form, errors=errors)
    _forget(rt, staff_id)
    return await _staff_edit_page(request, staff_id, flash=_("Saved"))


@post("/admin/staff/{staff_id:int}/password", guards=[staff_guard], opt=ADMIN, status_code=200)
async def staff_password(request: Req, staff_id: int) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def reset(conn: AsyncConnection) -> None:
        need(await admin_db.staff_visible(conn, staff_id, p.project_ids))
        row = await staff_db.by_id(conn, staff_id)
        assert row is not None
        errors: dict[str, str] = {}
        password, pin = _password(form, row.role, errors, required=True)
        if errors:
            raise Invalid(errors)
        assert password is not None
        await admin_db.set_password(
            conn,
            staff_id,
            hash_password(password),
            hash_password(pin) if pin else None,
            set_pin=pin is not None,
        )
        await admin_db.audit(
            conn, p.staff_id, f"staff:{staff_id}", "reset_password", {"pin": pin is not None}
        )

    _unused, errors = await write(rt, reset)
    if errors:
        # Never echo a password back into the page.
        return await _staff_edit_page(request, staff_id, status=422, errors=errors)
    return await _staff_edit_page(request, staff_id, flash=_("The new password is set"))


@post("/admin/staff/{staff_id:int}/active", guards=[staff_guard], opt=ADMIN, status_code=200)
async def staff_active(request: Req, staff_id: int) -> Response[str]:
    """Disable (sessions end at their next request) or enable again. Nobody is ever deleted."""
    rt, p = who(request)
    form = await read_form(request)
    active = form.get("active") == "1"

    async def toggle(conn: AsyncConnection) -> None:
        need(await admin_db.staff_visible(conn, staff_id, p.project_ids))
        if staff_id == p.staff_id and not active:
            raise Invalid({"active": _("You cannot disable your own account")})
        await staff_db.set_active(conn, staff_id, active)
        await admin_db.audit(conn, p.staff_id, f"staff:{staff_id}", "enable" if active else "disable")

    _unused, errors = await write(rt, toggle)
    if errors:
        return await _staff_edit_page(request, staff_id, status=422, errors=errors)
    if not active:
        await rt.sessions.destroy_all_for(staff_id)
    _forget(rt, staff_id)
    return await _staff_edit_page(request, staff_id, flash=_("Enabled") if active else _("Disabled"))


# ---- kiosk and API tokens -----------------------------------------------------------------


async def _tokens_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
    board_url: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        kiosks = await admin_db.kiosks(conn, p.project_ids)
        tokens = await admin_db.api_tokens(conn, p.project_ids)
        projects = await admin_db.projects(conn, p.project_ids)
    return page(
        request,
        "tokens",
        _("Kiosk and API tokens"),
        status=status,
        kiosks=kiosks,
        tokens=tokens,
        projects=projects,
        form=form or MultiDict(),
        errors=errors or {},
        flash=flash,
        board_url=board_url,
    )


@get("/admin/tokens", guards=[staff_guard], opt=ADMIN)
async def tokens_index(request: Req) -> Response[str]:
    return await _tokens_page(request)


@post("/admin/kiosks", guards=[staff_guard], opt=ADMIN, status_code=200)
async def kiosk_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)
    token = new_token("kiosk")

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        name = text_field(form, "name", errors, max_len=60)
        project_ids = id_list(form, "projects", errors)
        if any(pid not in p.project_ids for pid in project_ids):
            errors["projects"] = _("Invalid value")
        elif not project_ids and "projects" not in errors:
            errors["projects"] = _("Choose at least one project")
        if errors:
            raise Invalid(errors)
        kid = await staff_db.create_kiosk_token(conn, token_hash(token), project_ids, name, p.staff_id)
        await admin_db.audit(
            conn, p.staff_id, f"kiosk:{kid}", "create", {"name": name, "project_ids": project_ids}
        )
        return kid

    _kid, errors = await write(rt, create)
    if errors:
        return await _tokens_page(request, status=422, form=form, errors=errors)
    # The token itself is never stored: this answer is the only place it appears.
    url = str(request.base_url).rstrip("/") + f"/board?kiosk={token}"
    return await _tokens_page(request, board_url=url)


@post("/admin/kiosks/{kiosk_id:int}/revoke", guards=[staff_guard], opt=ADMIN, status_code=200)
async def kiosk_revoke(request: Req, kiosk_id: int) -> Response[str]:
    rt, p = who(request)

    async def revoke(conn: AsyncConnection) -> None:
        need(any(k["id"] == kiosk_id for k in await admin_db.kiosks(conn, p.project_ids)))
        await staff_db.revoke_kiosk(conn, kiosk_id, clock.now())
        await admin_db.audit(conn, p.staff_id, f"kiosk:{kiosk_id}", "revoke")

    await write(rt, revoke)
    rt.sessions.on_notify("kiosk")
    return await _tokens_page(request, flash=_("Revoked"))


@post("/admin/api-tokens/{token_id:int}/revoke", guards=[staff_guard], opt=ADMIN, status_code=200)
async def api_token_revoke(request: Req, token_id: int) -> Response[str]:
    rt, p = who(request)

    async def revoke(conn: AsyncConnection) -> None:
        owner = await admin_db.api_token_owner(conn, token_id)
        need(owner is not None and await admin_db.staff_visible(conn, owner, p.project_ids))
        await staff_db.revoke_api_token(conn, token_id, clock.now())
        await admin_db.audit(conn, p.staff_id, f"api_token:{token_id}", "revoke", {"owner_id": owner})

    await write(rt, revoke)
    rt.sessions.on_notify("token")
    return await _tokens_page(request, flash=_("Revoked"))


def _all_routes() -> list[Any]:
    from server.web import admin_catalog, admin_sites

    return [
        admin_index,
        staff_index,
        staff_create,
        staff_edit,
        staff_save,
        staff_password,
        staff_active,
        tokens_index,
        kiosk_create,
        kiosk_revoke,
        api_token_revoke,
        *admin_catalog.ROUTES,
        *admin_sites.ROUTES,
    ]


ROUTES = _all_routes()
