"""The work-order lifecycle (DOMAIN.md §4): one table of steps, who may take them, what they need.

Pure: `decide(order, action, actor, inputs)` answers a `Transition` (new status, the columns
to set, what the history event records, declarative effects) or raises `DomainError`:
not_found (unknown step), conflict (the order has moved on), forbidden (wrong role or
person), invalid (a missing or bad input, naming the field).

Statuses: finishing puts an order in `done` (已完工), which is the 待回访 queue; the callback
closes it. `callback` (待回访) stays in the vocabulary for old data but no step leads there.
报事 (matters) use the same machine with department handlers instead of engineers:
assigned (to the department) → accepted → done (handle) → closed (callback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from server.domain.fees import AGREEMENT_THRESHOLD_FEN, parse_yuan
from server.domain.messages import N_, DomainError
from server.domain.vocab import (
    OPEN_STATUSES,
    CallbackMethod,
    Department,
    Kind,
    Rating,
    Role,
    Status,
)

MAX_TEXT = 500
PAUSE_REASONS = ("parts", "customer_absent", "supplier", "other")


class Effect(StrEnum):
    NOTIFY_SUPERVISOR = "notify_supervisor"
    OFFER_REOPEN = "offer_reopen"
    LINK_REWORK = "link_rework"
    SAVE_MATERIALS = "save_materials"


@dataclass(frozen=True)
class Actor:
    id: int
    name: str
    roles: frozenset[Role]
    team_ids: frozenset[int] = frozenset()
    department: Department | None = None


@dataclass(frozen=True)
class OrderView:
    status: Status
    kind: Kind
    version: int
    assignee_id: int | None
    team_id: int | None
    department: Department | None
    verification_code: str | None
    paused_from: Status | None
    designated_engineer_id: int | None
    fee_total_fen: int = 0
    agreement_recorded: bool = False
    prepaid: bool = False
    reopen_count: int = 0
    assignee_name: str | None = None


@dataclass(frozen=True)
class Transition:
    action: str
    from_status: Status
    to_status: Status
    changes: dict[str, object] = field(default_factory=dict)
    event_inputs: dict[str, object] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()


DESK = frozenset({Role.DISPATCHER, Role.MONITOR, Role.SUPERVISOR})
FIELD = frozenset({Role.ENGINEER, Role.HANDLER})
ACTIVE = frozenset({Status.ASSIGNED, Status.ACCEPTED, Status.ON_SITE})
OPEN = frozenset(OPEN_STATUSES)


@dataclass(frozen=True)
class ActionSpec:
    name: str
    from_statuses: frozenset[Status]
    roles: frozenset[Role]
    required: tuple[str, ...] = ()
    #: "assignee": only the order's assignee (or a supervisor) of these roles may act
    person: str | None = None
    kinds: frozenset[Kind] = frozenset(Kind)


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("pool", frozenset({Status.NEW}), DESK, kinds=frozenset({Kind.REPAIR})),
        ActionSpec(
            "assign", frozenset({Status.NEW, Status.POOLED, Status.UNFINISHED}), DESK, ("assignee_id",)
        ),
        ActionSpec(
            "grab", frozenset({Status.POOLED}), frozenset({Role.ENGINEER}), kinds=frozenset({Kind.REPAIR})
        ),
        ActionSpec("accept", frozenset({Status.ASSIGNED}), FIELD | {Role.SUPERVISOR}, person="assignee"),
        ActionSpec(
            "reassign", frozenset({Status.ASSIGNED, Status.ACCEPTED}), DESK, ("assignee_id", "reason")
        ),
        ActionSpec(
            "transfer",
            frozenset({Status.NEW, Status.POOLED, Status.ASSIGNED, Status.ACCEPTED}),
            DESK | FIELD,
            ("reason",),
            person="assignee_or_desk",
        ),
        ActionSpec(
            "return",
            frozenset({Status.ASSIGNED, Status.ACCEPTED}),
            frozenset({Role.ENGINEER}) | {Role.SUPERVISOR},
            ("reason",),
            person="assignee",
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec(
            "arrive",
            frozenset({Status.ACCEPTED, Status.ASSIGNED}),
            FIELD | DESK,
            person="assignee_or_desk",
            kinds=frozenset({Kind.REPAIR, Kind.ENTRAPMENT}),
        ),
        ActionSpec(
            "pause",
            frozenset({Status.ACCEPTED, Status.ON_SITE}),
            FIELD | {Role.SUPERVISOR},
            ("reason", "promised_at"),
            person="assignee",
        ),
        ActionSpec("resume", frozenset({Status.PAUSED}), FIELD | {Role.SUPERVISOR}, person="assignee"),
        ActionSpec(
            "finish",
            frozenset({Status.ON_SITE}),
            frozenset({Role.ENGINEER, Role.SUPERVISOR}),
            ("result",),
            person="assignee",
            kinds=frozenset({Kind.REPAIR, Kind.ENTRAPMENT}),
        ),
        ActionSpec(
            "unfinished",
            frozenset({Status.ON_SITE}),
            frozenset({Role.ENGINEER, Role.SUPERVISOR}),
            ("reason", "next_at"),
            person="assignee",
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec("reappoint", frozenset({Status.UNFINISHED}), DESK, ("appointment_at",)),
        ActionSpec(
            "handle",
            frozenset({Status.ACCEPTED, Status.ASSIGNED}),
            frozenset({Role.HANDLER, Role.SUPERVISOR}),
            ("result",),
            person="department",
            kinds=frozenset({Kind.MATTER}),
        ),
        ActionSpec(
            "record_agreement",
            frozenset({Status.ACCEPTED, Status.ON_SITE, Status.ASSIGNED}),
            DESK | {Role.ENGINEER},
            ("agreed_yuan",),
            person="assignee_or_desk",
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec(
            "callback",
            frozenset({Status.DONE, Status.CALLBACK}),
            frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.MANAGER, Role.MONITOR}),
            ("method", "rating"),
        ),
        ActionSpec(
            "reopen",
            frozenset({Status.CLOSED}),
            frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.MANAGER}),
            ("reason",),
        ),
        ActionSpec("cancel", OPEN - {Status.DONE, Status.CALLBACK}, DESK, ("reason",)),
        ActionSpec("escalate", OPEN, DESK | {Role.MANAGER}, ("reason",)),
        ActionSpec(
            "mark_paid",
            frozenset({Status.DONE, Status.CALLBACK, Status.CLOSED}),
            frozenset({Role.FINANCE, Role.DISPATCHER}),
        ),
    )
}


def _text(inputs: Mapping[str, object], key: str, *, required: bool = True) -> str:
    value = inputs.get(key)
    text = str(value).strip() if value is not None else ""
    if required and not text:
        raise DomainError("invalid", N_("This field is required"), field=key)
    if len(text) > MAX_TEXT:
        raise DomainError("invalid", N_("At most %(max)s characters"), field=key, max=MAX_TEXT)
    return text


def _int(inputs: Mapping[str, object], key: str) -> int:
    value = inputs.get(key)
    if isinstance(value, bool):
        raise DomainError("invalid", N_("Invalid value"), field=key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise DomainError("invalid", N_("Invalid value"), field=key)


def _when(inputs: Mapping[str, object], key: str) -> datetime:
    value = inputs.get(key)
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value or "").replace("Z", "+00:00"))
        except ValueError:
            raise DomainError("invalid", N_("Not a valid date and time"), field=key) from None
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))  # what a datetime-local field means here
    return dt


def _choice(inputs: Mapping[str, object], key: str, choices: tuple[str, ...]) -> str:
    value = str(inputs.get(key) or "").strip()
    if value not in choices:
        raise DomainError("invalid", N_("Unknown value %(value)s"), field=key, value=value[:40] or "—")
    return value


def _is_supervisor(actor: Actor) -> bool:
    return Role.SUPERVISOR in actor.roles


def _check_person(spec: ActionSpec, order: OrderView, actor: Actor) -> None:
    if spec.person is None or _is_supervisor(actor):
        return
    if spec.person == "assignee":
        if order.assignee_id != actor.id:
            raise DomainError("forbidden", N_("Only the assigned engineer may do this"))
    elif spec.person == "assignee_or_desk":
        if actor.roles & (DESK | {Role.MANAGER}):
            return
        if order.assignee_id != actor.id:
            raise DomainError("forbidden", N_("Only the assigned engineer may do this"))
    elif spec.person == "department":
        if order.assignee_id == actor.id:
            return
        if (
            order.assignee_id is None
            and actor.department is not None
            and actor.department == order.department
        ):
            return
        raise DomainError("forbidden", N_("Only the department handling this matter may do this"))


def _fee_inputs(inputs: Mapping[str, object]) -> tuple[int, int, dict[str, object] | None]:
    """Labour and one material line from the finish form (yuan strings → fen)."""
    labour = (
        parse_yuan(str(inputs["labour_yuan"]), field="labour_yuan")
        if inputs.get("labour_yuan") not in (None, "")
        else 0
    )
    material = None
    material_fen = 0
    name = str(inputs.get("material_name") or "").strip()
    if name:
        try:
            qty = Decimal(str(inputs.get("material_qty") or "1"))
        except InvalidOperation:
            raise DomainError("invalid", N_("Invalid value"), field="material_qty") from None
        if qty <= 0 or qty > 10000:
            raise DomainError("invalid", N_("Invalid value"), field="material_qty")
        price = parse_yuan(str(inputs.get("material_price_yuan") or "0"), field="material_price_yuan")
        provided_by = str(inputs.get("material_provided_by") or "center")
        if provided_by not in ("center", "customer"):
            raise DomainError(
                "invalid", N_("Unknown value %(value)s"), field="material_provided_by", value=provided_by[:20]
            )
        line_fen = int((qty * price).to_integral_value()) if provided_by == "center" else 0
        material_fen = line_fen
        material = {
            "name": name[:100],
            "quantity": str(qty),
            "unit": str(inputs.get("material_unit") or "")[:10],
            "unit_price_fen": price,
            "provided_by": provided_by,
            "verified": None if provided_by == "center" else str(inputs.get("material_verified")) == "ok",
        }
    return labour, material_fen, material


def _build(spec: ActionSpec, order: OrderView, actor: Actor, inputs: Mapping[str, object]) -> Transition:
    a = spec.name
    frm = order.status
    ch: dict[str, object] = {}
    ev: dict[str, object] = {}
    effects: list[Effect] = []
    to = frm
    if a == "pool":
        to = Status.POOLED
    elif a in ("assign", "reassign"):
        ch["assignee_id"] = _int(inputs, "assignee_id")
        ev["assignee_id"] = ch["assignee_id"]
        to = Status.ASSIGNED
    elif a == "grab":
        if order.team_id is not None and order.team_id not in actor.team_ids and not _is_supervisor(actor):
            raise DomainError("forbidden", N_("This order is in another team's pool"))
        ch["assignee_id"] = actor.id
        to = Status.ACCEPTED
    elif a == "accept":
        if order.kind is Kind.MATTER and order.assignee_id is None:
            ch["assignee_id"] = actor.id
        to = Status.ACCEPTED
    elif a == "transfer":
        dept = str(inputs.get("department") or "").strip()
        if dept:
            try:
                ch["department_code"] = Department(dept).value
            except ValueError:
                raise DomainError(
                    "invalid", N_("Unknown value %(value)s"), field="department", value=dept[:30]
                ) from None
        if inputs.get("team_id") not in (None, ""):
            ch["team_id"] = _int(inputs, "team_id")
        if inputs.get("assignee_id") not in (None, ""):
            ch["assignee_id"] = _int(inputs, "assignee_id")
            to = Status.ASSIGNED
        else:
            ch["assignee_id"] = None
            to = Status.NEW if order.kind is not Kind.MATTER else Status.ASSIGNED
        ev.update({k: v for k, v in ch.items()})
    elif a == "return":
        ch["assignee_id"] = None
        to = Status.POOLED
    elif a == "arrive":
        if order.assignee_id is None:
            raise DomainError("conflict", N_("Nobody is assigned to this order yet"))
        code = str(inputs.get("code") or "").strip()
        phone_ok = str(inputs.get("phone_confirmed") or "").lower() in ("1", "true", "yes", "on")
        if phone_ok:
            if not actor.roles & DESK:
                raise DomainError("forbidden", N_("Only the desk may record a phone confirmation"))
            ev["confirmed_by"] = "phone"
        elif not code:
            raise DomainError("invalid", N_("Enter the customer's verification code"), field="code")
        elif code != (order.verification_code or ""):
            raise DomainError("invalid", N_("The verification code does not match"), field="code")
        else:
            ev["confirmed_by"] = "code"
        if order.fee_total_fen > AGREEMENT_THRESHOLD_FEN and not (order.agreement_recorded and order.prepaid):
            ev["warning"] = "fee agreement pending"
        to = Status.ON_SITE
    elif a == "pause":
        ch["pause_reason"] = _choice(inputs, "reason", PAUSE_REASONS)
        ch["promised_at"] = _when(inputs, "promised_at")
        ch["paused_from"] = frm.value
        to = Status.PAUSED
    elif a == "resume":
        to = order.paused_from or Status.ON_SITE
        ch["paused_from"] = None
    elif a == "finish":
        ch["result"] = _text(inputs, "result")
        labour, material_fen, material = _fee_inputs(inputs)
        total = order.fee_total_fen + labour + material_fen
        if total > AGREEMENT_THRESHOLD_FEN and not (order.agreement_recorded and order.prepaid):
            raise DomainError(
                "invalid",
                N_("Fees over 500 yuan need the customer's recorded agreement and prepayment first"),
                field="labour_yuan",
            )
        ch.update({"labour_fen": labour, "material_fen": material_fen, "total_fen": total})
        if material:
            ev["material"] = material
            effects.append(Effect.SAVE_MATERIALS)
        ev["total_fen"] = total
        to = Status.DONE
    elif a == "unfinished":
        ch["unfinished_reason"] = _text(inputs, "reason")
        ch["next_at"] = _when(inputs, "next_at")
        to = Status.UNFINISHED
    elif a == "reappoint":
        ch["appointment_at"] = _when(inputs, "appointment_at")
        ch["assignee_id"] = order.assignee_id
        to = Status.ASSIGNED
    elif a == "handle":
        ch["result"] = _text(inputs, "result")
        if order.assignee_id is None:
            ch["assignee_id"] = actor.id
        to = Status.DONE
    elif a == "record_agreement":
        agreed = parse_yuan(str(inputs.get("agreed_yuan") or ""), field="agreed_yuan")
        prepaid = str(inputs.get("prepaid") or "").lower() in ("1", "true", "yes", "on")
        ch.update(
            {"agreement_recorded": True, "prepaid": prepaid, "total_fen": max(order.fee_total_fen, agreed)}
        )
        ev.update({"agreed_fen": agreed, "prepaid": prepaid})
    elif a == "callback":
        ch["callback_method"] = _choice(inputs, "method", tuple(m.value for m in CallbackMethod))
        ch["callback_rating"] = _choice(inputs, "rating", tuple(r.value for r in Rating))
        ch["callback_comment"] = _text(inputs, "comment", required=False) or None
        if ch["callback_rating"] == Rating.UNSATISFIED.value:
            effects += [Effect.NOTIFY_SUPERVISOR, Effect.OFFER_REOPEN]
        to = Status.CLOSED
    elif a == "reopen":
        ch["reopen_count"] = order.reopen_count + 1
        effects.append(Effect.LINK_REWORK)
        to = Status.ASSIGNED if order.assignee_id is not None else Status.POOLED
    elif a == "cancel":
        to = Status.CANCELLED
    elif a == "escalate":
        to = frm
    elif a == "mark_paid":
        ch["paid"] = True
    if "reason" in spec.required and a not in ("pause",):
        ev["reason"] = _text(inputs, "reason")
    elif a == "pause":
        ev["reason"] = ch["pause_reason"]
    for k in ("promised_at", "next_at", "appointment_at"):
        if k in ch:
            ev[k] = ch[k].isoformat() if isinstance(ch[k], datetime) else ch[k]  # type: ignore[union-attr]
    for k in ("result", "callback_method", "callback_rating", "callback_comment"):
        if k in ch and ch[k] is not None:
            ev[k] = ch[k]
    return Transition(a, frm, to, ch, ev, tuple(effects))


def decide(order: OrderView, action: str, actor: Actor, inputs: Mapping[str, object]) -> Transition:
    """Check one step against the table and the inputs; return what it changes."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise DomainError("not_found", N_("Unknown action %(action)s"), action=action[:40])
    if order.kind not in spec.kinds:
        raise DomainError("conflict", N_("This step does not apply to this kind of order"))
    if order.status not in spec.from_statuses:
        if action == "grab" and order.assignee_name:
            raise DomainError("conflict", N_("Already grabbed by %(engineer)s"), engineer=order.assignee_name)
        raise DomainError("conflict", N_("This order is already %(status)s"), status=order.status.value)
    if not actor.roles & spec.roles:
        raise DomainError("forbidden", N_("Your role may not do this"))
    _check_person(spec, order, actor)
    return _build(spec, order, actor, inputs)


def allowed_actions(order: OrderView, actor: Actor) -> list[str]:
    """The steps this actor may take now (inputs aside), in table order: the buttons to show."""
    out = []
    for name, spec in ACTIONS.items():
        if (
            order.status not in spec.from_statuses
            or order.kind not in spec.kinds
            or not actor.roles & spec.roles
        ):
            continue
        try:
            _check_person(spec, order, actor)
        except DomainError:
            continue
        if (
            name == "grab"
            and order.team_id is not None
            and order.team_id not in actor.team_ids
            and not _is_supervisor(actor)
        ):
            continue
        if name == "mark_paid" and order.fee_total_fen == 0:
            continue
        out.append(name)
    return out


# The wall board's five groups.
STATUS_OF_STAGE: dict[str, tuple[Status, ...]] = {
    "waiting": (Status.NEW, Status.POOLED),
    "dispatched": (Status.ASSIGNED, Status.ACCEPTED),
    "on_site": (Status.ON_SITE,),
    "paused": (Status.PAUSED, Status.UNFINISHED),
    "callback": (Status.DONE, Status.CALLBACK),
}

Validator = Callable[[Mapping[str, object]], None]
