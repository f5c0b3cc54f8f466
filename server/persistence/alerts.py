"""Alerts in the database: open (chain frozen), step, acknowledge, resolve, audit, remind.

1. An alert opens inside the transaction that caused it (registration, breach) with its
   escalation chain frozen into alerts.chain (concrete people from the rota at that moment).
   Step 0 pages at once, in the same transaction, through the outbox.
2. Later steps run from an arq job deferred to next_step_at, or from the sweep. Either claims
   the step by a conditional update on (id, next_step_index, step_token); the loser does nothing.
3. Acknowledging or resolving replaces step_token, so every queued step becomes a no-op.
4. Every page, delivery outcome, acknowledgement and resolution goes into alert_events and the
   order's timeline (order_events).
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

from server.domain import clock_plan
from server.domain import escalation as esc
from server.domain.messages import N_, DomainError
from server.domain.vocab import ClockKind, Role, Status
from server.i18n import gettext, use_locale
from server.persistence import breaches as breaches_db
from server.persistence import clocks as clocks_db
from server.persistence import oncall as oncall_db
from server.persistence import orders as orders_db
from server.persistence import outbox
from server.persistence.orders import ActorInfo, add_event

log = logging.getLogger("baoxiu.alerts")

SYSTEM = ActorInfo(staff_id=None, name="系统", role=None)
ACK_ROLES = frozenset({Role.ENGINEER, Role.SUPERVISOR, Role.MONITOR, Role.DISPATCHER, Role.MANAGER})
KINDS = ("entrapment", "emergency", "breach")
STATES = ("triggered", "acknowledged", "resolved")
STUCK_AFTER = timedelta(minutes=1)
REMIND_AFTER_MINUTES = 30  # acknowledged but not resolved: remind once  # a step overdue by more than this is flagged by the auditor
TOPIC = "alert"

# Breaches of these clocks on emergency (or entrapment) orders open a "breach" alert.
BREACH_ALERT_CLOCKS = frozenset({ClockKind.ACK, ClockKind.ARRIVAL, ClockKind.COMPLETION})
# The order step that ends the incident an alert is about.
RESOLVED_BY_ARRIVAL = frozenset(
    {Status.ON_SITE, Status.DONE, Status.CALLBACK, Status.CLOSED, Status.CANCELLED}
)
RESOLVED_BY_FINISH = frozenset({Status.DONE, Status.CALLBACK, Status.CLOSED, Status.CANCELLED})

# Set by the IoT webhook around orders.register so the registration hook links the elevator.
_ELEVATOR: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("elevator", default=None)


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
def from_elevator(elevator: Mapping[str, Any]) -> Iterator[None]:
    """Context: the order being registered comes from this elevator (IoT webhook)."""
    token = _ELEVATOR.set(elevator)
    try:
        yield
    finally:
        _ELEVATOR.reset(token)


# ---- the frozen chain ----------------------------------------------------------------------


async def chain_steps_for(conn: AsyncConnection, project_id: int, kind: str) -> list[esc.ChainStep]:
    """The project's configured chain for this kind, else the all-projects row, else DEFAULT_CHAIN."""
    row = (
        await conn.execute(
            text(
                "SELECT steps FROM escalation_chains WHERE (project_id = :p OR project_id IS NULL) "
                "AND alert_kind = :k ORDER BY project_id NULLS LAST LIMIT 1"
            ),
            {"p": project_id, "k": kind},
        )
    ).scalar()
    steps = _json(row) if row is not None else None
    if not steps:
        return list(esc.DEFAULT_CHAIN)
    return [esc.ChainStep(str(s["target"]), int(s["wait_after_minutes"])) for s in steps]


async def freeze(conn: AsyncConnection, project_id: int, kind: str, now: datetime) -> dict[str, Any]:
    """The chain with concrete recipients (who is on call now), as stored in alerts.chain.

    Names are frozen with the ids so the board and /alerts show who was paged without a join.
    """
    steps = await chain_steps_for(conn, project_id, kind)
    shift = await oncall_db.shift_at(conn, project_id, now)
    supervisors = [p["id"] for p in await _people(conn, project_id, "supervisor")]
    managers = [p["id"] for p in await _people(conn, project_id, "manager")]
    frozen = esc.freeze_chain(steps, shift, supervisors, managers)
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
        "steps": [
            {
                "target": f.target,
                "wait_after_minutes": f.wait_after_minutes,
                "recipients": [{"id": i, "name": names.get(i, str(i))} for i in f.recipients],
            }
            for f in frozen
        ],
    }


def frozen_steps(chain: Mapping[str, Any] | list[Any] | None) -> tuple[esc.FrozenStep, ...]:
    """The frozen chain as steps; tolerant of older or hand-made shapes (a bare list, missing keys)."""
    steps = chain.get("steps") if isinstance(chain, Mapping) else chain
    out = []
    for s in steps or []:
        if not isinstance(s, Mapping):
            continue
        people = [r["id"] for r in s.get("recipients") or [] if isinstance(r, Mapping) and "id" in r]
        out.append(
            esc.FrozenStep(str(s.get("target", "")), tuple(people), int(s.get("wait_after_minutes") or 1))
        )
    return tuple(out)


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


# ---- opening -------------------------------------------------------------------------------


async def _order(conn: AsyncConnection, order_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                text(
                    "SELECT o.id, o.number, o.project_id, o.kind, o.urgency, o.status, o.location, o.summary, "
                    "o.assignee_id, o.elevator_id, p.name AS project_name FROM orders o "
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
        await _notify_contractor(conn, alert, order, now)
    return await _fire_due(conn, alert, order, now, via="start")


async def _notify_contractor(
    conn: AsyncConnection, alert: Mapping[str, Any], order: Mapping[str, Any], now: datetime
) -> None:
    """The elevator maintenance contractor hears at once: its webhook, else SMS to its phone."""
    elevator = None
    if order.get("elevator_id"):
        elevator = (
            (await conn.execute(text("SELECT * FROM elevators WHERE id = :e"), {"e": order["elevator_id"]}))
            .mappings()
            .first()
        )
    else:
        # Registered by hand: when the project's elevators have one contractor, that one.
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT contractor_name, contractor_phone, contractor_webhook FROM elevators "
                        "WHERE project_id = :p AND (contractor_phone <> '' OR contractor_webhook <> '')"
                    ),
                    {"p": order["project_id"]},
                )
            )
            .mappings()
            .all()
        )
        elevator = rows[0] if len(rows) == 1 else None
    if elevator is None:
        return
    msg = _zh(
        N_("Elevator entrapment at %(project)s %(location)s (order %(number)s): send your rescue team now"),
        project=order["project_name"],
        location=order["location"],
        number=order["number"],
    )
    if elevator["contractor_webhook"]:
        channel, payload = "webhook", {"url": elevator["contractor_webhook"]}
    elif elevator["contractor_phone"]:
        channel, payload = "sms", {"phone": elevator["contractor_phone"]}
    else:
        return
    payload.update(
        {
            "text": msg,
            "alert": alert["id"],
            "step": 0,
            "number": order["number"],
            "recipient": elevator["contractor_name"] or "contractor",
            "kind": alert["kind"],
        }
    )
    await outbox.enqueue(
        conn,
        dedupe_key=esc.dedupe_key(alert["id"], 0, "contractor", channel),
        topic=TOPIC,
        channel=channel,
        project_id=order["project_id"],
        order_id=order["id"],
        alert_id=alert["id"],
        payload=payload,
    )
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
            "recipients": [elevator["contractor_name"] or "contractor"],
            "channels": [channel],
            "contractor": True,
        },
    )


# ---- stepping ------------------------------------------------------------------------------


async def _group_channels(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, channel, url, name FROM alert_channels WHERE project_id = :p AND active ORDER BY id"
                ),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def _page(
    conn: AsyncConnection,
    alert: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    index: int,
    now: datetime,
    via: str,
) -> None:
    """Queue the deliveries of one step: screen and SMS to each person, then the group channels."""
    chain_steps = alert["chain"]["steps"]
    step = chain_steps[index % len(chain_steps)]
    people = step.get("recipients") or []
    # Phones are read now (a corrected number counts); who is paged was frozen at the start.
    phones = (
        dict(
            (
                await conn.execute(
                    text("SELECT id, phone FROM staff WHERE id = ANY(:ids)"),
                    {"ids": [p["id"] for p in people]},
                )
            ).all()
        )
        if people
        else {}
    )
    base = {
        "text": _page_text(alert, order),
        "alert": alert["id"],
        "step": index,
        "kind": alert["kind"],
        "number": order["number"] if order else None,
    }
    channels_used: set[str] = set()
    for person in people:
        targets: list[tuple[str, dict[str, Any]]] = [("screen", {})]
        if phones.get(person["id"]):
            targets.append(("sms", {"phone": phones[person["id"]]}))
        for channel, extra in targets:
            channels_used.add(channel)
            await outbox.enqueue(
                conn,
                dedupe_key=esc.dedupe_key(alert["id"], index, person["id"], channel),
                topic=TOPIC,
                channel=channel,
                project_id=alert["project_id"],
                order_id=alert["order_id"],
                recipient_id=person["id"],
                alert_id=alert["id"],
                payload={**base, **extra, "recipient": person["name"]},
            )
    for group in await _group_channels(conn, alert["project_id"]):
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
                **base,
                "url": group["url"],
                "recipient": group["name"] or group["channel"],
                "phone": next((phones[p["id"]] for p in people if phones.get(p["id"])), None),
            },
        )
    details = {
        "step": index,
        "target": step["target"],
        "recipients": [p["name"] for p in people],
        "channels": sorted(channels_used),
        "via": via,
    }
    if not people:
        details["nobody"] = True  # a rota gap: flagged; the next step still follows on time
        log.warning("alert %s step %s (%s): nobody to page", alert["id"], index, step["target"])
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
    frozen = frozen_steps(alert["chain"])
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


async def acknowledge(conn: AsyncConnection, alert_id: int, actor: ActorInfo, now: datetime) -> AckResult:
    """Acknowledge a triggered alert (idempotent); raise DomainError when unknown, forbidden or over."""
    current = await get(conn, alert_id)
    if current is None or (actor.staff_id is not None and current["project_id"] not in actor.project_ids):
        raise DomainError("not_found", N_("No such alert"))
    if actor.role not in ACK_ROLES:
        raise DomainError("forbidden", N_("You are not allowed to do this"))
    if current["order_id"]:
        # Lock order before alert, as a lifecycle step (cancel, arrive → resolve) does: no deadlock.
        await conn.execute(
            text("SELECT 1 FROM orders WHERE id = :o FOR NO KEY UPDATE"), {"o": current["order_id"]}
        )
    row = (
        (
            await conn.execute(
                text(
                    "UPDATE alerts SET state = 'acknowledged', acknowledged_at = :now, acknowledged_by = :s, "
                    "step_token = :t, next_step_at = NULL, stuck_since = NULL, version = version + 1 "
                    "WHERE id = :id AND state = 'triggered' RETURNING *"
                ),
                {"now": now, "s": actor.staff_id, "t": esc.new_step_token(), "id": alert_id},
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


async def resolve(conn: AsyncConnection, alert_id: int, actor: ActorInfo, now: datetime, reason: str) -> bool:
    """Resolve an open alert; False when it was resolved already."""
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
    details = {"reason": reason, "seconds_open": int((now - row["started_at"]).total_seconds())}
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
            None,
            {"alert_id": alert_id, "kind": row["kind"], **details},
        )
    return True


# ---- hooks ---------------------------------------------------------------------------------


async def on_registered(conn: AsyncConnection, reg: orders_db.Registered, now: datetime) -> None:
    """Entrapment and emergency orders open their alert at once (REGISTRATION_HOOKS)."""
    elevator = _ELEVATOR.get()
    if reg.kind == "entrapment" and elevator is not None and elevator["project_id"] == reg.project_id:
        location = elevator.get("location") or elevator["name"]
        await conn.execute(
            text("UPDATE orders SET elevator_id = :e, location = :loc WHERE id = :o"),
            {"e": elevator["id"], "loc": location[:100], "o": reg.id},
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
    """The order reaching the site (or the end) resolves its alerts (TRANSITION_HOOKS)."""
    to = Status(transition.to_status)
    if to not in RESOLVED_BY_ARRIVAL:
        return
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
        finishing_only = r["kind"] == "breach" and r["clock"] == ClockKind.COMPLETION.value
        if finishing_only and to not in RESOLVED_BY_FINISH:
            continue
        await resolve(conn, r["id"], actor, now, reason=f"order {to.value}")


async def on_breach(
    conn: AsyncConnection, c: Mapping[str, Any], order: Mapping[str, Any], now: datetime
) -> None:
    """A missed ack / arrival / completion deadline of an urgent order opens a breach alert (BREACH_HOOKS).

    Not while an alert of the order is still escalating: that one already pages people.
    """
    kind = ClockKind(c["kind"])
    if kind not in BREACH_ALERT_CLOCKS:
        return
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
    if info["escalating"] or (info["urgency"] != "emergency" and info["kind"] != "entrapment"):
        return
    await open_alert(conn, order["id"], "breach", now, clock=kind.value)


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
    """Acknowledged but not resolved in time: remind the acknowledger and the supervisors, once."""
    sent: list[int] = []
    async with engine.begin() as conn:
        rows = (
            (
                await conn.execute(
                    text(
                        "SELECT * FROM alerts WHERE state = 'acknowledged' AND reminded_at IS NULL "
                        "ORDER BY acknowledged_at LIMIT 100 FOR UPDATE SKIP LOCKED"
                    )
                )
            )
            .mappings()
            .all()
        )
        for r in rows:
            alert = dict(r)
            alert["chain"] = _json(alert["chain"])
            if not esc.reminder_due(alert["acknowledged_at"], now, REMIND_AFTER_MINUTES):
                continue
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
            people = {alert["acknowledged_by"]} | {
                p["id"] for p in await _people(conn, alert["project_id"], "supervisor")
            }
            for staff_id in sorted(x for x in people if x):
                await outbox.enqueue(
                    conn,
                    dedupe_key=f"alert:{alert['id']}:reminder:{staff_id}:screen",
                    topic=TOPIC,
                    channel="screen",
                    project_id=alert["project_id"],
                    order_id=alert["order_id"],
                    recipient_id=staff_id,
                    alert_id=alert["id"],
                    payload={"text": msg, "alert": alert["id"], "step": "reminder"},
                )
            await _alert_event(conn, alert["id"], now, None, "reminder", {"minutes": minutes})
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
                    {"alert_id": alert["id"], "minutes": minutes},
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
                    "attempts": r["attempts"],
                },
            )
    return len(rows)


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
                    "x.available_at, x.payload->>'step' AS step, x.payload->>'recipient' AS recipient_label, "
                    "s.display_name AS recipient_name FROM outbox x LEFT JOIN staff s ON s.id = x.recipient_id "
                    "WHERE x.alert_id = ANY(:ids) ORDER BY x.id"
                ),
                {"ids": ids},
            )
        )
        .mappings()
        .all()
    )
    by_alert: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for d in deliveries:
        item = dict(d)
        item["recipient"] = item.pop("recipient_name") or item.pop("recipient_label") or ""
        item.pop("recipient_label", None)
        by_alert[item["alert_id"]].append(item)
    for a in alerts:
        a["chain"] = _json(a["chain"])
        a["steps"] = steps_view(a)
        a["deliveries"] = by_alert[a["id"]]
        a["failed"] = sum(1 for d in a["deliveries"] if d["state"] == "failed")
    return alerts


def steps_view(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The frozen steps: when each first fires, whether (and how often, the chain repeats) it fired."""
    frozen = frozen_steps(alert["chain"])
    fired_total = alert["next_step_index"]
    out = []
    for i, step in enumerate(alert["chain"].get("steps") or []):
        times = (fired_total - i + len(frozen) - 1) // len(frozen) if fired_total > i else 0
        out.append(
            {
                "index": i,
                "target": step["target"],
                "wait_after_minutes": step["wait_after_minutes"],
                "at": esc.step_at(frozen, alert["started_at"], i),
                "fired": times > 0,
                "times_fired": times,
                "recipients": step.get("recipients") or [],
            }
        )
    return out


def alert_json(a: Mapping[str, Any]) -> dict[str, Any]:
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
        "next_step_index": a["next_step_index"],
        "next_step_at": a["next_step_at"],
        "stuck_since": a["stuck_since"],
        "steps": [{**s, "recipients": [r["name"] for r in s["recipients"]]} for s in a["steps"]],
        "deliveries": [
            {
                "id": d["id"],
                "step": d["step"],
                "channel": d["channel"],
                "recipient": d["recipient"],
                "state": d["state"],
                "attempts": d["attempts"],
                "error": d["last_error"],
                "queued_at": d["created_at"],
                "sent_at": d["sent_at"],
            }
            for d in a["deliveries"]
        ],
    }
