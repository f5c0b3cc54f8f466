"""The elevator monitoring boxes' webhook: POST /api/v1/iot/elevator.

A box sends {"elevator": code, "event": name, "time": ISO 8601 with zone} with the shared
secret in X-IoT-Secret. "entrapment" opens the order and its alert (the registration hook
pages the on-call engineer and notifies the elevator's contractor); other events are recorded.

Answers: 201 order opened; 200 a repeat (same elevator, event and time) or an entrapment of an
elevator whose entrapment order is still open (joins it); 202 another event recorded;
401 wrong secret; 404 unknown elevator (logged); 422 naming the fields at fault, including a
time too far in the future or older than MAX_AGE (a stale replay is not a new entrapment).
Events of one elevator are handled one at a time (its row is locked), so two entrapment
events arriving together open one order.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, Response, post
from sqlalchemy import text

from server import clock
from server.domain.intake import normalize_phone, parse_datetime, validate_intake
from server.i18n import gettext as _
from server.persistence import alert_setup
from server.persistence import alerts as alerts_db
from server.persistence import orders as orders_db
from server.runtime import Runtime
from server.security import same

log = logging.getLogger("baoxiu.alerts.web")

EVENT_RE = re.compile(r"^[a-z][a-z_]{0,39}$")
MAX_FUTURE = timedelta(minutes=10)  # a box's clock may run a little fast; more is a bad payload
MAX_AGE = timedelta(minutes=30)  # older: a replay or a box flushing a stale buffer


def _iot_error(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status_code=status)


def parse_event(raw: bytes, now: datetime) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The payload, or None and {field: message} naming each field at fault."""
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
    elif at < now - MAX_AGE:
        errors["time"] = _(
            "The event is older than %(minutes)s minutes: not accepted as new",
            minutes=int(MAX_AGE.total_seconds() // 60),
        )
    if errors:
        return None, errors
    return {"elevator": code.strip(), "event": event, "at": at}, {}  # type: ignore[union-attr]


def _reporter_phone(elevator: dict[str, Any]) -> str:
    for candidate in (elevator.get("contractor_phone"), elevator.get("duty_phone")):
        phone = normalize_phone(candidate or "")
        if phone:
            return phone
    return "00000000"  # no phone anywhere: intake needs one; nobody calls a monitoring box back


async def _phones(conn: Any, elevator: dict[str, Any]) -> dict[str, Any]:
    """The phones the order's reporter line falls back on: the contractor's, the duty desk's."""
    row = (
        (
            await conn.execute(
                text(
                    "SELECT (SELECT phone FROM elevator_contractors WHERE id = :c) AS contractor_phone, "
                    "(SELECT s.phone FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    " WHERE sp.project_id = :p AND s.active AND s.phone IS NOT NULL "
                    " ORDER BY array_position(ARRAY['monitor','supervisor','dispatcher'], s.role) NULLS LAST, s.id "
                    " LIMIT 1) AS duty_phone"
                ),
                {"c": elevator["contractor_id"], "p": elevator["project_id"]},
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


@post("/api/v1/iot/elevator", status_code=200, tags=["iot"])
async def iot_elevator(request: Request[Any, Any, Any]) -> Response[Any]:
    """An elevator monitoring box reports an event; "entrapment" opens the order and its alert."""
    from server.web.alerts import schedule_after_commit

    rt: Runtime = request.app.state.runtime
    if not same(request.headers.get("x-iot-secret"), rt.settings.iot_secret):
        log.warning(
            "iot webhook: wrong or missing secret from %s", request.client.host if request.client else "?"
        )
        return _iot_error(401, "unauthorized", _("Wrong or missing X-IoT-Secret"))
    now = clock.now()
    payload, errors = parse_event(await request.body(), now)
    if payload is None:
        if "time" in errors and len(errors) == 1:
            log.warning("iot webhook: event refused for its time: %s", errors["time"])
        return _iot_error(422, "invalid", _("Invalid input"), errors)
    async with rt.engine.begin() as conn:
        elevator = await alert_setup.elevator_by_code(conn, payload["elevator"], lock=True)
        if elevator is None:
            log.warning("iot webhook: unknown elevator %r (event %s)", payload["elevator"], payload["event"])
            return _iot_error(404, "not_found", _("Unknown elevator %(code)s", code=payload["elevator"]))
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
                "reporter_phone": _reporter_phone(await _phones(conn, elevator)),
                "summary": f"{location} 电梯困人（监测报警）"[:100],
                "content": f"event={payload['event']} time={payload['at'].isoformat()}",
            },
            now=now,
        )
        actor = orders_db.ActorInfo(staff_id=None, name=f"电梯监测 {elevator['code']}"[:40], role=None)
        with alerts_db.for_elevator(elevator["code"]):
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


ROUTES: list[Any] = [iot_elevator]
