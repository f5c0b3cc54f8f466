"""Alerts on the web: the supervisor's /alerts page, one-tap acknowledge, the JSON API, the
on-call rota admin page, and the elevator monitoring boxes' webhook.

Handlers stay thin: rules live in server.domain.{oncall,escalation}, SQL in
server.persistence.{alerts,oncall}. Step jobs are enqueued only after the commit.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, Parameter
from sqlalchemy import text

from server import clock
from server.auth import Principal, current, staff_guard
from server.domain.intake import normalize_phone, parse_datetime, validate_intake
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.oncall import KINDS as SHIFT_KINDS
from server.domain.vocab import Role
from server.i18n import gettext as _
from server.persistence import alerts as alerts_db
from server.persistence import oncall as oncall_db
from server.persistence import orders as orders_db
from server.runtime import Runtime
from server.security import same
from server.web.api_orders import actor_of
from server.web.errors import is_htmx, translate
from server.web.templates import local_time, render

log = logging.getLogger("baoxiu.alerts.web")

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
VIEW = {"roles": frozenset({Role.SUPERVISOR, Role.MANAGER, Role.MONITOR, Role.DISPATCHER, Role.ADMIN})}
ACK = {"roles": alerts_db.ACK_ROLES}
ROTA = {"roles": frozenset({Role.ADMIN, Role.SUPERVISOR})}
SHIFT_LABELS = {
    "day": N_("Day shift"),
    "night": N_("Night shift"),
    "weekend": N_("Weekend shift"),
    "holiday": N_("Holiday shift"),
}
EVENT_RE = re.compile(r"^[a-z][a-z_]{0,39}$")
MAX_FUTURE = timedelta(minutes=10)  # a box's clock may run a little fast; more is a bad payload


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _me(request: Request[Any, Any, Any]) -> Principal:
    p = current(request)
    assert p is not None
    return p


async def schedule_after_commit(rt: Runtime, steps: list[Any]) -> None:
    """Enqueue the step jobs of alerts opened or stepped by a committed transaction."""
    steps = [s for s in steps if isinstance(s, alerts_db.Scheduled)]
    if not steps:
        return
    try:
        from workers.alert_jobs import schedule
        from workers.scheduling import arq_pool

        await schedule(await arq_pool(rt), steps)
    except Exception as e:  # Redis down: the escalation sweep runs the step on time anyway
        log.warning("could not schedule alert steps: %s", e)


# ---- acknowledge ---------------------------------------------------------------------------


async def _acknowledge(rt: Runtime, p: Principal, alert_id: int) -> alerts_db.AckResult:
    async with rt.engine.begin() as conn:
        result = await alerts_db.acknowledge(conn, alert_id, actor_of(p), clock.now())
    if result.changed and rt.board is not None:
        rt.board.bump(result.alert["project_id"])  # the board redraws without waiting for NOTIFY
    return result


@post("/alerts/{alert_id:int}/acknowledge", guards=[staff_guard], opt=ACK, status_code=200)
async def acknowledge_page(request: Request[Any, Any, Any], alert_id: int) -> Response[Any]:
    """One tap from the tablet, the board or /alerts; repeating it changes nothing."""
    await _acknowledge(_rt(request), _me(request), alert_id)
    if is_htmx(request) and request.headers.get("hx-target"):
        # The tablet swaps its list: reload the page instead so every panel agrees.
        return Response(b"", status_code=200, headers={"HX-Refresh": "true"})
    if is_htmx(request):
        return Response(b"", status_code=204, headers={"HX-Trigger": "board-refresh"})
    return Response(b"", status_code=303, headers={"Location": "/alerts"})


@post(
    "/api/v1/alerts/{alert_id:int}/acknowledge",
    guards=[staff_guard],
    opt=ACK,
    status_code=200,
    tags=["alerts"],
)
async def acknowledge_api(request: Request[Any, Any, Any], alert_id: int) -> dict[str, Any]:
    rt, p = _rt(request), _me(request)
    result = await _acknowledge(rt, p, alert_id)
    async with rt.engine.connect() as conn:
        rows = await alerts_db.list_alerts(conn, p.project_ids, alert_id=alert_id)
    return {**alerts_db.alert_json(rows[0]), "changed": result.changed}


# ---- lists ---------------------------------------------------------------------------------


@get("/api/v1/alerts", guards=[staff_guard], tags=["alerts"])
async def list_api(
    request: Request[Any, Any, Any],
    alert_state: str | None = Parameter(
        query="state", default=None, description="triggered | acknowledged | resolved | open"
    ),
    project: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    p = _me(request)
    state = alert_state
    if state and state not in alerts_db.STATES and state != "open":
        raise DomainError("invalid", N_("Unknown value %(value)s"), field="state", value=state[:20])
    pids = await _project_ids(_rt(request), p, project)
    async with _rt(request).engine.connect() as conn:
        rows = await alerts_db.list_alerts(
            conn,
            pids,
            state=None if state == "open" else state,
            open_only=state == "open",
            limit=max(1, min(limit, 500)),
        )
    return {"alerts": [alerts_db.alert_json(a) for a in rows]}


async def _project_ids(rt: Runtime, p: Principal, code: str | None) -> frozenset[int]:
    if not code:
        return p.project_ids
    async with rt.engine.connect() as conn:
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": code[:20]})).scalar()
    if pid is None or pid not in p.project_ids:
        raise DomainError("not_found", N_("Unknown project %(value)s"), field="project", value=code[:20])
    return frozenset({pid})


async def _alerts_page_data(rt: Runtime, p: Principal, show: str) -> dict[str, Any]:
    async with rt.engine.connect() as conn:
        rows = await alerts_db.list_alerts(conn, p.project_ids, open_only=show != "all", limit=100)
    return {
        "alerts": rows,
        "show": show,
        "user": p,
        "now": clock.now(),
        "can_ack": p.role in alerts_db.ACK_ROLES,
        "local_time": local_time,
    }


@get("/alerts", guards=[staff_guard], opt=VIEW)
async def alerts_page(request: Request[Any, Any, Any], show: str = "open") -> Response[str]:
    data = await _alerts_page_data(_rt(request), _me(request), show)
    return Response(render("alerts.html", request_path="/alerts", **data), media_type="text/html")


@get("/alerts/list", guards=[staff_guard], opt=VIEW)
async def alerts_list(request: Request[Any, Any, Any], show: str = "open") -> Response[str]:
    data = await _alerts_page_data(_rt(request), _me(request), show)
    return Response(render("alerts_list.html", **data), media_type="text/html")


# ---- rota admin ----------------------------------------------------------------------------


async def _rota_project(rt: Runtime, p: Principal, code: str | None) -> dict[str, Any]:
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


async def _rota_data(rt: Runtime, p: Principal, project: dict[str, Any], **extra: Any) -> dict[str, Any]:
    now = clock.now()
    async with rt.engine.connect() as conn:
        shifts = await oncall_db.list_shifts(conn, project["id"])
        people = await oncall_db.staff_choices(conn, project["id"])
        gaps = await oncall_db.rota_gaps(conn, project["id"], now)
        duty = await oncall_db.on_call_now(conn, project["id"], now)
        chains = {k: await alerts_db.chain_steps_for(conn, project["id"], k) for k in alerts_db.KINDS}
    return {
        "user": p,
        "project": project,
        "shifts": shifts,
        "people": people,
        "gaps": gaps,
        "duty": duty,
        "kinds": SHIFT_KINDS,
        "chains": chains,
        "request_path": "/admin/rota",
        "errors": {},
        "form": {},
        "edit_id": None,
        "shift_kind": lambda k: _(SHIFT_LABELS.get(k, k)),
        "local_time": local_time,
        **extra,
    }


@get("/admin/rota", guards=[staff_guard], opt=ROTA)
async def rota_page(
    request: Request[Any, Any, Any],
    project: str | None = None,
    edit: int | None = None,
    saved: str | None = None,
) -> Response[str]:
    rt, p = _rt(request), _me(request)
    proj = await _rota_project(rt, p, project)
    data = await _rota_data(rt, p, proj, saved=saved)
    if edit is not None:
        row = next((s for s in data["shifts"] if s["id"] == edit), None)
        if row is None:
            raise NotFoundException("shift")
        data["edit_id"] = edit
        data["form"] = {
            k: ("" if row[k] is None else str(row[k])[:5] if k in ("starts", "ends") else str(row[k]))
            for k in ("kind", "starts", "ends", *oncall_db.ROLE_FIELDS)
        }
    return Response(render("admin_rota.html", **data), media_type="text/html")


async def _save(
    request: Request[Any, Any, Any], data: dict[str, str], project: str | None, shift_id: int | None
) -> Response[str]:
    rt, p = _rt(request), _me(request)
    proj = await _rota_project(rt, p, project)
    try:
        async with rt.engine.begin() as conn:
            await oncall_db.save_shift(conn, proj["id"], data, p.staff_id, shift_id)
    except ValidationErrors as e:
        errors = {f: translate(m, prm) for f, (m, prm) in e.errors.items()}
        page = await _rota_data(rt, p, proj, errors=errors, form=data, edit_id=shift_id)
        return Response(render("admin_rota.html", **page), status_code=422, media_type="text/html")
    return Response("", status_code=303, headers={"Location": f"/admin/rota?project={proj['code']}&saved=1"})


@post("/admin/rota", guards=[staff_guard], opt=ROTA, status_code=303)
async def rota_add(request: Request[Any, Any, Any], data: Form, project: str | None = None) -> Response[str]:
    return await _save(request, data, project, None)


@post("/admin/rota/{shift_id:int}", guards=[staff_guard], opt=ROTA, status_code=303)
async def rota_change(
    request: Request[Any, Any, Any], shift_id: int, data: Form, project: str | None = None
) -> Response[str]:
    return await _save(request, data, project, shift_id)


@post("/admin/rota/{shift_id:int}/delete", guards=[staff_guard], opt=ROTA, status_code=303)
async def rota_delete(
    request: Request[Any, Any, Any], shift_id: int, project: str | None = None
) -> Response[str]:
    rt, p = _rt(request), _me(request)
    proj = await _rota_project(rt, p, project)
    async with rt.engine.begin() as conn:
        await oncall_db.delete_shift(conn, proj["id"], shift_id, p.staff_id)
    return Response("", status_code=303, headers={"Location": f"/admin/rota?project={proj['code']}&saved=1"})


@get("/api/v1/oncall", guards=[staff_guard], tags=["alerts"])
async def oncall_api(request: Request[Any, Any, Any], project: str) -> dict[str, Any]:
    """Who is on call now, and the rota's gaps in the next 7 days."""
    rt, p = _rt(request), _me(request)
    pid = next(iter(await _project_ids(rt, p, project)))
    now = clock.now()
    async with rt.engine.connect() as conn:
        duty = await oncall_db.on_call_now(conn, pid, now)
        gaps = await oncall_db.rota_gaps(conn, pid, now)
    if duty:
        duty = {
            **duty,
            "starts": duty["starts"].isoformat(timespec="minutes"),
            "ends": duty["ends"].isoformat(timespec="minutes"),
        }
    return {"on_call": duty, "gaps": [{"from": a, "to": b} for a, b in gaps]}


# ---- elevator IoT webhook ------------------------------------------------------------------


def _iot_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status_code=status)


def _parse_iot(raw: bytes, now: datetime) -> tuple[dict[str, Any] | None, dict[str, str]]:
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        return None, {"body": _("Send a JSON object")}
    if not isinstance(data, dict):
        return None, {"body": _("Send a JSON object")}
    errors: dict[str, str] = {}
    code = data.get("elevator")
    if not isinstance(code, str) or not code.strip() or len(code) > 40:
        errors["elevator"] = _("Give the elevator's code")
    event = data.get("event")
    if not isinstance(event, str) or not EVENT_RE.match(event):
        errors["event"] = _("Give the event, e.g. entrapment or fault")
    at = parse_datetime(data["time"]) if isinstance(data.get("time"), str) else None
    if at is None or at.tzinfo is None:
        errors["time"] = _("Give the time in ISO 8601 with its zone, e.g. 2026-11-24T10:00:00+08:00")
    elif at > now + MAX_FUTURE:
        errors["time"] = _("The time is in the future")
    if errors:
        return None, errors
    return {"elevator": code.strip(), "event": event, "at": at}, {}  # type: ignore[union-attr]


def _reporter_phone(elevator: dict[str, Any], fallback: str | None) -> str:
    for candidate in (elevator["contractor_phone"], fallback):
        phone = normalize_phone(candidate or "")
        if phone:
            return phone
    return "00000000"  # no phone anywhere: intake needs one; nobody calls a monitoring box back


@post("/api/v1/iot/elevator", status_code=200, tags=["iot"])
async def iot_elevator(request: Request[Any, Any, Any]) -> Response[Any]:
    """An elevator monitoring box reports an event; "entrapment" opens the order and its alert."""
    rt = _rt(request)
    if not same(request.headers.get("x-iot-secret"), rt.settings.iot_secret):
        log.warning(
            "iot webhook: wrong or missing secret from %s", request.client.host if request.client else "?"
        )
        return _iot_error(401, "unauthorized", _("Wrong or missing X-IoT-Secret"))
    now = clock.now()
    payload, errors = _parse_iot(await request.body(), now)
    if payload is None:
        return _iot_error(422, "invalid", _("Invalid input"), errors)
    async with rt.engine.begin() as conn:
        elevator = (
            (
                await conn.execute(
                    text(
                        "SELECT e.*, p.code AS project_code, b.name AS building_name, "
                        "(SELECT s.phone FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                        " WHERE sp.project_id = e.project_id AND s.active AND s.phone IS NOT NULL "
                        " ORDER BY array_position(ARRAY['monitor','supervisor','dispatcher'], s.role) NULLS LAST, s.id "
                        " LIMIT 1) AS duty_phone "
                        "FROM elevators e JOIN projects p ON p.id = e.project_id LEFT JOIN buildings b ON b.id = e.building_id "
                        "WHERE e.code = :c"
                    ),
                    {"c": payload["elevator"]},
                )
            )
            .mappings()
            .first()
        )
        if elevator is None:
            log.warning("iot webhook: unknown elevator %r (event %s)", payload["elevator"], payload["event"])
            return _iot_error(404, "not_found", _("Unknown elevator %(code)s", code=payload["elevator"]))
        elevator = dict(elevator)
        event_id = (
            await conn.execute(
                text(
                    "INSERT INTO iot_events (elevator_id, event, occurred_at, received_at) VALUES (:e, :ev, :at, :now) "
                    "ON CONFLICT (elevator_id, event, occurred_at) DO NOTHING RETURNING id"
                ),
                {"e": elevator["id"], "ev": payload["event"], "at": payload["at"], "now": now},
            )
        ).scalar()
        if event_id is None:
            return Response({"duplicate": True}, status_code=200)
        if payload["event"] != "entrapment":
            return Response({"recorded": True, "order": None}, status_code=202)
        # A box repeating an entrapment with a new timestamp joins the order already open.
        open_order = (
            (
                await conn.execute(
                    text(
                        "SELECT id, number FROM orders WHERE elevator_id = :e AND kind = 'entrapment' "
                        "AND status NOT IN ('done', 'callback', 'closed', 'cancelled') ORDER BY id DESC LIMIT 1"
                    ),
                    {"e": elevator["id"]},
                )
            )
            .mappings()
            .first()
        )
        if open_order is not None:
            await conn.execute(
                text("UPDATE iot_events SET order_id = :o WHERE id = :i"),
                {"o": open_order["id"], "i": event_id},
            )
            return Response({"order": open_order["number"], "existing": True}, status_code=200)
        location = f"{elevator['building_name'] or ''}{elevator['name']}"
        intake = validate_intake(
            {
                "project": elevator["project_code"],
                "kind": "entrapment",
                "channel": "department",
                "area": "public",
                "reporter_name": f"电梯监测 {elevator['code']}"[:40],
                "reporter_phone": _reporter_phone(elevator, elevator["duty_phone"]),
                "summary": f"{location} 电梯困人（监测报警）"[:100],
                "content": f"event={payload['event']} time={payload['at'].isoformat()}",
            },
            now=now,
        )
        actor = orders_db.ActorInfo(staff_id=None, name=f"电梯监测 {elevator['code']}"[:40], role=None)
        with alerts_db.from_elevator({**elevator, "location": location}):
            reg = await orders_db.register(conn, intake, actor, now)
        await conn.execute(
            text("UPDATE iot_events SET order_id = :o WHERE id = :i"), {"o": reg.id, "i": event_id}
        )
        alert_id = (
            await conn.execute(
                text("SELECT id FROM alerts WHERE order_id = :o AND kind = 'entrapment'"), {"o": reg.id}
            )
        ).scalar()
    await rt.after_commit(reg.id)
    await schedule_after_commit(rt, reg.post_commit)
    return Response({"order": reg.number, "alert_id": alert_id}, status_code=201)


ROUTES: list[Any] = [
    acknowledge_page,
    acknowledge_api,
    list_api,
    alerts_page,
    alerts_list,
    rota_page,
    rota_add,
    rota_change,
    rota_delete,
    oncall_api,
    iot_elevator,
]
