"""Admin: service catalog (明码标价), specialist suppliers, and the SLA policy.

A policy change applies to clocks started afterwards: running clocks keep the deadline they
were given (order_clocks is never rewritten). Editing a rule therefore retires the old row
and adds a new one, so a clock's `rule_id` keeps pointing at the limit it was started with.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Response, get, post
from litestar.datastructures import MultiDict
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from server.auth import Principal, staff_guard
from server.domain import sla_policy
from server.domain.vocab import REPAIR_CATEGORIES, Category, ClockKind, Kind, Role, Urgency
from server.i18n import gettext as _
from server.labels import label
from server.persistence import admin as admin_db
from server.web.admin_common import (
    ADMIN,
    ADMIN_OR_SUPERVISOR,
    Form,
    Invalid,
    Req,
    checkbox,
    int_field,
    need,
    page,
    parse_yuan,
    read_form,
    small_id,
    text_field,
    who,
    write,
)

CODE_RE = re.compile(r"^[A-Z0-9_-]{1,20}$")
PHONE_RE = re.compile(r"^[0-9+\-() ]{3,30}$")
MAX_PRIORITY = 100


def _project_choice(form: Form, p: Principal, errors: dict[str, str]) -> int | None:
    """An optional project among the caller's; "" means every project."""
    if not form.get("project"):
        return None
    pid = small_id(form.get("project"))
    if pid is None or pid not in p.project_ids:
        errors["project"] = _("Invalid value")
        return None
    return pid


# ---- service catalog ----------------------------------------------------------------------


def _parse_item(form: Form, p: Principal, errors: dict[str, str]) -> dict[str, Any]:
    code = text_field(form, "code", errors, max_len=20).upper()
    if code and "code" not in errors and not CODE_RE.match(code):
        errors["code"] = _("Use capital letters, digits, dash or underscore")
    category = form.get("category") or ""
    if category not in {c.value for c in Category}:
        errors["category"] = _("Choose a category")
    price_fen = parse_yuan(form.get("price") or "")
    if price_fen is None:
        errors["price"] = _("Enter a price in yuan, like 15 or 12.50 (0 = price on agreement)")
    return {
        "project_id": _project_choice(form, p, errors),
        "category": category,
        "code": code,
        "name": text_field(form, "name", errors, max_len=100),
        "minutes": int_field(form, "minutes", errors, minimum=1, maximum=sla_policy.MAX_MINUTES),
        "price_fen": price_fen,
        "price_note": text_field(form, "price_note", errors, required=False, max_len=200),
    }


async def _catalog_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        items = await admin_db.catalog_items(conn, p.project_ids)
        projects = await admin_db.projects(conn, p.project_ids)
    return page(
        request,
        "catalog",
        _("Service catalog"),
        status=status,
        items=items,
        projects=projects,
        categories=_categories(),
        form=form or MultiDict([("category", "plumbing")]),
        errors=errors or {},
        flash=flash,
    )


def _categories() -> list[Category]:
    return sorted(Category, key=lambda c: (c not in REPAIR_CATEGORIES, list(Category).index(c)))


async def _visible_item(conn: AsyncConnection, p: Principal, item_id: int) -> RowMapping:
    row = await admin_db.catalog_item(conn, item_id)
    need(row is not None and (row["project_id"] is None or row["project_id"] in p.project_ids))
    assert row is not None
    return row


@get("/admin/catalog", guards=[staff_guard], opt=ADMIN)
async def catalog_index(request: Req) -> Response[str]:
    return await _catalog_page(request)


@post("/admin/catalog", guards=[staff_guard], opt=ADMIN, status_code=200)
async def catalog_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        values = _parse_item(form, p, errors)
        if errors:
            raise Invalid(errors)
        item_id = await admin_db.create_catalog_item(conn, {**values, "active": True})
        await admin_db.audit(conn, p.staff_id, f"catalog_item:{item_id}", "create", values)
        return item_id

    _unused, errors = await write(rt, create)
    if errors:
        return await _catalog_page(request, status=422, form=form, errors=errors)
    return await _catalog_page(request, flash=_("Saved: %(name)s", name=form.get("name") or ""))


async def _item_edit_page(
    request: Req,
    item_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        row = await _visible_item(conn, p, item_id)
        projects = await admin_db.projects(conn, p.project_ids)
    if form is None:
        from server.web.templates import yuan

        form = MultiDict(
            [
                ("project", str(row["project_id"] or "")),
                ("category", row["category"]),
                ("code", row["code"]),
                ("name", row["name"]),
                ("minutes", str(row["minutes"])),
                ("price", yuan(row["price_fen"])),
                ("price_note", row["price_note"]),
                ("active", "1" if row["active"] else ""),
            ]
        )
    return page(
        request,
        "catalog_edit",
        row["name"],
        status=status,
        item=row,
        projects=projects,
        categories=_categories(),
        form=form,
        errors=errors or {},
        flash=flash,
    )


@get("/admin/catalog/{item_id:int}", guards=[staff_guard], opt=ADMIN)
async def catalog_edit(request: Req, item_id: int) -> Response[str]:
    return await _item_edit_page(request, item_id)


@post("/admin/catalog/{item_id:int}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def catalog_save(request: Req, item_id: int) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> None:
        before = await _visible_item(conn, p, item_id)
        errors: dict[str, str] = {}
        values = {**_parse_item(form, p, errors), "active": checkbox(form, "active")}
        if errors:
            raise Invalid(errors)
        await admin_db.update_catalog_item(conn, item_id, values)
        changed = {k: [before[k], v] for k, v in values.items() if before[k] != v}
        await admin_db.audit(conn, p.staff_id, f"catalog_item:{item_id}", "update", changed)

    _unused, errors = await write(rt, save)
    if errors:
        return await _item_edit_page(request, item_id, status=422, form=form, errors=errors)
    return await _item_edit_page(request, item_id, flash=_("Saved"))


@post("/admin/catalog/{item_id:int}/active", guards=[staff_guard], opt=ADMIN, status_code=200)
async def catalog_active(request: Req, item_id: int) -> Response[str]:
    rt, p = who(request)
    active = (await read_form(request)).get("active") == "1"

    async def toggle(conn: AsyncConnection) -> None:
        await _visible_item(conn, p, item_id)
        await admin_db.set_catalog_active(conn, item_id, active)
        await admin_db.audit(conn, p.staff_id, f"catalog_item:{item_id}", "enable" if active else "disable")

    await write(rt, toggle)
    return await _catalog_page(request, flash=_("Enabled") if active else _("Disabled"))


# ---- suppliers ----------------------------------------------------------------------------


def _parse_supplier(form: Form, errors: dict[str, str]) -> dict[str, Any]:
    phone = text_field(form, "phone", errors, required=False, max_len=30)
    if phone and "phone" not in errors and not PHONE_RE.match(phone):
        errors["phone"] = _("Enter a phone number")
    return {
        "name": text_field(form, "name", errors, max_len=100),
        "service": text_field(form, "service", errors, max_len=200),
        "contact": text_field(form, "contact", errors, required=False, max_len=40),
        "phone": phone,
        "note": text_field(form, "note", errors, required=False, max_len=200),
    }


async def _suppliers_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, _p = who(request)
    async with rt.engine.connect() as conn:
        rows = await admin_db.suppliers(conn)
    return page(
        request,
        "suppliers",
        _("Specialist suppliers"),
        status=status,
        suppliers=rows,
        form=form or MultiDict(),
        errors=errors or {},
        flash=flash,
    )


async def _supplier(conn: AsyncConnection, supplier_id: int) -> RowMapping:
    row = await admin_db.supplier(conn, supplier_id)
    need(row is not None)
    assert row is not None
    return row


@get("/admin/suppliers", guards=[staff_guard], opt=ADMIN)
async def suppliers_index(request: Req) -> Response[str]:
    return await _suppliers_page(request)


@post("/admin/suppliers", guards=[staff_guard], opt=ADMIN, status_code=200)
async def supplier_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        values = _parse_supplier(form, errors)
        if errors:
            raise Invalid(errors)
        sid = await admin_db.create_supplier(conn, {**values, "active": True})
        await admin_db.audit(conn, p.staff_id, f"supplier:{sid}", "create", values)
        return sid

    _unused, errors = await write(rt, create)
    if errors:
        return await _suppliers_page(request, status=422, form=form, errors=errors)
    return await _suppliers_page(request, flash=_("Saved: %(name)s", name=form.get("name") or ""))


async def _supplier_edit_page(
    request: Req,
    supplier_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, _p = who(request)
    async with rt.engine.connect() as conn:
        row = await _supplier(conn, supplier_id)
    if form is None:
        form = MultiDict(
            [(k, row[k]) for k in ("name", "service", "contact", "phone", "note")]
            + [("active", "1" if row["active"] else "")]
        )
    return page(
        request,
        "supplier_edit",
        row["name"],
        status=status,
        supplier=row,
        form=form,
        errors=errors or {},
        flash=flash,
    )


@get("/admin/suppliers/{supplier_id:int}", guards=[staff_guard], opt=ADMIN)
async def supplier_edit(request: Req, supplier_id: int) -> Response[str]:
    return await _supplier_edit_page(request, supplier_id)


@post("/admin/suppliers/{supplier_id:int}", guards=[staff_guard], opt=ADMIN, status_code=200)
async def supplier_save(request: Req, supplier_id: int) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> None:
        before = await _supplier(conn, supplier_id)
        errors: dict[str, str] = {}
        values = {**_parse_supplier(form, errors), "active": checkbox(form, "active")}
        if errors:
            raise Invalid(errors)
        await admin_db.update_supplier(conn, supplier_id, values)
        changed = {k: [before[k], v] for k, v in values.items() if before[k] != v}
        await admin_db.audit(conn, p.staff_id, f"supplier:{supplier_id}", "update", changed)

    _unused, errors = await write(rt, save)
    if errors:
        return await _supplier_edit_page(request, supplier_id, status=422, form=form, errors=errors)
    return await _supplier_edit_page(request, supplier_id, flash=_("Saved"))


@post("/admin/suppliers/{supplier_id:int}/active", guards=[staff_guard], opt=ADMIN, status_code=200)
async def supplier_active(request: Req, supplier_id: int) -> Response[str]:
    rt, p = who(request)
    active = (await read_form(request)).get("active") == "1"

    async def toggle(conn: AsyncConnection) -> None:
        await _supplier(conn, supplier_id)
        await admin_db.set_supplier_active(conn, supplier_id, active)
        await admin_db.audit(conn, p.staff_id, f"supplier:{supplier_id}", "enable" if active else "disable")

    await write(rt, toggle)
    return await _suppliers_page(request, flash=_("Enabled") if active else _("Disabled"))


# ---- SLA policy ---------------------------------------------------------------------------


def _enum_choice(form: Form, name: str, enum: Any, errors: dict[str, str]) -> str | None:
    raw = form.get(name) or ""
    if not raw:
        return None
    if raw not in {e.value for e in enum}:
        errors[name] = _("Invalid value")
        return None
    return str(raw)


async def _parse_rule(
    conn: AsyncConnection, form: Form, p: Principal, errors: dict[str, str]
) -> dict[str, Any]:
    project_id = _project_choice(form, p, errors)
    if project_id is None and p.role != Role.ADMIN and "project" not in errors:
        errors["project"] = _("Supervisors set rules for their own projects; choose one")
    catalog_item_id = None
    raw_item = form.get("catalog_item") or ""
    if raw_item:
        choices = {r["id"]: r for r in await admin_db.catalog_choices(conn, p.project_ids)}
        catalog_item_id = small_id(raw_item)
        if catalog_item_id not in choices:
            errors["catalog_item"] = _("Invalid value")
            catalog_item_id = None
    clock = _enum_choice(form, "clock", ClockKind, errors)
    if clock is None and "clock" not in errors:
        errors["clock"] = _("Choose which clock the rule sets.")
    return {
        "project_id": project_id,
        "kind": _enum_choice(form, "kind", Kind, errors),
        "category": _enum_choice(form, "category", Category, errors),
        "urgency": _enum_choice(form, "urgency", Urgency, errors),
        "catalog_item_id": catalog_item_id,
        "clock": clock,
        # The range is sla_policy's to judge, with its own messages (0 → "must be positive").
        "minutes": int_field(form, "minutes", errors),
        "business_hours": checkbox(form, "business_hours"),
        "priority": int_field(form, "priority", errors, minimum=0, maximum=MAX_PRIORITY, default=0),
    }


async def _check_policy(conn: AsyncConnection, values: dict[str, Any], *, replacing: int | None) -> None:
    """Validate the whole live policy with this rule in it (built-in rules included)."""
    others = [r for r in await admin_db.live_rules(conn, lock=True) if r.id != replacing]
    new = admin_db.rule_of(values)
    sla_policy.validate_rules([*sla_policy.DEFAULT_RULES, *others, new])


def _may_touch(p: Principal, row: RowMapping) -> None:
    if row["project_id"] is None:
        if p.role != Role.ADMIN:
            raise PermissionDeniedException("global rule")
    else:
        need(row["project_id"] in p.project_ids)


async def _rule(conn: AsyncConnection, p: Principal, rule_id: int) -> RowMapping:
    row = await admin_db.sla_rule(conn, rule_id)
    need(row is not None and (row["project_id"] is None or row["project_id"] in p.project_ids))
    assert row is not None
    return row


def clock_label(code: str | None) -> str:
    # label("callback") is the order status 待回访; as a clock it is the callback after completion.
    return _("Callback after completion") if code == ClockKind.CALLBACK else label(code)


def _rule_context() -> dict[str, Any]:
    return {
        "kinds": list(Kind),
        "categories": _categories(),
        "urgencies": list(Urgency),
        "clocks": list(ClockKind),
        "builtin": sla_policy.DEFAULT_RULES,
        "clock_label": clock_label,
    }


async def _sla_page(
    request: Req,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
    flash: str | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        rules = await admin_db.sla_rules(conn, p.project_ids)
        projects = await admin_db.projects(conn, p.project_ids)
        catalog = await admin_db.catalog_choices(conn, p.project_ids)
    return page(
        request,
        "sla",
        _("SLA policy"),
        status=status,
        rules=rules,
        projects=projects,
        catalog=catalog,
        form=form or MultiDict([("priority", "0")]),
        errors=errors or {},
        flash=flash,
        **_rule_context(),
    )


@get("/admin/sla", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR)
async def sla_index(request: Req) -> Response[str]:
    return await _sla_page(request)


@post("/admin/sla", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR, status_code=200)
async def sla_create(request: Req) -> Response[str]:
    rt, p = who(request)
    form = await read_form(request)

    async def create(conn: AsyncConnection) -> int:
        errors: dict[str, str] = {}
        values = await _parse_rule(conn, form, p, errors)
        if errors:
            raise Invalid(errors)
        await _check_policy(conn, values, replacing=None)
        rule_id = await admin_db.create_sla_rule(conn, values, p.staff_id)
        await admin_db.audit(conn, p.staff_id, f"sla_rule:{rule_id}", "create", values)
        return rule_id

    _unused, errors = await write(rt, create)
    if errors:
        return await _sla_page(request, status=422, form=form, errors=errors)
    return await _sla_page(request, flash=_("Saved. The rule applies to clocks started from now on."))


async def _rule_edit_page(
    request: Req,
    rule_id: int,
    *,
    status: int = 200,
    form: Form | None = None,
    errors: dict[str, str] | None = None,
) -> Response[str]:
    rt, p = who(request)
    async with rt.engine.connect() as conn:
        row = await _rule(conn, p, rule_id)
        projects = await admin_db.projects(conn, p.project_ids)
        catalog = await admin_db.catalog_choices(conn, p.project_ids)
    if form is None:
        form = MultiDict(
            [
                ("project", str(row["project_id"] or "")),
                ("kind", row["kind"] or ""),
                ("category", row["category"] or ""),
                ("urgency", row["urgency"] or ""),
                ("catalog_item", str(row["catalog_item_id"] or "")),
                ("clock", row["clock"]),
                ("minutes", str(row["minutes"])),
                ("priority", str(row["priority"])),
                ("business_hours", "1" if row["business_hours"] else ""),
            ]
        )
    return page(
        request,
        "sla_edit",
        _("SLA rule"),
        status=status,
        rule=row,
        projects=projects,
        catalog=catalog,
        form=form,
        errors=errors or {},
        **_rule_context(),
    )


@get("/admin/sla/{rule_id:int}", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR)
async def sla_edit(request: Req, rule_id: int) -> Response[str]:
    return await _rule_edit_page(request, rule_id)


@post("/admin/sla/{rule_id:int}", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR, status_code=200)
async def sla_save(request: Req, rule_id: int) -> Response[str]:
    """Retire the rule and add its successor (running clocks keep the old limit)."""
    rt, p = who(request)
    form = await read_form(request)

    async def save(conn: AsyncConnection) -> int:
        before = await _rule(conn, p, rule_id)
        _may_touch(p, before)
        if not before["active"]:
            raise Invalid({"form": _("This rule is no longer in force; add a new one instead")})
        errors: dict[str, str] = {}
        values = await _parse_rule(conn, form, p, errors)
        if errors:
            raise Invalid(errors)
        await _check_policy(conn, values, replacing=rule_id)
        await admin_db.set_sla_rule_active(conn, rule_id, False)
        new_id = await admin_db.create_sla_rule(conn, values, p.staff_id)
        await admin_db.audit(
            conn,
            p.staff_id,
            f"sla_rule:{rule_id}",
            "replace",
            {"new_rule_id": new_id, "before": {k: before[k] for k in values}, "after": values},
        )
        return new_id

    _unused, errors = await write(rt, save)
    if errors:
        return await _rule_edit_page(request, rule_id, status=422, form=form, errors=errors)
    return await _sla_page(request, flash=_("Saved. The rule applies to clocks started from now on."))


@post("/admin/sla/{rule_id:int}/active", guards=[staff_guard], opt=ADMIN_OR_SUPERVISOR, status_code=200)
async def sla_active(request: Req, rule_id: int) -> Response[str]:
    rt, p = who(request)
    active = (await read_form(request)).get("active") == "1"

    async def toggle(conn: AsyncConnection) -> None:
        row = await _rule(conn, p, rule_id)
        _may_touch(p, row)
        if active and not row["active"]:
            await _check_policy(conn, dict(row), replacing=rule_id)
        await admin_db.set_sla_rule_active(conn, rule_id, active)
        await admin_db.audit(conn, p.staff_id, f"sla_rule:{rule_id}", "enable" if active else "disable")

    _unused, errors = await write(rt, toggle)
    if errors:
        return await _sla_page(request, status=422, errors=errors)
    return await _sla_page(request, flash=_("Saved. The rule applies to clocks started from now on."))


ROUTES = [
    catalog_index,
    catalog_create,
    catalog_edit,
    catalog_save,
    catalog_active,
    suppliers_index,
    supplier_create,
    supplier_edit,
    supplier_save,
    supplier_active,
    sla_index,
    sla_create,
    sla_edit,
    sla_save,
    sla_active,
]
