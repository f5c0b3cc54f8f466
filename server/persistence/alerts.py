"""Alerts in the database: open (chain frozen), step, acknowledge, resolve, audit, remind.

1. An alert opens inside the transaction that caused it (registration, breach) with its
   escalation chain frozen into alerts.chain (concrete people from the rota at that moment).
   Step 0 pages at once, in the same transaction, through the outbox; the next step's job is
   returned to the caller, who enqueues it after the commit.
2. Later steps run from an arq job deferred to next_step_at, or from the sweep. Either claims
   the step by a conditional update on (id, next_step_index, step_token); the loser does nothing.
3. Acknowledging or resolving replaces step_token, so every queued step becomes a no-op.
4. Every page, delivery outcome, acknowledgement, reminder and resolution goes into
   alert_events and the order's timeline (order_events).
5. On-screen deliveries: see server/channels (delivered when the recipient's screen fetched
   the alert: `mark_seen`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.channels import SCREEN_GRACE
from server.domain import alert_setup as setup_rules
from server.domain import clock_plan
from server.domain import escalation as esc
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import ClockKind, Role, Status
from server.i18n import gettext, use_locale
from server.persistence import alert_setup, outbox
from server.persistence import breaches as breaches_db
from server.persistence import clocks as clocks_db
from server.persistence import oncall as oncall_db
from server.persistence import orders as orders_db
from server.persistence.orders import ActorInfo, add_event

log = logging.getLogger("baoxiu.alerts")

SYSTEM = ActorInfo(staff_id=None, name="系统", role=None)
ACK_ROLES = frozenset({Role.ENGINEER, Role.SUPERVISOR, Role.MONITOR, Role.DISPATCHER, Role.MANAGER})
RESOLVE_ROLES = frozenset({Role.SUPERVISOR, Role.MANAGER})
KINDS = esc.ALERT_KINDS
STATES = ("triggered", "acknowledged", "resolved")
# The auditor flags a triggered alert whose next step is overdue by more than this.
STUCK_AFTER = timedelta(minutes=1)
TOPIC = "alert"

# The elevator an order being registered is about (desk choice or IoT box), by its code.
_ELEVATOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("elevator", default=None)


@dataclass(frozen=True)
class Scheduled:
    """A step job to enqueue after the transaction that made it due has committed."""

    alert_id: int
    step_index: int
    token: str
    at: datetime


@dataclass(frozen=True)
class AckResult:
    alert: dict[str, Any]
    changed: bool  # False: acknowledged (or resolved) before; nothing written


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _zh(msgid: str, **params: Any) -> str:
    """Notification texts and stored titles are in Chinese: they leave the system (SMS, WeCom)."""
    with use_locale("zh_CN"):
        return gettext(msgid, **params)


@contextlib.contextmanager
def for_elevator(code: Any) -> Iterator[None]:
    """Context: the order registered inside is about this elevator (its code; None: unknown).

    A malformed code raises ValidationErrors (field "elevator"); one unknown in the order's
    project is refused by the registration hook, inside the transaction (nothing is saved).
    """
    token = _ELEVATOR.set(setup_rules.parse_elevator_choice(code))
    try:
        yield
    finally:
        _ELEVATOR.reset(token)


# ---- the frozen chain ----------------------------------------------------------------------


async def freeze(conn: AsyncConnection, project_id: int, kind: str, now: datetime) -> dict[str, Any]:
    """The chain with concrete recipients (who is on call now), as stored in alerts.chain.

    Names are frozen with the ids so the board and /alerts show who was paged without a join.
    """
    config = await alert_setup.chain_for(conn, project_id, kind)
    shift = await oncall_db.shift_at(conn, project_id, now)
    supervisors = [p["id"] for p in await _people(conn, project_id, "supervisor")]
    managers = [p["id"] for p in await _people(conn, project_id, "manager")]
    frozen = esc.freeze_chain(config.steps, shift, supervisors, managers)
    ids = sorted({i for f in frozen for i in f.recipients})
    names = (
        dict(
            (
                await conn.execute(
                    text("SELECT id, display_name FROM staff WHERE id = ANY(:ids)"), {"ids": ids}
                )
            ).all()
        )
        if ids
        else {}
    )
    return {
        "shift_id": shift.id if shift else None,
        "remind_after_minutes": config.remind_after_minutes,
        "steps": esc.frozen_json(frozen, names),
    }


async def _people(conn: AsyncConnection, project_id: int, role: str) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT s.id, s.display_name AS name, s.phone FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                    "WHERE sp.project_id = :p AND s.role = :r AND s.active ORDER BY s.id"
                ),
                {"p": project_id, "r": role},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def _supervisors_of(conn: AsyncConnection, alert: Mapping[str, Any]) -> list[int]:
    """The supervisor(s) the frozen chain names, else the project's supervisors."""
    frozen = [i for s in esc.read_frozen(alert["chain"]) if s.target == "supervisor" for i in s.recipients]
    return frozen or [p["id"] for p in await _people(conn, alert["project_id"], "supervisor")]


async def _phones(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    """Phones are read when paging (a corrected number counts); who is paged was frozen."""
    if not ids:
        return {}
    rows = await conn.execute(
        text("SELECT id, phone FROM staff WHERE id = ANY(:ids) AND phone IS NOT NULL"), {"ids": ids}
    )
    return {i: p for i, p in rows.all() if p}


async def _names(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await conn.execute(text("SELECT id, display_name FROM staff WHERE id = ANY(:ids)"), {"ids": ids})
    return dict(rows.all())


# ---- opening -------------------------------------------------------------------------------


async def _order(conn: AsyncConnection, order_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT o.id, o.number, o.project_id, o.kind, o.urgency, o.status, o.location, o.summary, "
                    "o.assignee_id, o.elevator_id, p.name AS project_name, p.code AS project_code FROM orders o "
                    "JOIN projects p ON p.id = o.project_id WHERE o.id = :o"
                ),
                {"o": order_id},
            )
        )
        .mappings()
        .one()
    )
    return dict(row)


def _title(kind: str, order: Mapping[str, Any], clock: str | None = None) -> str:
    if kind == "entrapment":
        return _zh(N_("Elevator entrapment · %(location)s"), location=order["location"])
    if kind == "emergency":
        return _zh(
            N_("Emergency · %(location)s · %(summary)s"),
            location=order["location"],
            summary=order["summary"][:40],
        )
    from server.labels import label

    with use_locale("zh_CN"):
        clock_label = label(clock) if clock else ""
    return _zh(
        N_("Deadline missed (%(clock)s) · %(location)s"), clock=clock_label, location=order["location"]
    )


def _page_text(alert: Mapping[str, Any], order: Mapping[str, Any] | None) -> str:
    number = order["number"] if order else ""
    if alert["kind"] == "entrapment":
        return _zh(
            N_("[Elevator entrapment] %(number)s %(location)s: acknowledge and go to the site now"),
            number=number,
            location=order["location"] if order else "",
        )
    return _zh(N_("[Alert] %(title)s %(number)s: please acknowledge"), title=alert["title"], number=number)


def _facts(alert: Mapping[str, Any], order: Mapping[str, Any] | None) -> dict[str, Any]:
    """What every delivery of the alert carries: no person's phone, no customer data."""
    return {
        "alert": alert["id"],
        "kind": alert["kind"],
        "title": alert["title"],
        "number": order["number"] if order else None,
        "project": order["project_code"] if order else None,
        "location": order["location"] if order else None,
    }


async def open_alert(
    conn: AsyncConnection,
    order_id: int,
    kind: str,
    now: datetime,
    *,
    clock: str | None = None,
) -> Scheduled | None:
    """Open the alert of this kind for the order unless one is open; page step 0. Return the next step's job."""
    order = await _order(conn, order_id)
    chain = await freeze(conn, order["project_id"], kind, now)
    if clock:
        chain["clock"] = clock
    token = esc.new_step_token()
    title = _title(kind, order, clock)
    row = (
        (
            await conn.execute(
                text(
                    "INSERT INTO alerts (project_id, order_id, kind, state, title, chain, step_token, next_step_index, "
                    "next_step_at, started_at) VALUES (:p, :o, :k, 'triggered', :title, CAST(:chain AS jsonb), :t, 0, :now, :now) "
                    "ON CONFLICT (order_id, kind) WHERE state <> 'resolved' DO NOTHING RETURNING *"
                ),
                {
                    "p": order["project_id"],
                    "o": order_id,
                    "k": kind,
                    "title": title[:200],
                    "chain": _dumps(chain),
                    "t": token,
                    "now": now,
                },
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None  # one is open already: the partial unique index decided
    alert = dict(row)
    alert["chain"] = chain
    await _alert_event(conn, alert["id"], now, None, "started", {"kind": kind, "clock": clock})
    await add_event(
        conn,
        order_id,
        now,
        SYSTEM,
        "alert",
        order["status"],
        order["status"],
        None,
        {"alert_id": alert["id"], "kind": kind, "title": title},
    )
    if kind == "entrapment":
        await _notify_contractors(conn, alert, order, now)
    return await _fire_due(conn, alert, order, now, via="start")


async def _notify_contractors(
    conn: AsyncConnection, alert: Mapping[str, Any], order: Mapping[str, Any], now: datetime
) -> None:
    """The elevator's maintenance contractor hears at once (its webhook, else SMS); with no
    elevator known, every contractor of the project; with none to reach, the timeline says so
    and the supervisor is told to call one."""
    elevator = None
    if order["elevator_id"]:
        elevator = (
            (
                await conn.execute(
                    text("SELECT id, code, contractor_id FROM elevators WHERE id = :e"),
                    {"e": order["elevator_id"]},
                )
            )
            .mappings()
            .first()
        )
    known = [
        setup_rules.Contractor(c["id"], c["name"], c["phone"], c["webhook"])
        for c in await alert_setup.contractors_of(conn, order["project_id"], active_only=True)
    ]
    targets = setup_rules.contractors_to_notify(
        elevator["contractor_id"] if elevator else None, elevator is not None, known
    )
    if not targets:
        await _no_contractor(conn, alert, order, elevator, now)
        return
    msg = _zh(
        N_("Elevator entrapment at %(project)s %(location)s (order %(number)s): send your rescue team now"),
        project=order["project_name"],
        location=order["location"],
        number=order["number"],
    )
    gateway = await alert_setup.sms_gateway_id(conn, order["project_id"])
    channels = []
    for c in targets:
        channel = c.channel
        assert channel is not None
        payload: dict[str, Any] = {
            **_facts(alert, order),
            "text": msg,
            "step": 0,
            "round": 1,
            "purpose": "contractor",
            "recipient": c.name,
        }
        if channel == "webhook":
            payload["contractor_id"] = c.id
        else:
            payload["phone"] = c.phone
            if gateway is not None:
                payload["channel_id"] = gateway
        await outbox.enqueue(
            conn,
            dedupe_key=esc.dedupe_key(alert["id"], 0, f"contractor-{c.id}", channel),
            topic=TOPIC,
            channel=channel,
            project_id=order["project_id"],
            order_id=order["id"],
            alert_id=alert["id"],
            payload=payload,
            now=now,
        )
        channels.append(channel)
    await add_event(
        conn,
        order["id"],
        now,
        SYSTEM,
        "page",
        order["status"],
        order["status"],
        None,
        {
            "alert_id": alert["id"],
            "step": 0,
            "recipients": [c.name for c in targets],
            "channels": sorted(set(channels)),
            "contractor": True,
            "elevator": elevator["code"] if elevator else None,
        },
    )


async def _no_contractor(
    conn: AsyncConnection,
    alert: Mapping[str, Any],
    order: Mapping[str, Any],
    elevator: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    """Nobody to notify: never silent. The timeline records it; the supervisors are told."""
    details = {"alert_id": alert["id"], "elevator": elevator["code"] if elevator else None}
    log.warning("alert %s: no elevator contractor to notify (elevator %s)", alert["id"], details["elevator"])
    await _alert_event(conn, alert["id"], now, None, "no_contractor", details)
    await add_event(
        conn, order["id"], now, SYSTEM, "no_contractor", order["status"], order["status"], None, details
    )
    msg = _zh(
        N_(
            "%(number)s %(location)s: no elevator contractor could be notified; call the maintenance company now"
        ),
        number=order["number"],
        location=order["location"],
    )
    people = await _supervisors_of(conn, alert)
    await _queue_personal(
        conn,
        alert,
        order,
        people,
        {"text": msg, "step": 0, "round": 1, "purpose": "no_contractor"},
        "nc",
        now,
    )


async def _queue_personal(
    conn: AsyncConnection,
    alert: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    people: list[int],
    payload: dict[str, Any],
    key: str | int,
    now: datetime,
) -> set[str]:
    """Screen and (with a phone) SMS to each person; return the channels used.

    SMS go through the project's SMS gateway when it has one (server/channels)."""
    phones = await _phones(conn, people)
    names = await _names(conn, people)
    gateway = await alert_setup.sms_gateway_id(conn, alert["project_id"])
    via = {"channel_id": gateway} if gateway is not None else {}
    used: set[str] = set()
    for staff_id in people:
        targets: list[tuple[str, dict[str, Any], datetime]] = [("screen", {}, now + SCREEN_GRACE)]
        if phones.get(staff_id):
            targets.append(("sms", {"phone": phones[staff_id], **via}, now))
        for channel, extra, available in targets:
            used.add(channel)
            await outbox.enqueue(
                conn,
                dedupe_key=esc.dedupe_key(alert["id"], key, staff_id, channel),
                topic=TOPIC,
                channel=channel,
                project_id=alert["project_id"],
                order_id=alert["order_id"],
                recipient_id=staff_id,
                alert_id=alert["id"],
                payload={**_facts(alert, order), **payload, **extra, "recipient": names.get(staff_id, "")},
                now=now,
                available_at=available,
            )
    return used


# ---- stepping ------------------------------------------------------------------------------


async def _page(
    conn: AsyncConnection,
    alert: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    index: int,
    now: datetime,
    via: str,
) -> None:
    """Queue the deliveries of one step: screen and SMS to each person, then the group channels."""
    chain = esc.read_frozen(alert["chain"])
    step = esc.step_of(chain, index)
    pos = esc.position(len(chain), index)
    base = {"text": _page_text(alert, order), "step": index, "round": pos.round, "purpose": "step"}
    channels_used = await _queue_personal(conn, alert, order, list(step.recipients), base, index, now)
    for group in await alert_setup.group_channels(conn, alert["project_id"]):
        channels_used.add(group["channel"])
        await outbox.enqueue(
            conn,
            dedupe_key=esc.dedupe_key(alert["id"], index, f"group{group['id']}", group["channel"]),
            topic=TOPIC,
            channel=group["channel"],
            project_id=alert["project_id"],
            order_id=alert["order_id"],
            alert_id=alert["id"],
            payload={
                **_facts(alert, order),
                **base,
                "channel_id": group["id"],
                "recipient": group["name"] or group["channel"],
                "paged": list(step.names),
            },
            now=now,
        )
    details: dict[str, Any] = {
        "step": index,
        "step_in_chain": pos.step,
        "round": pos.round,
        "target": step.target,
        "recipients": list(step.names),
        "channels": sorted(channels_used),
        "via": via,
    }
    if not step.recipients:
        details["nobody"] = True  # a rota gap: flagged; the next step still follows on time
        log.warning("alert %s step %s (%s): nobody to page", alert["id"], index, step.target)
    await _alert_event(conn, alert["id"], now, None, "step", details)
    if order is not None:
        await add_event(
            conn,
            order["id"],
            now,
            SYSTEM,
            "page",
            order["status"],
            order["status"],
            None,
            {"alert_id": alert["id"], **details},
        )


async def _fire_due(
    conn: AsyncConnection, alert: dict[str, Any], order: Mapping[str, Any] | None, now: datetime, via: str
) -> Scheduled | None:
    """Claim every step due now (conditional update on index and token), page them, return the next job."""
    frozen = esc.read_frozen(alert["chain"])
    if not frozen:
        return None
    start = alert["next_step_index"]
    due = esc.due_steps(frozen, alert["started_at"], start - 1, now)
    if not due:
        return None
    nxt = due[-1] + 1
    next_at = esc.step_at(frozen, alert["started_at"], nxt)
    token = esc.new_step_token()
    claimed = (
        await conn.execute(
            text(
                "UPDATE alerts SET next_step_index = :nxt, next_step_at = :at, step_token = :new, stuck_since = NULL, "
                "version = version + 1 WHERE id = :id AND state = 'triggered' AND next_step_index = :i "
                "AND step_token = :t RETURNING id"
            ),
            {
                "nxt": nxt,
                "at": next_at,
                "new": token,
                "id": alert["id"],
                "i": start,
                "t": alert["step_token"],
            },
        )
    ).first()
    if claimed is None:
        return None  # acknowledged, resolved or stepped by another worker meanwhile
    for index in due[-len(frozen) :]:  # after a long outage, one round is enough: no SMS storm
        await _page(conn, alert, order, index, now, via)
    return Scheduled(alert["id"], nxt, token, next_at)


async def run_step(
    engine: AsyncEngine, alert_id: int, step_index: int, token: str, now: datetime, via: str = "job"
) -> Scheduled | None:
    """Run the step this job was scheduled for, if it still may; return the next step's job."""
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT * FROM alerts WHERE id = :id AND state = 'triggered' AND next_step_index = :i "
                        "AND step_token = :t"
                    ),
                    {"id": alert_id, "i": step_index, "t": token},
                )
            )
            .mappings()
            .first()
        )
        if row is None or not esc.may_step_run(esc.AlertState(row["state"]), row["step_token"], token):
            return None  # the token moved on: this job is a no-op
        alert = dict(row)
        alert["chain"] = _json(alert["chain"])
        order = await _order(conn, alert["order_id"]) if alert["order_id"] else None
        return await _fire_due(conn, alert, order, now, via)


async def sweep(engine: AsyncEngine, now: datetime, limit: int = 100) -> list[Scheduled]:
    """The safety net: run every overdue step (each claimed by the same conditional update)."""
    async with engine.connect() as conn:
        due = (
            await conn.execute(
                text(
                    "SELECT id, next_step_index, step_token FROM alerts WHERE state = 'triggered' "
                    "AND next_step_at <= :now ORDER BY next_step_at LIMIT :lim"
                ),
                {"now": now, "lim": limit},
            )
        ).all()
    out: list[Scheduled] = []
    for alert_id, index, token in due:
        try:
            nxt = await run_step(engine, alert_id, index, token, now, via="sweep")
        except Exception:  # one bad alert must not stall the others; the auditor flags it
            log.exception("escalation step of alert %s failed", alert_id)
            continue
        if nxt is not None:
            out.append(nxt)
    return out


# ---- acknowledge and resolve ---------------------------------------------------------------


async def _alert_event(
    conn: AsyncConnection,
    alert_id: int,
    now: datetime,
    actor_id: int | None,
    action: str,
    details: Mapping[str, Any],
) -> None:
    await conn.execute(
        text(
            "INSERT INTO alert_events (alert_id, at, actor_id, action, details) "
            "VALUES (:a, :at, :actor, :action, CAST(:d AS jsonb))"
        ),
        {"a": alert_id, "at": now, "actor": actor_id, "action": action, "d": _dumps(dict(details))},
    )


async def get(conn: AsyncConnection, alert_id: int) -> dict[str, Any] | None:
    row = (
        (await conn.execute(text("SELECT * FROM alerts WHERE id = :id"), {"id": alert_id})).mappings().first()
    )
    if row is None:
        return None
    out = dict(row)
    out["chain"] = _json(out["chain"])
    return out


async def _visible(
    conn: AsyncConnection, alert_id: int, actor: ActorInfo, roles: frozenset[Role]
) -> dict[str, Any]:
    current = await get(conn, alert_id)
    if current is None or (actor.staff_id is not None and current["project_id"] not in actor.project_ids):
        raise DomainError("not_found", N_("No such alert"))
    if actor.role not in roles:
        raise DomainError("forbidden", N_("You are not allowed to do this"))
    if current["order_id"]:
        # Lock order before alert, as a lifecycle step (cancel, arrive → resolve) does: no deadlock.
        await conn.execute(
            text("SELECT 1 FROM orders WHERE id = :o FOR NO KEY UPDATE"), {"o": current["order_id"]}
        )
    return current


async def acknowledge(conn: AsyncConnection, alert_id: int, actor: ActorInfo, now: datetime) -> AckResult:
    """Acknowledge a triggered alert (idempotent); raise DomainError when unknown, forbidden or over."""
    current = await _visible(conn, alert_id, actor, ACK_ROLES)
    remind = esc.remind_at(now, esc.frozen_remind_after(current["chain"]))
    row = (
        (
            await conn.execute(
                text(
                    "UPDATE alerts SET state = 'acknowledged', acknowledged_at = :now, acknowledged_by = :s, "
                    "step_token = :t, next_step_at = NULL, stuck_since = NULL, remind_at = :remind, "
                    "version = version + 1 WHERE id = :id AND state = 'triggered' RETURNING *"
                ),
                {
                    "now": now,
                    "s": actor.staff_id,
                    "t": esc.new_step_token(),
                    "id": alert_id,
                    "remind": remind,
                },
            )
        )
        .mappings()
        .first()
    )
    if row is None:  # acknowledged or resolved before: the first answer stands
        fresh = await get(conn, alert_id)
        assert fresh is not None
        return AckResult(fresh, False)
    alert = dict(row)
    alert["chain"] = _json(alert["chain"])
    response_s = int((now - alert["started_at"]).total_seconds())
    details = {"response_seconds": response_s, "by": actor.name, "step": alert["next_step_index"]}
    await _alert_event(conn, alert_id, now, actor.staff_id, "acknowledged", details)
    if alert["order_id"]:
        order = await _order(conn, alert["order_id"])
        await add_event(
            conn,
            order["id"],
            now,
            actor,
            "acknowledge",
            order["status"],
            order["status"],
            None,
            {"alert_id": alert_id, "kind": alert["kind"], **details},
        )
        # The order's 1-minute acknowledgement clock is met by this tap. Who goes is still the
        # dispatcher's call (the order stays unassigned unless someone assigns or grabs it).
        ctx = await orders_db.clock_context(conn, order["id"])
        await clocks_db.apply_plan(conn, ctx, [clock_plan.Stop(ClockKind.ACK)], now)
        await conn.execute(
            text("UPDATE orders SET updated_at = :now WHERE id = :o"), {"now": now, "o": order["id"]}
        )
    return AckResult(alert, True)


async def resolve(
    conn: AsyncConnection,
    alert_id: int,
    actor: ActorInfo,
    now: datetime,
    reason: str,
    *,
    by_hand: bool = False,
) -> bool:
    """Resolve an open alert; False when it was resolved already.

    `by_hand`: a supervisor or manager ends it with a reason (checked here); otherwise the
    order moving on did (the caller holds the order's lock already).
    """
    if by_hand:
        reason = esc.validate_resolve_reason(reason)
        await _visible(conn, alert_id, actor, RESOLVE_ROLES)
    row = (
        (
            await conn.execute(
                text(
                    "UPDATE alerts SET state = 'resolved', resolved_at = :now, resolved_by = :s, step_token = :t, "
                    "next_step_at = NULL, stuck_since = NULL, version = version + 1 "
                    "WHERE id = :id AND state <> 'resolved' RETURNING id, order_id, kind, started_at"
                ),
                {"now": now, "s": actor.staff_id, "t": esc.new_step_token(), "id": alert_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return False
    details = {
        "reason": reason,
        "seconds_open": int((now - row["started_at"]).total_seconds()),
        "by_hand": by_hand,
    }
    await _alert_event(conn, alert_id, now, actor.staff_id, "resolved", details)
    if row["order_id"]:
        order = await _order(conn, row["order_id"])
        await add_event(
            conn,
            order["id"],
            now,
            actor,
            "resolve",
            order["status"],
            order["status"],
            reason if by_hand else None,
            {"alert_id": alert_id, "kind": row["kind"], **details},
        )
        await conn.execute(
            text("UPDATE orders SET updated_at = :now WHERE id = :o"), {"now": now, "o": order["id"]}
        )
    return True


# ---- hooks ---------------------------------------------------------------------------------


async def on_registered(conn: AsyncConnection, reg: orders_db.Registered, now: datetime) -> None:
    """Link the elevator named (desk or IoT); entrapment and emergency orders open their alert
    at once (REGISTRATION_HOOKS)."""
    code = _ELEVATOR.get()
    if code is not None:
        elevator = await alert_setup.elevator_by_code(conn, code)
        if elevator is None or elevator["project_id"] != reg.project_id:
            raise ValidationErrors({"elevator": (N_("Unknown elevator %(code)s"), {"code": code})})
        where = f"{elevator['building_name'] or ''}{elevator['name']}"
        # The elevator says where better than the generic "电梯" of an entrapment without a place.
        await conn.execute(
            text(
                "UPDATE orders SET elevator_id = :e, location = CASE WHEN location IN ('电梯', '—') "
                "THEN :loc ELSE location END WHERE id = :o"
            ),
            {"e": elevator["id"], "loc": where[:100], "o": reg.id},
        )
    urgency = (await conn.execute(text("SELECT urgency FROM orders WHERE id = :o"), {"o": reg.id})).scalar()
    if reg.kind == "entrapment":
        kind = "entrapment"
    elif urgency == "emergency":
        kind = "emergency"
    else:
        return
    nxt = await open_alert(conn, reg.id, kind, now)
    if nxt is not None:
        reg.post_commit.append(nxt)


async def on_transition(
    conn: AsyncConnection, order: Mapping[str, Any], transition: Any, actor: ActorInfo, now: datetime
) -> None:
    """The order reaching the site (or the end) resolves the alerts it ends (TRANSITION_HOOKS)."""
    to = Status(transition.to_status).value
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, kind, chain->>'clock' AS clock FROM alerts WHERE order_id = :o AND state <> 'resolved'"
                ),
                {"o": order["id"]},
            )
        )
        .mappings()
        .all()
    )
    for r in rows:
        if esc.resolved_by(r["kind"], r["clock"], to):
            await resolve(conn, r["id"], actor, now, reason=f"order {to}")


async def on_breach(
    conn: AsyncConnection, c: Mapping[str, Any], order: Mapping[str, Any], now: datetime
) -> Scheduled | None:
    """A missed deadline the policy names opens a breach alert (BREACH_HOOKS); return its next
    step's job for the caller to enqueue after commit.

    Not while an alert of the order is still escalating: that one already pages people.
    """
    info = (
        (
            await conn.execute(
                text(
                    "SELECT urgency, kind, EXISTS (SELECT 1 FROM alerts WHERE order_id = :o AND state = 'triggered') "
                    "AS escalating FROM orders WHERE id = :o"
                ),
                {"o": order["id"]},
            )
        )
        .mappings()
        .one()
    )
    clock = str(c["kind"])
    if info["escalating"] or not esc.BREACH_ALERTS.opens_alert(clock, info["kind"], info["urgency"]):
        return None
    return await open_alert(conn, order["id"], "breach", now, clock=clock)


def _register_hooks() -> None:
    for hooks, fn in (
        (orders_db.REGISTRATION_HOOKS, on_registered),
        (orders_db.TRANSITION_HOOKS, on_transition),
        (breaches_db.BREACH_HOOKS, on_breach),
    ):
        if fn not in hooks:
            hooks.append(fn)


_register_hooks()


# ---- auditor, reminders, delivery log ------------------------------------------------------


async def audit(engine: AsyncEngine, now: datetime) -> list[int]:
    """Flag triggered alerts whose next step is overdue by more than STUCK_AFTER; return their ids."""
    async with engine.begin() as conn:
        ids = [
            r[0]
            for r in await conn.execute(
                text(
                    "UPDATE alerts SET stuck_since = :now, version = version + 1 WHERE state = 'triggered' "
                    "AND next_step_at < :limit AND stuck_since IS NULL RETURNING id"
                ),
                {"now": now, "limit": now - STUCK_AFTER},
            )
        ]
        for alert_id in ids:
            await _alert_event(conn, alert_id, now, None, "stuck", {})
    for alert_id in ids:
        log.warning("alert %s: escalation step overdue by more than %s", alert_id, STUCK_AFTER)
    return ids


async def remind(engine: AsyncEngine, now: datetime) -> list[int]:
    """Acknowledged but not resolved by remind_at: remind the acknowledger (SMS and their
    screen) and the supervisor, once."""
    sent: list[int] = []
    async with engine.begin() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT * FROM alerts WHERE state = 'acknowledged' AND reminded_at IS NULL "
                        "AND remind_at <= :now ORDER BY remind_at LIMIT 100 FOR UPDATE SKIP LOCKED"
                    ),
                    {"now": now},
                )
            )
            .mappings()
            .all()
        )
        for r in rows:
            alert = dict(r)
            alert["chain"] = _json(alert["chain"])
            await conn.execute(
                text("UPDATE alerts SET reminded_at = :now, version = version + 1 WHERE id = :id"),
                {"now": now, "id": alert["id"]},
            )
            order = await _order(conn, alert["order_id"]) if alert["order_id"] else None
            minutes = int((now - alert["acknowledged_at"]).total_seconds() // 60)
            msg = _zh(
                N_("%(number)s: acknowledged %(minutes)s min ago and still not resolved"),
                number=order["number"] if order else alert["title"],
                minutes=minutes,
            )
            people = [alert["acknowledged_by"]] if alert["acknowledged_by"] else []
            people += [s for s in await _supervisors_of(conn, alert) if s not in people]
            payload = {"text": msg, "step": None, "round": None, "purpose": "reminder"}
            channels = await _queue_personal(conn, alert, order, people, payload, "reminder", now)
            names = await _names(conn, people)
            details = {
                "minutes": minutes,
                "recipients": [names.get(p, "") for p in people],
                "channels": sorted(channels),
            }
            await _alert_event(conn, alert["id"], now, None, "reminder", details)
            if order:
                await add_event(
                    conn,
                    order["id"],
                    now,
                    SYSTEM,
                    "reminder",
                    order["status"],
                    order["status"],
                    None,
                    {"alert_id": alert["id"], **details},
                )
            sent.append(alert["id"])
    return sent


async def log_deliveries(engine: AsyncEngine, now: datetime, limit: int = 200) -> int:
    """Write each finished alert delivery (sent or failed) into the order's timeline, exactly once."""
    async with engine.begin() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "UPDATE outbox SET logged_at = :now WHERE id IN (SELECT id FROM outbox WHERE alert_id IS NOT NULL "
                        "AND state <> 'pending' AND logged_at IS NULL ORDER BY id LIMIT :lim FOR UPDATE SKIP LOCKED) "
                        "RETURNING id, order_id, alert_id, channel, state, attempts, last_error, payload"
                    ),
                    {"now": now, "lim": limit},
                )
            )
            .mappings()
            .all()
        )
        for r in rows:
            if not r["order_id"]:
                continue
            payload = _json(r["payload"]) or {}
            action = "delivered" if r["state"] == "sent" else "delivery_failed"
            status = (
                await conn.execute(text("SELECT status FROM orders WHERE id = :o"), {"o": r["order_id"]})
            ).scalar()
            await add_event(
                conn,
                r["order_id"],
                now,
                SYSTEM,
                action,
                status,
                status,
                r["last_error"] if r["state"] == "failed" else None,
                {
                    "alert_id": r["alert_id"],
                    "outbox_id": r["id"],
                    "channel": r["channel"],
                    "recipient": payload.get("recipient"),
                    "step": payload.get("step"),
                    "purpose": payload.get("purpose"),
                    "attempts": r["attempts"],
                },
            )
    return len(rows)


# ---- screens -------------------------------------------------------------------------------


async def mark_seen(conn: AsyncConnection, staff_id: int | None, alert_ids: list[int], now: datetime) -> int:
    """This person's screen fetched these alerts: their screen deliveries are delivered now.

    Only rows the worker has not picked up (attempts = 0): one past SCREEN_GRACE is the worker's
    to record as failed, so the two never both write a row.
    """
    if staff_id is None or not alert_ids:
        return 0
    rows = await conn.execute(
        text(
            "UPDATE outbox SET state = 'sent', sent_at = :now "
            "WHERE recipient_id = :s AND channel = 'screen' AND alert_id = ANY(:ids) AND state = 'pending' "
            "AND attempts = 0 RETURNING id"
        ),
        {"now": now, "s": staff_id, "ids": alert_ids},
    )
    return len(rows.all())


async def screen_alerts(
    engine: AsyncEngine, staff_id: int | None, project_ids: frozenset[int] | list[int], now: datetime
) -> list[dict[str, Any]]:
    """The alerts a person's tablet shows, oldest first: every triggered alert of their projects
    and the acknowledged ones they are being reminded of. Fetching marks their screen
    deliveries of these alerts delivered (server/channels).

    Each: id, kind, title, number, location, state, started_at, paged (names so far),
    paged_me, reminder, acknowledged_by_name, position (StepPosition of the latest step or None).
    """
    async with engine.begin() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT a.id, a.kind, a.title, a.state, a.chain, a.next_step_index, a.started_at, "
                        "a.acknowledged_at, ab.display_name AS acknowledged_by_name, o.number, o.location, "
                        "EXISTS (SELECT 1 FROM outbox x WHERE x.alert_id = a.id AND x.recipient_id = :me "
                        "  AND x.payload->>'purpose' = 'reminder') AS reminder "
                        "FROM alerts a LEFT JOIN orders o ON o.id = a.order_id LEFT JOIN staff ab ON ab.id = a.acknowledged_by "
                        "WHERE a.project_id = ANY(:pids) AND (a.state = 'triggered' OR (a.state = 'acknowledged' "
                        "  AND a.reminded_at IS NOT NULL AND EXISTS (SELECT 1 FROM outbox x WHERE x.alert_id = a.id "
                        "  AND x.recipient_id = :me AND x.payload->>'purpose' = 'reminder'))) "
                        "ORDER BY a.started_at, a.id LIMIT 50"
                    ),
                    {"me": staff_id, "pids": list(project_ids)},
                )
            )
            .mappings()
            .all()
        )
        out = []
        for r in rows:
            a = dict(r)
            chain = esc.read_frozen(_json(a.pop("chain")))
            fired = chain[: min(a["next_step_index"], len(chain))]
            a["paged"] = esc.paged_names(chain, a["next_step_index"])
            a["paged_me"] = any(staff_id in s.recipients for s in fired)
            a["position"] = esc.last_fired(len(chain), a["next_step_index"])
            out.append(a)
        await mark_seen(conn, staff_id, [a["id"] for a in out], now)
    return out


# ---- demo ----------------------------------------------------------------------------------


async def seed_demo_entrapment(conn: AsyncConnection, project_id: int) -> None:
    """An entrapment registered at the desk 40 s ago on elevator DEMO-E02: its alert is on the
    board, the on-call engineer paged, the contractor notified; ignored, it escalates."""
    from server import clock
    from server.domain.intake import validate_intake
    from server.persistence import staff as staff_db

    at = clock.now() - timedelta(seconds=40)
    code = (
        await conn.execute(text("SELECT code FROM projects WHERE id = :p"), {"p": project_id})
    ).scalar_one()
    kefu = await staff_db.by_username(conn, "kefu")
    assert kefu is not None
    actor = ActorInfo(
        staff_id=kefu.id, name=kefu.display_name, role=Role(kefu.role), project_ids=kefu.project_ids
    )
    intake = validate_intake(
        {
            "project": code,
            "kind": "entrapment",
            "area": "public",
            "reporter_name": "王先生",
            "reporter_phone": "13800001111",
            "summary": "3栋2号梯困人，一名老人被困",
            "channel": "phone",
        },
        now=at,
    )
    with for_elevator("DEMO-E02"):
        await orders_db.register(conn, intake, actor, at)


# ---- reads ---------------------------------------------------------------------------------


async def list_alerts(
    conn: AsyncConnection,
    project_ids: frozenset[int] | list[int],
    *,
    state: str | None = None,
    open_only: bool = False,
    alert_id: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Alerts with their order, steps (frozen chain with fired flags) and deliveries, newest first."""
    where = ["a.project_id = ANY(:pids)"]
    params: dict[str, Any] = {"pids": list(project_ids), "lim": limit}
    if state:
        where.append("a.state = :state")
        params["state"] = state
    if open_only:
        where.append("a.state <> 'resolved'")
    if alert_id is not None:
        where.append("a.id = :aid")
        params["aid"] = alert_id
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT a.*, o.number, o.location, o.status AS order_status, p.code AS project_code, p.tz, "
                    "ab.display_name AS acknowledged_by_name, rb.display_name AS resolved_by_name "
                    "FROM alerts a JOIN projects p ON p.id = a.project_id LEFT JOIN orders o ON o.id = a.order_id "
                    "LEFT JOIN staff ab ON ab.id = a.acknowledged_by LEFT JOIN staff rb ON rb.id = a.resolved_by "
                    f"WHERE {' AND '.join(where)} ORDER BY a.state = 'resolved', a.started_at DESC, a.id DESC LIMIT :lim"
                ),
                params,
            )
        )
        .mappings()
        .all()
    )
    alerts = [dict(r) for r in rows]
    if not alerts:
        return []
    ids = [a["id"] for a in alerts]
    deliveries = (
        (
            await conn.execute(
                text(
                    "SELECT x.id, x.alert_id, x.channel, x.state, x.attempts, x.last_error, x.created_at, x.sent_at, "
                    "x.available_at, CASE WHEN jsonb_typeof(x.payload->'step') = 'number' "
                    "THEN (x.payload->>'step')::int END AS step, x.payload->>'purpose' AS purpose, "
                    "coalesce(s.display_name, x.payload->>'recipient', '') AS recipient "
                    "FROM outbox x LEFT JOIN staff s ON s.id = x.recipient_id WHERE x.alert_id = ANY(:ids) ORDER BY x.id"
                ),
                {"ids": ids},
            )
        )
        .mappings()
        .all()
    )
    by_alert: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for d in deliveries:
        by_alert[d["alert_id"]].append(dict(d))
    for a in alerts:
        a["chain"] = _json(a["chain"])
        frozen = esc.read_frozen(a["chain"])
        a["steps"] = steps_view(a, frozen)
        a["position"] = esc.last_fired(len(frozen), a["next_step_index"])
        a["deliveries"] = by_alert[a["id"]]
        a["failed"] = sum(1 for d in a["deliveries"] if d["state"] == "failed")
    return alerts


def steps_view(alert: Mapping[str, Any], frozen: tuple[esc.FrozenStep, ...]) -> list[dict[str, Any]]:
    """The frozen steps: when each first fires, whether (and how often, the chain repeats) it fired."""
    fired_total = alert["next_step_index"]
    n = len(frozen)
    return [
        {
            "index": i,
            "target": step.target,
            "wait_after_minutes": step.wait_after_minutes,
            "at": esc.step_at(frozen, alert["started_at"], i),
            "times_fired": (fired_total - i + n - 1) // n if fired_total > i else 0,
            "fired": fired_total > i,
            "recipients": [
                {"id": i_, "name": nm} for i_, nm in zip(step.recipients, step.names, strict=True)
            ],
        }
        for i, step in enumerate(frozen)
    ]


def alert_json(a: Mapping[str, Any]) -> dict[str, Any]:
    """The API's alert. Steps and deliveries name a step by its integer index: `steps[].index`
    within the chain (0-based), `deliveries[].step` the absolute step (it grows past the chain's
    length as the chain repeats; `round` counts repeats from 1) or null for a delivery that is
    no step's (`purpose` "reminder", "no_contractor"); `position` is the latest step paged."""
    pos = a["position"]
    return {
        "id": a["id"],
        "project": a["project_code"],
        "order_number": a["number"],
        "location": a["location"],
        "kind": a["kind"],
        "state": a["state"],
        "title": a["title"],
        "started_at": a["started_at"],
        "acknowledged_at": a["acknowledged_at"],
        "acknowledged_by": a["acknowledged_by_name"],
        "resolved_at": a["resolved_at"],
        "resolved_by": a["resolved_by_name"],
        "next_step_index": a["next_step_index"],
        "next_step_at": a["next_step_at"],
        "stuck_since": a["stuck_since"],
        "position": {"index": pos.index, "step": pos.step, "round": pos.round, "steps": pos.steps}
        if pos
        else None,
        "steps": [{**s, "recipients": [r["name"] for r in s["recipients"]]} for s in a["steps"]],
        "deliveries": [
            {
                "id": d["id"],
                "step": d["step"],
                "round": d["step"] // len(a["steps"]) + 1 if d["step"] is not None and a["steps"] else None,
                "purpose": d["purpose"],
                "channel": d["channel"],
                "recipient": d["recipient"],
                "state": d["state"],
                "attempts": d["attempts"],
                "error": d["last_error"] if d["state"] != "sent" else None,
                "queued_at": d["created_at"],
                "sent_at": d["sent_at"],
            }
            for d in a["deliveries"]
        ],
    }
