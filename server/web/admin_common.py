"""Shared pieces of the admin pages: roles, form parsing, one-transaction writes, rendering.

A form handler parses every field into `errors` ({field: translated message}); when any is
wrong nothing is written and the same form comes back with 422 and each message beside its
field. Writes run in one transaction that also appends the admin_events row, so a refusal
half-way (a unique key, a policy conflict) rolls everything back.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, Response
from litestar.datastructures import MultiDict
from litestar.exceptions import NotFoundException
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.auth import Principal, current
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import Role
from server.i18n import gettext as _
from server.runtime import Runtime
from server.web.errors import is_htmx, translate
from server.web.templates import render

Req = Request[Any, Any, Any]
Form = MultiDict[str]
ADMIN: dict[str, Any] = {"roles": {Role.ADMIN}}
ADMIN_OR_SUPERVISOR: dict[str, Any] = {"roles": {Role.ADMIN, Role.SUPERVISOR}}
MAX_PRICE_FEN = 100_000_000  # 一百万元: a catalog price beyond this is a typo
_PRICE_RE = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


class Invalid(Exception):
    """Raised inside a write to roll it back and show these messages: {field: translated}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


MAX_ID = 2**31 - 1  # serial columns: a larger id cannot exist (and would fail the query, not 404)
_ID_RE = re.compile(r"^[0-9]{1,10}$")


def who(request: Req) -> tuple[Runtime, Principal]:
    p = current(request)
    assert p is not None and p.is_staff
    if any(isinstance(v, int) and not 0 < v <= MAX_ID for v in request.path_params.values()):
        raise not_found()
    return request.app.state.runtime, p


def small_id(raw: str | None) -> int | None:
    """A row id typed into a form (ASCII digits within the serial range), or None."""
    if raw is None or not _ID_RE.match(raw) or not 0 < int(raw) <= MAX_ID:
        return None
    return int(raw)


def not_found() -> NotFoundException:
    return NotFoundException("not found")


async def read_form(request: Req) -> Form:
    """The posted form as a multi-dict (multi-selects repeat their name), without the CSRF field."""
    raw = await request.form()
    # PostgreSQL text cannot hold NUL: drop it here rather than fail the insert.
    return MultiDict(
        [
            (k, v.replace("\x00", "").strip())
            for k, v in raw.multi_items()
            if k != "_csrf" and isinstance(v, str)
        ]
    )


def page(request: Req, section: str, title: str, *, status: int = 200, **ctx: Any) -> Response[str]:
    """Render a section: its fragment for htmx, or the admin page around it."""
    user = current(request)
    ctx.setdefault("errors", {})
    ctx.setdefault("form", MultiDict())
    name = f"fragments/admin_{section}.html" if is_htmx(request) else "admin.html"
    html = render(name, section=section, title=title, user=user, request_path=request.url.path, **ctx)
    return Response(html, status_code=status, media_type="text/html")


# ---- field parsing: each returns the clean value or records a message in `errors` ----------------


def text_field(
    form: Form, name: str, errors: dict[str, str], *, required: bool = True, max_len: int = 100
) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        errors[name] = _("This field is required")
    elif len(value) > max_len:
        errors[name] = _("At most %(n)s characters", n=max_len)
    return value


def int_field(
    form: Form,
    name: str,
    errors: dict[str, str],
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    required: bool = True,
    default: int | None = None,
) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        if required and default is None:
            errors[name] = _("This field is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = _("Enter a whole number")
        return None
    if minimum is not None and value < minimum:
        errors[name] = _("Must be at least %(n)s", n=minimum)
    elif maximum is not None and value > maximum:
        errors[name] = _("Must be at most %(n)s", n=maximum)
    return value


def id_list(form: Form, name: str, errors: dict[str, str]) -> list[int]:
    out: list[int] = []
    for raw in form.getall(name, []):
        if raw == "":
            continue
        value = small_id(raw)
        if value is None:
            errors[name] = _("Invalid value")
            return []
        out.append(value)
    return sorted(set(out))


def parse_yuan(raw: str) -> int | None:
    """Yuan as typed ("15", "12.5", "¥12.50") → fen by exact decimal arithmetic; None when invalid."""
    cleaned = (raw or "").strip().lstrip("¥￥").removesuffix("元").strip()
    if not _PRICE_RE.match(cleaned):  # refuses signs, exponents, "NaN", more than 2 decimals
        return None
    try:
        fen = Decimal(cleaned) * 100
    except InvalidOperation:
        return None
    if fen != fen.to_integral_value() or fen > MAX_PRICE_FEN:
        return None
    return int(fen)


def checkbox(form: Form, name: str) -> bool:
    return form.get(name) in ("1", "on", "true", "yes")


# ---- writing ----------------------------------------------------------------------------------

# Unique keys and checks → (field, msgid) shown beside the field.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "projects_code_key": ("code", N_("This code is already in use")),
    "projects_code_check": ("code", N_("Use 2–20 capital letters, digits, dash or underscore")),
    "buildings_project_id_code_key": ("code", N_("This building exists already")),
    "public_areas_project_id_name_key": ("name", N_("This public area exists already")),
    "teams_project_id_name_key": ("name", N_("A team with this name exists in the project")),
    "staff_username_key": ("username", N_("This user name is taken")),
    "catalog_items_code_key": ("code", N_("This code is already in use")),
    "sla_rules_scope": (
        "priority",
        N_("Another rule already sets this clock for the same scope with the same priority."),
    ),
}


def _constraint_name(exc: DBAPIError) -> str:
    orig = exc.orig
    for obj in (orig, getattr(orig, "__cause__", None)):
        name = getattr(obj, "constraint_name", None)
        if name:
            return str(name)
    return ""


async def write(
    rt: Runtime,
    fn: Callable[[AsyncConnection], Awaitable[Any]],
    constraints: dict[str, tuple[str, str]] | None = None,
) -> tuple[Any, dict[str, str]]:
    """Run `fn` in one transaction; return (its result, {}) or (None, field errors) after rolling back.

    `constraints` names the form field of a unique key where a page's forms prefix their fields.
    """
    try:
        async with rt.engine.begin() as conn:
            return await fn(conn), {}
    except Invalid as e:
        return None, e.errors
    except ValidationErrors as e:
        return None, {f: translate(m, p) for f, (m, p) in e.errors.items()}
    except DomainError as e:
        return None, {e.field or "form": translate(e.msgid, e.params)}
    except IntegrityError as e:
        name = _constraint_name(e)
        field, msgid = (
            (constraints or {}).get(name)
            or CONSTRAINTS.get(name)
            or ("form", N_("This conflicts with existing data"))
        )
        return None, {field: _(msgid)}


def need(condition: bool) -> None:
    """A row outside the caller's projects does not exist for them (404, like require_project)."""
    if not condition:
        raise not_found()
