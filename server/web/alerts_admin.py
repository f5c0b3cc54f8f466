"""Admin pages of alerting, per project: the on-call rota, escalation chains, channels (WeCom
robots, webhooks, the SMS gateway), elevators and their maintenance contractors; and the
chains' JSON API.

Every save validates in server.domain (oncall, escalation, alert_setup) and answers 422 with
the form as typed and each field's message; nothing half-written. Running alerts keep the
chain and people they started with.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, get, post, put
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain import escalation as esc
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.oncall import GAP_HORIZON_DAYS
from server.domain.oncall import KINDS as SHIFT_KINDS
from server.domain.vocab import Role
from server.i18n import gettext as _
from server.labels import label
from server.persistence import alert_setup
from server.persistence import oncall as oncall_db
from server.runtime import Runtime
from server.web.errors import translate
from server.web.templates import local_time, render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
EDIT = {"roles": frozenset({Role.ADMIN, Role.SUPERVISOR})}
SECRETS = {"roles": frozenset({Role.ADMIN})}  # channels hold robot keys and gateway tokens
SHIFT_LABELS = {
    "day": N_("Day shift"),
    "night": N_("Night shift"),
    "weekend": N_("Weekend shift"),
    "holiday": N_("Holiday shift"),
}
TARGET_LABELS = {
    "oncall_primary": N_("Engineer on call"),
    "oncall_backup": N_("Backup"),
    "supervisor": N_("Supervisor on the shift"),
    "manager": N_("Manager on the shift"),
}
KIND_LABELS = {
    "entrapment": N_("Elevator entrapment"),
    "emergency": N_("Emergency"),
    "breach": N_("Deadline missed"),
}
CHANNEL_LABELS = {"wecom": N_("WeCom group robot"), "webhook": N_("Webhook"), "sms": N_("SMS gateway")}
SOURCE_LABELS = {
    "project": N_("This project's chain"),
    "all": N_("The chain of all projects"),
    "default": N_("The default chain"),
}


def target_label(target: str) -> str:
    """A chain step's target as people say it; a named person's name is on the step itself."""
    return _(TARGET_LABELS[target]) if target in TARGET_LABELS else _("Named person")


def runtime(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def principal(request: Request[Any, Any, Any]) -> Principal:
    p = current(request)
    assert p is not None
    return p


def mask_url(url: str) -> str:
    """https://qyapi.weixin.qq.com/…3f2a: enough to recognise, not enough to post to."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…{url[-4:]}" if parts.netloc else "…"


async def _project(rt: Runtime, p: Principal, code: str | None) -> dict[str, Any]:
    """The project named (one of the caller's) or their first; 404 for any other."""
    async with rt.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT id, code, name, tz FROM projects WHERE id = ANY(:p) AND active ORDER BY code"
                    ),
                    {"p": list(p.project_ids)},
                )
            )
            .mappings()
            .all()
        )
    projects = [dict(r) for r in rows]
    chosen = next((x for x in projects if x["code"] == (code or "").upper()), None) if code else None
    if chosen is None and code:
        raise NotFoundException("project")
    chosen = chosen or (projects[0] if projects else None)
    if chosen is None:
        raise NotFoundException("project")
    chosen["all"] = projects
    return chosen


def _page(template: str, p: Principal, project: dict[str, Any], section: str, **data: Any) -> str:
    return render(
        template,
        user=p,
        project=project,
        section=section,
        request_path="/admin/rota",
        errors=data.pop("errors", {}),
        form=data.pop("form", {}),
        local_time=local_time,
        shift_kind=lambda k: _(SHIFT_LABELS.get(k, k)),
        kind_label=lambda k: _(KIND_LABELS.get(k, k)),
        channel_label=lambda k: _(CHANNEL_LABELS.get(k, k)),
        mask_url=mask_url,
        **data,
    )


def _errors(e: ValidationErrors) -> dict[str, str]:
    return {f: translate(m, prm) for f, (m, prm) in e.errors.items()}


async def _save_or_show(
    request: Request[Any, Any, Any],
    code: str | None,
    save: Callable[[AsyncConnection, int, int | None], Awaitable[Any]],
    section: str,
    template: str,
    page_data: Callable[[Runtime, dict[str, Any]], Awaitable[dict[str, Any]]],
    on_error: Callable[[dict[str, str]], dict[str, Any]],
) -> Response[str]:
    """Save in one transaction and go back to the list; on refusal show the page again (422)
    with what `on_error` makes of the field messages (the form as typed, the errors)."""
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, code)
    try:
        async with rt.engine.begin() as conn:
            await save(conn, proj["id"], p.staff_id)
    except ValidationErrors as e:
        page = await page_data(rt, proj)
        page.update(on_error(_errors(e)))
        return Response(_page(template, p, proj, section, **page), status_code=422, media_type="text/html")
    return _back(f"/admin/{section}", proj)


def _form_of(rows: list[dict[str, Any]], row_id: int, keys: tuple[str, ...]) -> dict[str, str]:
    """The edit form of one listed row, as the browser would send it back; 404 when not listed."""
    row = next((r for r in rows if r["id"] == row_id), None)
    if row is None:
        raise NotFoundException("row")
    form = {k: "" if row[k] is None else str(row[k]) for k in keys}
    if "active" in keys:
        form["active"] = "1" if row["active"] else "0"
    return form


def _back(path: str, project: dict[str, Any], saved: str = "1") -> Response[str]:
    return Response(
        "", status_code=303, headers={"Location": f"{path}?project={project['code']}&saved={saved}"}
    )


# ---- the rota ------------------------------------------------------------------------------


async def _rota_data(rt: Runtime, project: dict[str, Any]) -> dict[str, Any]:
    now = clock.now()
    async with rt.engine.connect() as conn:
        return {
            "shifts": await oncall_db.list_shifts(conn, project["id"]),
            "people": await oncall_db.staff_choices(conn, project["id"]),
            "gaps": await oncall_db.rota_gaps(conn, project["id"], now),
            "duty": await oncall_db.on_call_now(conn, project["id"], now),
            "kinds": SHIFT_KINDS,
            "horizon": GAP_HORIZON_DAYS,
            "edit_id": None,
        }


@get("/admin/rota", guards=[staff_guard], opt=EDIT)
async def rota_page(
    request: Request[Any, Any, Any],
    project: str | None = None,
    edit: int | None = None,
    saved: str | None = None,
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    data = await _rota_data(rt, proj)
    form: dict[str, str] = {}
    if edit is not None:
        data["edit_id"] = edit
        form = _form_of(data["shifts"], edit, ("kind", "starts", "ends", *oncall_db.ROLE_FIELDS))
        form.update(starts=form["starts"][:5], ends=form["ends"][:5])  # HH:MM, as <input type=time>
    html = _page("admin_rota.html", p, proj, "rota", saved=saved, form=form, **data)
    return Response(html, media_type="text/html")


async def _save_shift(
    request: Request[Any, Any, Any], data: dict[str, str], project: str | None, shift_id: int | None
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    try:
        async with rt.engine.begin() as conn:
            await oncall_db.save_shift(conn, proj["id"], data, p.staff_id, shift_id)
            gaps = await oncall_db.rota_gaps(conn, proj["id"], clock.now())
    except ValidationErrors as e:
        page = await _rota_data(rt, proj)
        page["edit_id"] = shift_id
        html = _page("admin_rota.html", p, proj, "rota", errors=_errors(e), form=data, **page)
        return Response(html, status_code=422, media_type="text/html")
    # Flagged when saved: the page says the rota now leaves people uncovered.
    return _back("/admin/rota", proj, "gaps" if gaps else "1")


@post("/admin/rota", guards=[staff_guard], opt=EDIT, status_code=303)
async def rota_add(request: Request[Any, Any, Any], data: Form, project: str | None = None) -> Response[str]:
    return await _save_shift(request, data, project, None)


@post("/admin/rota/{shift_id:int}", guards=[staff_guard], opt=EDIT, status_code=303)
async def rota_change(
    request: Request[Any, Any, Any], shift_id: int, data: Form, project: str | None = None
) -> Response[str]:
    return await _save_shift(request, data, project, shift_id)


@post("/admin/rota/{shift_id:int}/delete", guards=[staff_guard], opt=EDIT, status_code=303)
async def rota_delete(
    request: Request[Any, Any, Any], shift_id: int, project: str | None = None
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    async with rt.engine.begin() as conn:
        await oncall_db.delete_shift(conn, proj["id"], shift_id, p.staff_id)
        gaps = await oncall_db.rota_gaps(conn, proj["id"], clock.now())
    return _back("/admin/rota", proj, "gaps" if gaps else "1")


# ---- escalation chains ---------------------------------------------------------------------


async def _chain_data(rt: Runtime, project: dict[str, Any]) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        chains = await alert_setup.chains_of(conn, project["id"])
        people = await oncall_db.staff_choices(conn, project["id"])
    targets = [(t, _(label)) for t, label in TARGET_LABELS.items()]
    targets += [(f"staff:{s['id']}", f"{s['name']} · {label(s['role'])}") for s in people]
    return {
        "chains": chains,
        "targets": targets,
        "source_label": lambda s: _(SOURCE_LABELS[s]),
        "row_count": _row_count,
        "kind_forms": {},
    }


def _row_count(form: dict[str, str]) -> int:
    """Rows the chain form shows before its two empty ones: up to the last numbered row."""
    rows = [int(k[7:]) for k in form if k.startswith("target_") and k[7:].isdigit()]
    return max(rows) + 1 if rows else 0


def _chain_form(config: esc.ChainConfig) -> dict[str, str]:
    form = {f"target_{i}": s.target for i, s in enumerate(config.steps)}
    form.update({f"wait_{i}": str(s.wait_after_minutes) for i, s in enumerate(config.steps)})
    form["remind_after_minutes"] = str(config.remind_after_minutes)
    return form


@get("/admin/chains", guards=[staff_guard], opt=EDIT)
async def chains_page(
    request: Request[Any, Any, Any], project: str | None = None, saved: str | None = None
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    data = await _chain_data(rt, proj)
    data["kind_forms"] = {k: _chain_form(c["config"]) for k, c in data["chains"].items()}
    return Response(
        _page("alerts_admin_chains.html", p, proj, "chains", saved=saved, **data), media_type="text/html"
    )


def _row_errors(e: ValidationErrors, rows: list[int]) -> dict[str, str]:
    """steps.<i>.target / .wait (i in the saved list) → the form row's target_<n> / wait_<n>."""
    out = {}
    for field, message in _errors(e).items():
        parts = field.split(".")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) < len(rows):
            out[f"{parts[2]}_{rows[int(parts[1])]}"] = message
        else:
            out[field] = message
    return out


@post("/admin/chains/{kind:str}", guards=[staff_guard], opt=EDIT, status_code=303)
async def chain_save(
    request: Request[Any, Any, Any], kind: str, data: Form, project: str | None = None
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    if kind not in esc.ALERT_KINDS:
        raise NotFoundException("kind")
    steps, remind, rows = alert_setup.chain_from_form(data)
    try:
        async with rt.engine.begin() as conn:
            await alert_setup.save_chain(conn, proj["id"], kind, steps, remind, p.staff_id)
    except ValidationErrors as e:
        page = await _chain_data(rt, proj)
        page["kind_forms"] = {k: _chain_form(c["config"]) for k, c in page["chains"].items()}
        page["kind_forms"][kind] = dict(data)
        html = _page(
            "alerts_admin_chains.html", p, proj, "chains", errors={kind: _row_errors(e, rows)}, **page
        )
        return Response(html, status_code=422, media_type="text/html")
    return _back("/admin/chains", proj)


@post("/admin/chains/{kind:str}/reset", guards=[staff_guard], opt=EDIT, status_code=303)
async def chain_reset(
    request: Request[Any, Any, Any], kind: str, project: str | None = None
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    async with rt.engine.begin() as conn:
        await alert_setup.reset_chain(conn, proj["id"], kind, p.staff_id)
    return _back("/admin/chains", proj)


class StepIn(msgspec.Struct):
    target: str
    wait_after_minutes: int


class ChainIn(msgspec.Struct):
    steps: list[StepIn]
    remind_after_minutes: int = esc.DEFAULT_REMIND_AFTER_MINUTES


def _chain_json(kind: str, chain: dict[str, Any]) -> dict[str, Any]:
    config: esc.ChainConfig = chain["config"]
    return {
        "kind": kind,
        "source": chain["source"],
        "steps": esc.chain_json(config.steps),
        "remind_after_minutes": config.remind_after_minutes,
    }


@get("/api/v1/escalation-chains", guards=[staff_guard], opt=EDIT, tags=["alerts"])
async def chains_api(request: Request[Any, Any, Any], project: str) -> dict[str, Any]:
    """The chain in force per alert kind and where it comes from (project, all, default)."""
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    async with rt.engine.connect() as conn:
        chains = await alert_setup.chains_of(conn, proj["id"])
    return {"project": proj["code"], "chains": [_chain_json(k, c) for k, c in chains.items()]}


@put("/api/v1/escalation-chains/{kind:str}", guards=[staff_guard], opt=EDIT, tags=["alerts"])
async def chain_put(
    request: Request[Any, Any, Any], kind: str, project: str, data: ChainIn
) -> dict[str, Any]:
    """Set the project's chain for an alert kind: ordered steps {target, wait_after_minutes}
    (target: oncall_primary, oncall_backup, supervisor, manager or staff:<id>; waits 1–1440)."""
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    if kind not in esc.ALERT_KINDS:
        raise DomainError("not_found", N_("Unknown value %(value)s"), field="kind", value=kind[:20])
    steps = [msgspec.structs.asdict(s) for s in data.steps]
    async with rt.engine.begin() as conn:
        await alert_setup.save_chain(conn, proj["id"], kind, steps, data.remind_after_minutes, p.staff_id)
        chains = await alert_setup.chains_of(conn, proj["id"])
    return _chain_json(kind, chains[kind])


# ---- channels ------------------------------------------------------------------------------


async def _channel_data(rt: Runtime, project: dict[str, Any]) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        return {"channels": await alert_setup.channels_of(conn, project["id"]), "edit_id": None}


@get("/admin/channels", guards=[staff_guard], opt=SECRETS)
async def channels_page(
    request: Request[Any, Any, Any],
    project: str | None = None,
    edit: int | None = None,
    saved: str | None = None,
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    data = await _channel_data(rt, proj)
    form: dict[str, str] = {}
    if edit is not None:
        data["edit_id"] = edit
        form = _form_of(data["channels"], edit, ("channel", "name", "url", "active"))
    html = _page("alerts_admin_channels.html", p, proj, "channels", saved=saved, form=form, **data)
    return Response(html, media_type="text/html")


async def _save_channel(
    request: Request[Any, Any, Any], data: dict[str, str], project: str | None, channel_id: int | None
) -> Response[str]:
    return await _save_or_show(
        request,
        project,
        lambda conn, pid, actor: alert_setup.save_channel(conn, pid, data, actor, channel_id),
        "channels",
        "alerts_admin_channels.html",
        _channel_data,
        lambda errors: {
            "errors": errors,
            "form": {k: v for k, v in data.items() if k != "token"},  # a secret is never echoed
            "edit_id": channel_id,
        },
    )


@post("/admin/channels", guards=[staff_guard], opt=SECRETS, status_code=303)
async def channel_add(
    request: Request[Any, Any, Any], data: Form, project: str | None = None
) -> Response[str]:
    return await _save_channel(request, data, project, None)


@post("/admin/channels/{channel_id:int}", guards=[staff_guard], opt=SECRETS, status_code=303)
async def channel_change(
    request: Request[Any, Any, Any], channel_id: int, data: Form, project: str | None = None
) -> Response[str]:
    return await _save_channel(request, data, project, channel_id)


# ---- elevators and contractors -------------------------------------------------------------


async def _elevator_data(rt: Runtime, project: dict[str, Any]) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        return {
            "elevators": await alert_setup.elevators_of(conn, project["id"]),
            "contractors": await alert_setup.contractors_of(conn, project["id"]),
            "buildings": await alert_setup.buildings_of(conn, project["id"]),
            "edit_id": None,
            "edit_contractor": None,
            "contractor_form": {},
            "contractor_errors": {},
        }


@get("/admin/elevators", guards=[staff_guard], opt=EDIT)
async def elevators_page(
    request: Request[Any, Any, Any],
    project: str | None = None,
    edit: int | None = None,
    contractor: int | None = None,
    saved: str | None = None,
) -> Response[str]:
    rt, p = runtime(request), principal(request)
    proj = await _project(rt, p, project)
    data = await _elevator_data(rt, proj)
    form: dict[str, str] = {}
    if edit is not None:
        data["edit_id"] = edit
        form = _form_of(data["elevators"], edit, ("code", "name", "building_id", "contractor_id", "active"))
    if contractor is not None:
        data["edit_contractor"] = contractor
        data["contractor_form"] = _form_of(
            data["contractors"], contractor, ("name", "phone", "webhook", "active")
        )
    html = _page("alerts_admin_elevators.html", p, proj, "elevators", saved=saved, form=form, **data)
    return Response(html, media_type="text/html")


async def _save_elevator(
    request: Request[Any, Any, Any], data: dict[str, str], project: str | None, elevator_id: int | None
) -> Response[str]:
    return await _save_or_show(
        request,
        project,
        lambda conn, pid, actor: alert_setup.save_elevator(conn, pid, data, actor, elevator_id),
        "elevators",
        "alerts_admin_elevators.html",
        _elevator_data,
        lambda errors: {"errors": errors, "form": data, "edit_id": elevator_id},
    )


async def _save_contractor(
    request: Request[Any, Any, Any], data: dict[str, str], project: str | None, contractor_id: int | None
) -> Response[str]:
    return await _save_or_show(
        request,
        project,
        lambda conn, pid, actor: alert_setup.save_contractor(conn, pid, data, actor, contractor_id),
        "elevators",
        "alerts_admin_elevators.html",
        _elevator_data,
        lambda errors: {
            "contractor_errors": errors,
            "contractor_form": data,
            "edit_contractor": contractor_id,
        },
    )


@post("/admin/elevators", guards=[staff_guard], opt=EDIT, status_code=303)
async def elevator_add(
    request: Request[Any, Any, Any], data: Form, project: str | None = None
) -> Response[str]:
    return await _save_elevator(request, data, project, None)


@post("/admin/elevators/{elevator_id:int}", guards=[staff_guard], opt=EDIT, status_code=303)
async def elevator_change(
    request: Request[Any, Any, Any], elevator_id: int, data: Form, project: str | None = None
) -> Response[str]:
    return await _save_elevator(request, data, project, elevator_id)


@post("/admin/contractors", guards=[staff_guard], opt=EDIT, status_code=303)
async def contractor_add(
    request: Request[Any, Any, Any], data: Form, project: str | None = None
) -> Response[str]:
    return await _save_contractor(request, data, project, None)


@post("/admin/contractors/{contractor_id:int}", guards=[staff_guard], opt=EDIT, status_code=303)
async def contractor_change(
    request: Request[Any, Any, Any], contractor_id: int, data: Form, project: str | None = None
) -> Response[str]:
    return await _save_contractor(request, data, project, contractor_id)


ROUTES: list[Any] = [
    rota_page,
    rota_add,
    rota_change,
    rota_delete,
    chains_page,
    chain_save,
    chain_reset,
    chains_api,
    chain_put,
    channels_page,
    channel_add,
    channel_change,
    elevators_page,
    elevator_add,
    elevator_change,
    contractor_add,
    contractor_change,
]
