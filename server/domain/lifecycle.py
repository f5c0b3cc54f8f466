"""The work-order lifecycle (DOMAIN.md §4): one table of steps, who may take them, what they need.

Pure: `decide(order, action, actor, inputs)` answers a `Transition` (new status, the columns
to set, what the history event records, declarative effects) or raises `DomainError`:
not_found (unknown step), conflict (the order has moved on), forbidden (wrong role or
person), invalid (a missing or bad input, naming the field).

Statuses: finishing puts an order in `done` (已完工), which is the 待回访 queue; the callback
closes it. `callback` (待回访) stays in the vocabulary for old data but no step leads there.
报事 (matters) use the same machine with department handlers instead of engineers:
assigned (to the department) → accepted → done (handle) → closed (callback).

Each row of ACTIONS says where a step may start, which roles may take it, which person among
them (`Person`: the assignee, the desk for him, the order's team, its department; a supervisor
always may), its required and optional inputs, its possible effects and whether it moves the
clocks. 返修 (reopen) leaves the closed order closed, counts it and opens a linked rework order
(Effect.LINK_REWORK, carried out by the persistence layer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from server.domain.fees import (
    MAX_FEN,
    FeeSheet,
    MaterialLine,
    line_json,
    needs_agreement,
    parse_material,
    parse_materials,
    parse_yuan,
)
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


class Person(StrEnum):
    """Who among the holders of an allowed role may act on this order (a supervisor always may)."""

    ANYONE = "anyone"  # any holder of the role
    ASSIGNEE = "assignee"  # only the order's assigned person
    ASSIGNEE_OR_DESK = "assignee_or_desk"  # the assignee, or the desk (and a manager) acting for them
    TEAM = "team"  # an engineer of the order's team (any, when the order has no team)
    DEPARTMENT = "department"  # the assignee, or (unassigned) a handler of the order's department


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
    catalog_fee_fen: int = 0
    agreed_fen: int = 0


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
ALL = frozenset(Status)


@dataclass(frozen=True)
class ActionSpec:
    """One row of the table: the step, where it may start, who may take it, what it needs.

    `required` lists the inputs the step cannot do without (arrival's code may be replaced by
    the desk's recorded phone confirmation); `optional` the ones it reads when given; `effects`
    every effect the step may have besides its columns; `clocks` whether it moves the clocks.
    """

    name: str
    from_statuses: frozenset[Status]
    roles: frozenset[Role]
    required: tuple[str, ...] = ()
    person: Person = Person.ANYONE
    kinds: frozenset[Kind] = frozenset(Kind)
    optional: tuple[str, ...] = ()
    effects: frozenset[Effect] = frozenset()
    clocks: bool = True


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "pool", frozenset({Status.NEW}), DESK, kinds=frozenset({Kind.REPAIR}), optional=("team_id",)
        ),
        ActionSpec(
            "assign", frozenset({Status.NEW, Status.POOLED, Status.UNFINISHED}), DESK, ("assignee_id",)
        ),
        ActionSpec(
            "grab",
            frozenset({Status.POOLED}),
            frozenset({Role.ENGINEER}),
            person=Person.TEAM,
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec(
            "accept", frozenset({Status.ASSIGNED}), FIELD | {Role.SUPERVISOR}, person=Person.DEPARTMENT
        ),
        ActionSpec(
            "reassign", frozenset({Status.ASSIGNED, Status.ACCEPTED}), DESK, ("assignee_id", "reason")
        ),
        ActionSpec(
            "transfer",
            frozenset({Status.NEW, Status.POOLED, Status.ASSIGNED, Status.ACCEPTED}),
            DESK | FIELD,
            ("reason",),
            person=Person.ASSIGNEE_OR_DESK,
            optional=("department", "team_id", "assignee_id"),
        ),
        ActionSpec(
            "return",
            frozenset({Status.ASSIGNED, Status.ACCEPTED}),
            frozenset({Role.ENGINEER}) | {Role.SUPERVISOR},
            ("reason",),
            person=Person.ASSIGNEE,
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec(
            "arrive",
            frozenset({Status.ACCEPTED, Status.ASSIGNED}),
            FIELD | DESK,
            ("code",),
            person=Person.ASSIGNEE_OR_DESK,
            kinds=frozenset({Kind.REPAIR, Kind.ENTRAPMENT}),
            optional=("phone_confirmed",),
        ),
        ActionSpec(
            "start",
            frozenset({Status.ON_SITE}),
            frozenset({Role.ENGINEER, Role.SUPERVISOR}),
            person=Person.ASSIGNEE,
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec(
            "pause",
            frozenset({Status.ACCEPTED, Status.ON_SITE}),
            FIELD | {Role.SUPERVISOR},
            ("reason", "promised_at"),
            person=Person.ASSIGNEE,
        ),
        ActionSpec("resume", frozenset({Status.PAUSED}), FIELD | {Role.SUPERVISOR}, person=Person.ASSIGNEE),
        ActionSpec(
            "promise",
            ACTIVE | {Status.PAUSED, Status.UNFINISHED},
            DESK | FIELD,
            ("promised_at",),
            person=Person.ASSIGNEE_OR_DESK,
            optional=("reason",),
            clocks=False,
        ),
        ActionSpec(
            "finish",
            frozenset({Status.ON_SITE}),
            frozenset({Role.ENGINEER, Role.SUPERVISOR}),
            ("result",),
            person=Person.ASSIGNEE,
            kinds=frozenset({Kind.REPAIR, Kind.ENTRAPMENT}),
            optional=(
                "labour_yuan",
                "man_hours",
                "materials",
                "material_name",
                "material_qty",
                "material_unit",
                "material_price_yuan",
                "material_provided_by",
                "material_verified",
            ),
            effects=frozenset({Effect.SAVE_MATERIALS}),
        ),
        ActionSpec(
            "unfinished",
            frozenset({Status.ON_SITE}),
            frozenset({Role.ENGINEER, Role.SUPERVISOR}),
            ("reason", "next_at"),
            person=Person.ASSIGNEE,
            kinds=frozenset({Kind.REPAIR}),
        ),
        ActionSpec("reappoint", frozenset({Status.UNFINISHED}), DESK, ("appointment_at",)),
        ActionSpec(
            "handle",
            frozenset({Status.ACCEPTED, Status.ASSIGNED}),
            frozenset({Role.HANDLER, Role.SUPERVISOR}),
            ("result",),
            person=Person.DEPARTMENT,
            kinds=frozenset({Kind.MATTER}),
        ),
        ActionSpec(
            "record_agreement",
            frozenset({Status.NEW, Status.POOLED, Status.ACCEPTED, Status.ON_SITE, Status.ASSIGNED}),
            DESK | {Role.ENGINEER},
            ("agreed_yuan",),
            person=Person.ASSIGNEE_OR_DESK,
            kinds=frozenset({Kind.REPAIR}),
            optional=("prepaid",),
        ),
        ActionSpec(
            "callback",
            frozenset({Status.DONE, Status.CALLBACK}),
            frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.MANAGER, Role.MONITOR}),
            ("method", "rating"),
            optional=("comment",),
            effects=frozenset({Effect.NOTIFY_SUPERVISOR, Effect.OFFER_REOPEN}),
        ),
        ActionSpec(
            "reopen",
            frozenset({Status.CLOSED}),
            frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.MANAGER}),
            ("reason",),
            effects=frozenset({Effect.LINK_REWORK}),
            clocks=False,  # the rework order starts its own clocks
        ),
        ActionSpec("cancel", OPEN - {Status.DONE, Status.CALLBACK}, DESK, ("reason",)),
        ActionSpec("escalate", OPEN, DESK | {Role.MANAGER}, ("reason",)),
        ActionSpec(
            "mark_paid",
            frozenset({Status.DONE, Status.CALLBACK, Status.CLOSED}),
            frozenset({Role.FINANCE, Role.DISPATCHER}),
        ),
        ActionSpec(
            "remark",
            ALL,
            DESK | FIELD | {Role.MANAGER, Role.FINANCE},
            ("remark",),
            clocks=False,
        ),
    )
}


def _text(inputs: Mapping[str, object], key: str, *, required: bool = True) -> str:
    value = inputs.get(key)
    text = str(value).replace("\x00", "").strip() if value is not None else ""
    if required and not text:
        raise DomainError("invalid", N_("This field is required"), field=key)
    if len(text) > MAX_TEXT:
        raise DomainError("invalid", N_("At most %(max)s characters"), field=key, max=MAX_TEXT)
    return text


MAX_ID = 2**31 - 1  # ids are PostgreSQL integers


def _int(inputs: Mapping[str, object], key: str) -> int:
    """A positive id (a number or its digits)."""
    value = inputs.get(key)
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        number = int(value)
    if number is None or not 0 < number <= MAX_ID:
        raise DomainError("invalid", N_("Invalid value"), field=key)
    return number


MAX_AHEAD = timedelta(days=5 * 366)  # beyond: a typing slip (20260 for 2026)
GRACE = timedelta(minutes=5)


def _when(inputs: Mapping[str, object], key: str, now: datetime | None = None) -> datetime:
    """A date and time (naive ones are the project's local time); with `now`, not in the past
    and not absurdly far ahead."""
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
    if now is not None:
        if dt < now - GRACE:
            raise DomainError("invalid", N_("This time is in the past"), field=key)
        if dt > now + MAX_AHEAD:
            raise DomainError("invalid", N_("That is too far ahead"), field=key)
    return dt


def _choice(inputs: Mapping[str, object], key: str, choices: tuple[str, ...]) -> str:
    value = str(inputs.get(key) or "").strip()
    if value not in choices:
        raise DomainError("invalid", N_("Unknown value %(value)s"), field=key, value=value[:40] or "—")
    return value


def _is_supervisor(actor: Actor) -> bool:
    return Role.SUPERVISOR in actor.roles


def check_person(spec: ActionSpec, order: OrderView, actor: Actor) -> None:
    """Raise forbidden unless this actor is the person the table's rule lets act on this order."""
    rule = spec.person
    if rule is Person.ANYONE or _is_supervisor(actor):
        return
    if rule is Person.ASSIGNEE_OR_DESK and actor.roles & (DESK | {Role.MANAGER}):
        return
    if rule in (Person.ASSIGNEE, Person.ASSIGNEE_OR_DESK):
        if order.assignee_id != actor.id:
            raise DomainError("forbidden", N_("Only the assigned engineer may do this"))
    elif rule is Person.TEAM:
        if order.team_id is not None and order.team_id not in actor.team_ids:
            raise DomainError("forbidden", N_("This order is in another team's pool"))
    elif rule is Person.DEPARTMENT:
        if order.assignee_id == actor.id:
            return
        if (
            order.assignee_id is None
            and actor.department is not None
            and actor.department == order.department
        ):
            return
        if order.kind is Kind.MATTER or order.assignee_id is None:
            raise DomainError("forbidden", N_("Only the department handling this matter may do this"))
        raise DomainError("forbidden", N_("Only the assigned engineer may do this"))


def _flag(inputs: Mapping[str, object], key: str) -> bool:
    value = inputs.get(key)
    return value is True or str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _fee_inputs(inputs: Mapping[str, object]) -> tuple[int, tuple[MaterialLine, ...]]:
    """Labour and the material lines of the finish step: `materials` (a list, the API) and/or
    one line from the form's flat fields (material_name, material_qty, …)."""
    labour = (
        parse_yuan(str(inputs["labour_yuan"]), field="labour_yuan")
        if inputs.get("labour_yuan") not in (None, "")
        else 0
    )
    lines = list(parse_materials(inputs.get("materials")))
    if str(inputs.get("material_name") or "").strip():
        form_line = {
            "name": inputs.get("material_name"),
            "quantity": inputs.get("material_qty") or "1",
            "unit": inputs.get("material_unit"),
            "unit_price_yuan": inputs.get("material_price_yuan") or "0",
            "provided_by": inputs.get("material_provided_by") or "center",
            "verified": inputs.get("material_verified"),
        }
        try:
            lines.append(parse_material(form_line, field="material"))
        except DomainError as e:  # name the form's own field
            flat = {
                "material.quantity": "material_qty",
                "material.unit_price_yuan": "material_price_yuan",
                "material.provided_by": "material_provided_by",
                "material.verified": "material_verified",
                "material.name": "material_name",
                "material.unit": "material_unit",
            }
            e.field = flat.get(e.field or "", e.field)
            raise
    return labour, tuple(lines)


def _needs_agreement_first(order: OrderView, fee_fen: int) -> bool:
    return needs_agreement(fee_fen) and not (order.agreement_recorded and order.prepaid)


AGREEMENT_FIRST = N_(
    "Fees over 500 yuan need the customer's recorded agreement and prepayment before work starts"
)


def _build(
    spec: ActionSpec, order: OrderView, actor: Actor, inputs: Mapping[str, object], now: datetime | None
) -> Transition:
    a = spec.name
    frm = order.status
    ch: dict[str, object] = {}
    ev: dict[str, object] = {}
    effects: list[Effect] = []
    to = frm
    if a == "pool":
        if inputs.get("team_id") not in (None, ""):
            ch["team_id"] = _int(inputs, "team_id")
            ev["team_id"] = ch["team_id"]
        to = Status.POOLED
    elif a in ("assign", "reassign"):
        ch["assignee_id"] = _int(inputs, "assignee_id")
        ev["assignee_id"] = ch["assignee_id"]
        to = Status.ASSIGNED
    elif a == "grab":
        ch["assignee_id"] = actor.id
        to = Status.ACCEPTED
    elif a == "accept":
        if order.assignee_id is None:
            ch["assignee_id"] = actor.id
        to = Status.ACCEPTED
    elif a == "transfer":
        # To a person (assigned to them), a team (its grab pool), a department (its handlers);
        # with no target, back to where the order waits: its team's pool (a matter: its department).
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
            if ch["assignee_id"] == order.assignee_id:
                raise DomainError("invalid", N_("The order is already with this person"), field="assignee_id")
            to = Status.ASSIGNED
        else:
            ch["assignee_id"] = None
            if order.kind is Kind.MATTER or (dept and dept != Department.ENGINEERING.value):
                to = Status.ASSIGNED  # waits for a handler of the department to accept it
            elif order.kind is Kind.ENTRAPMENT:
                to = Status.NEW
            else:
                to = Status.POOLED
        ev.update(ch)
    elif a == "return":
        ch["assignee_id"] = None
        to = Status.POOLED
    elif a == "arrive":
        if order.assignee_id is None:
            raise DomainError("conflict", N_("Nobody is assigned to this order yet"))
        code = str(inputs.get("code") or "").strip()
        if _flag(inputs, "phone_confirmed"):
            if not actor.roles & DESK:
                raise DomainError("forbidden", N_("Only the desk may record a phone confirmation"))
            ev["confirmed_by"] = "phone"
        elif not code:
            raise DomainError("invalid", N_("Enter the customer's verification code"), field="code")
        elif code != (order.verification_code or ""):
            raise DomainError("invalid", N_("The verification code does not match"), field="code")
        else:
            ev["confirmed_by"] = "code"
        if _needs_agreement_first(order, order.catalog_fee_fen):
            raise DomainError("conflict", AGREEMENT_FIRST)
        to = Status.ON_SITE
    elif a == "start":
        if _needs_agreement_first(order, max(order.catalog_fee_fen, order.agreed_fen)):
            raise DomainError("conflict", AGREEMENT_FIRST)
        to = Status.ON_SITE
    elif a == "pause":
        ch["pause_reason"] = _choice(inputs, "reason", PAUSE_REASONS)
        ch["promised_at"] = _when(inputs, "promised_at", now)
        ch["paused_from"] = frm.value
        to = Status.PAUSED
    elif a == "resume":
        to = order.paused_from or Status.ON_SITE
        ch["paused_from"] = None
    elif a == "promise":
        ch["promised_at"] = _when(inputs, "promised_at", now)
        reason = _text(inputs, "reason", required=False)
        if reason:
            ev["reason"] = reason
    elif a == "finish":
        ch["result"] = _text(inputs, "result")
        labour, lines = _fee_inputs(inputs)
        sheet = FeeSheet(catalog_price_fen=order.catalog_fee_fen, labour_fen=labour, materials=lines)
        total = sheet.total_fen
        if total > MAX_FEN:
            raise DomainError("invalid", N_("The amount is too large"), field="labour_yuan")
        if _needs_agreement_first(order, total):
            raise DomainError("invalid", AGREEMENT_FIRST, field="labour_yuan")
        if needs_agreement(total) and total > order.agreed_fen:
            raise DomainError(
                "invalid",
                N_("The fees (%(total)s yuan) exceed what the customer agreed (%(agreed)s yuan)"),
                field="labour_yuan",
                total=f"{Decimal(total) / 100:.2f}",
                agreed=f"{Decimal(order.agreed_fen) / 100:.2f}",
            )
        if inputs.get("man_hours") not in (None, ""):
            try:
                hours = Decimal(str(inputs["man_hours"]).strip())
            except InvalidOperation:
                raise DomainError("invalid", N_("Invalid value"), field="man_hours") from None
            if not hours.is_finite() or hours <= 0 or hours > 1000 or hours != round(hours, 2):
                raise DomainError("invalid", N_("Invalid value"), field="man_hours")
            ch["man_hours"] = hours
            ev["man_hours"] = str(hours)
        ch.update({"labour_fen": labour, "material_fen": sheet.material_fen, "total_fen": total})
        if lines:
            ev["materials"] = [line_json(m) for m in lines]
            effects.append(Effect.SAVE_MATERIALS)
        ev.update({"labour_fen": labour, "material_fen": sheet.material_fen, "total_fen": total})
        to = Status.DONE
    elif a == "unfinished":
        ch["unfinished_reason"] = _text(inputs, "reason")
        ch["next_at"] = _when(inputs, "next_at", now)
        to = Status.UNFINISHED
    elif a == "reappoint":
        ch["appointment_at"] = _when(inputs, "appointment_at", now)
        ch["assignee_id"] = order.assignee_id
        to = Status.ASSIGNED
    elif a == "handle":
        ch["result"] = _text(inputs, "result")
        if order.assignee_id is None:
            ch["assignee_id"] = actor.id
        to = Status.DONE
    elif a == "record_agreement":
        agreed = parse_yuan(str(inputs.get("agreed_yuan") or ""), field="agreed_yuan")
        prepaid = _flag(inputs, "prepaid") or order.prepaid
        ch.update({"agreement_recorded": True, "prepaid": prepaid, "agreed_fen": agreed})
        ev.update({"agreed_fen": agreed, "prepaid": prepaid})
    elif a == "callback":
        ch["callback_method"] = _choice(inputs, "method", tuple(m.value for m in CallbackMethod))
        ch["callback_rating"] = _choice(inputs, "rating", tuple(r.value for r in Rating))
        ch["callback_comment"] = _text(inputs, "comment", required=False) or None
        if ch["callback_rating"] == Rating.UNSATISFIED.value:
            effects += [Effect.NOTIFY_SUPERVISOR, Effect.OFFER_REOPEN]
        to = Status.CLOSED
    elif a == "reopen":
        # 返修: the original stays closed and counts the rework; a linked rework order is opened.
        ch["reopen_count"] = order.reopen_count + 1
        effects.append(Effect.LINK_REWORK)
        to = Status.CLOSED
    elif a == "cancel":
        to = Status.CANCELLED
    elif a == "escalate":
        to = frm
    elif a == "mark_paid":
        if order.fee_total_fen <= 0:
            raise DomainError("conflict", N_("This order has no fee to pay"))
        ch["paid"] = True
    elif a == "remark":
        ev["remark"] = _text(inputs, "remark")
    if "reason" in spec.required and a != "pause":
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


def decide(
    order: OrderView,
    action: str,
    actor: Actor,
    inputs: Mapping[str, object],
    *,
    now: datetime | None = None,
) -> Transition:
    """Check one step against the table and the inputs; return what it changes.

    With `now`, times given (promised, next visit, appointment) must not lie in the past.
    """
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
    check_person(spec, order, actor)
    return _build(spec, order, actor, inputs, now)


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
            check_person(spec, order, actor)
        except DomainError:
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
