"""Escalation chains and the alert state machine (DOMAIN.md §7; Grafana OnCall's lessons).

- A chain is ordered steps: notify a target, then wait N minutes before the next step; after
  the last step it starts again (a new round), until a person acknowledges.
- Chains are configured per project and alert kind (escalation_chains); a configuration that
  does not validate is never used: the reader falls back to the default chain of the kind.
- The chain is frozen into the alert when it starts (concrete recipients), so editing the rota
  mid-incident changes nothing for a running alert. alerts.chain is always
  {"steps": [{"target", "wait_after_minutes", "recipients": [{"id", "name"}]}], ...}
  (a CHECK constraint guards the shape); `read_frozen` is its one reader.
- One token decides which queued step may act: acknowledging replaces the token, so every step
  already queued finds a stranger's token and does nothing.
- Deliveries are retried with backoff on temporary failure (`classify_http_status`,
  `next_retry_at`); the outbox uses exactly these.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from server.domain.messages import N_, DomainError
from server.domain.oncall import RotaShift

ALERT_KINDS = ("entrapment", "emergency", "breach")
ROLE_TARGETS = ("oncall_primary", "oncall_backup", "supervisor", "manager")
MAX_STEPS = 12
MAX_WAIT_MINUTES = 24 * 60
DEFAULT_REMIND_AFTER_MINUTES = 30  # acknowledged but not resolved after this: remind once


@dataclass(frozen=True)
class ChainStep:
    target: str  # one of ROLE_TARGETS or "staff:<id>"
    wait_after_minutes: int


@dataclass(frozen=True)
class ChainConfig:
    steps: tuple[ChainStep, ...]
    remind_after_minutes: int = DEFAULT_REMIND_AFTER_MINUTES


#: notify the on-call engineer → 1 min → backup → 2 min → engineering supervisor → 3 min →
#: project manager → 3 min → (again from the top)
DEFAULT_CHAIN: tuple[ChainStep, ...] = (
    ChainStep("oncall_primary", 1),
    ChainStep("oncall_backup", 2),
    ChainStep("supervisor", 3),
    ChainStep("manager", 3),
)
#: A missed deadline goes to the people who can move the order: supervisor, then manager.
SUPERVISOR_CHAIN: tuple[ChainStep, ...] = (ChainStep("supervisor", 5), ChainStep("manager", 10))
DEFAULT_CHAINS: dict[str, ChainConfig] = {
    "entrapment": ChainConfig(DEFAULT_CHAIN),
    "emergency": ChainConfig(DEFAULT_CHAIN),
    "breach": ChainConfig(SUPERVISOR_CHAIN, 60),
}


def default_chain(kind: str) -> ChainConfig:
    return DEFAULT_CHAINS.get(kind, DEFAULT_CHAINS["emergency"])


def valid_target(target: str) -> bool:
    return target in ROLE_TARGETS or (target.startswith("staff:") and target[6:].isdigit())


def validate_chain(
    steps: Sequence[ChainStep], remind_after_minutes: int = DEFAULT_REMIND_AFTER_MINUTES
) -> None:
    """Raise DomainError naming the first step at fault (field "steps.<i>.target" / ".wait")."""
    if not steps:
        raise DomainError("invalid", N_("An escalation chain needs at least one step"), field="steps")
    if len(steps) > MAX_STEPS:
        raise DomainError("invalid", N_("At most %(max)s steps"), field="steps", max=MAX_STEPS)
    for i, s in enumerate(steps):
        if not valid_target(s.target):
            raise DomainError(
                "invalid", N_("Unknown value %(value)s"), field=f"steps.{i}.target", value=s.target[:30]
            )
        # A wait of 0 would page the whole chain in one loop: every step waits at least a minute.
        if not 1 <= s.wait_after_minutes <= MAX_WAIT_MINUTES:
            raise DomainError("invalid", N_("Wait between 1 minute and 24 hours"), field=f"steps.{i}.wait")
    if not 1 <= remind_after_minutes <= MAX_WAIT_MINUTES:
        raise DomainError("invalid", N_("Wait between 1 minute and 24 hours"), field="remind_after_minutes")


def parse_chain(steps: Any, remind_after_minutes: Any = DEFAULT_REMIND_AFTER_MINUTES) -> ChainConfig:
    """A configured chain from its JSON ([{"target", "wait_after_minutes"}]), validated."""
    if not isinstance(steps, list):
        raise DomainError("invalid", N_("An escalation chain needs at least one step"), field="steps")
    out = []
    for i, s in enumerate(steps):
        target = s.get("target") if isinstance(s, Mapping) else None
        wait = s.get("wait_after_minutes") if isinstance(s, Mapping) else None
        if not isinstance(target, str):
            raise DomainError("invalid", N_("This field is required"), field=f"steps.{i}.target")
        if isinstance(wait, bool) or not isinstance(wait, int):
            raise DomainError("invalid", N_("Wait between 1 minute and 24 hours"), field=f"steps.{i}.wait")
        out.append(ChainStep(target, wait))
    if isinstance(remind_after_minutes, bool) or not isinstance(remind_after_minutes, int):
        raise DomainError("invalid", N_("Wait between 1 minute and 24 hours"), field="remind_after_minutes")
    validate_chain(out, remind_after_minutes)
    return ChainConfig(tuple(out), remind_after_minutes)


def chain_json(steps: Sequence[ChainStep]) -> list[dict[str, Any]]:
    return [{"target": s.target, "wait_after_minutes": s.wait_after_minutes} for s in steps]


# ---- the frozen chain ----------------------------------------------------------------------


@dataclass(frozen=True)
class FrozenStep:
    target: str
    recipients: tuple[int, ...]  # empty: nobody resolved (flagged, the next step still follows on time)
    wait_after_minutes: int
    names: tuple[str, ...] = ()  # the recipients' names when frozen, in the same order


def freeze_chain(
    chain: Sequence[ChainStep],
    shift: RotaShift | None,
    supervisors: list[int],
    managers: list[int],
) -> tuple[FrozenStep, ...]:
    """Resolve every target to staff ids now; the rota may change later, the alert does not."""
    out = []
    for step in chain:
        if step.target == "oncall_primary":
            who: tuple[int, ...] = (shift.primary_id,) if shift else ()
        elif step.target == "oncall_backup":
            who = (shift.backup_id,) if shift and shift.backup_id else ()
        elif step.target == "supervisor":
            who = (shift.supervisor_id,) if shift and shift.supervisor_id else tuple(supervisors)
        elif step.target == "manager":
            who = (shift.manager_id,) if shift and shift.manager_id else tuple(managers)
        else:
            who = (int(step.target[6:]),)
        out.append(FrozenStep(step.target, who, step.wait_after_minutes))
    return tuple(out)


def frozen_json(steps: Sequence[FrozenStep], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """The "steps" of alerts.chain."""
    return [
        {
            "target": f.target,
            "wait_after_minutes": f.wait_after_minutes,
            "recipients": [{"id": i, "name": names.get(i, str(i))} for i in f.recipients],
        }
        for f in steps
    ]


def read_frozen(chain: Mapping[str, Any]) -> tuple[FrozenStep, ...]:
    """The steps of alerts.chain, whose shape the alerts_chain_shape CHECK and frozen_json fix."""
    return tuple(
        FrozenStep(
            s["target"],
            tuple(r["id"] for r in s["recipients"]),
            s["wait_after_minutes"],
            tuple(r["name"] for r in s["recipients"]),
        )
        for s in chain["steps"]
    )


def frozen_remind_after(chain: Mapping[str, Any]) -> int:
    """The reminder threshold frozen with the chain (a snapshot without one: the default)."""
    return int(chain.get("remind_after_minutes") or DEFAULT_REMIND_AFTER_MINUTES)


def step_at(chain: Sequence[FrozenStep], started_at: datetime, index: int) -> datetime:
    """When step `index` is due: step 0 at once, each next one after the previous step's wait.

    The index grows without bound; the chain repeats from the top after its last step.
    """
    if not chain:
        raise ValueError("empty chain")
    cycle = sum(s.wait_after_minutes for s in chain)
    if cycle <= 0:
        raise ValueError("a chain must wait between its rounds")
    full, rest = divmod(index, len(chain))
    minutes = full * cycle + sum(s.wait_after_minutes for s in chain[:rest])
    return started_at + timedelta(minutes=minutes)


def step_of(chain: Sequence[FrozenStep], index: int) -> FrozenStep:
    return chain[index % len(chain)]


@dataclass(frozen=True)
class StepPosition:
    """Where an absolute step index sits: `step` within the chain (0-based), `round` (1-based)."""

    index: int
    step: int
    round: int
    steps: int  # the chain's length


def position(steps: int, index: int) -> StepPosition:
    rnd, step = divmod(index, steps)
    return StepPosition(index, step, rnd + 1, steps)


def last_fired(steps: int, next_step_index: int) -> StepPosition | None:
    """The position of the step paged most recently, None before step 0 (or with no steps)."""
    if steps <= 0 or next_step_index <= 0:
        return None
    return position(steps, next_step_index - 1)


def paged_names(chain: Sequence[FrozenStep], next_step_index: int) -> list[str]:
    """Everyone paged so far (each once, in paging order): the board's "paged: 张师傅、刘师傅"."""
    out: list[str] = []
    for step in chain[: max(0, min(next_step_index, len(chain)))]:
        for n in step.names:
            if n not in out:
                out.append(n)
    return out


def due_steps(
    chain: Sequence[FrozenStep], started_at: datetime, last_fired_index: int, now: datetime
) -> list[int]:
    """Indexes due by `now` that have not fired yet (last_fired_index = -1 before the first)."""
    out = []
    i = last_fired_index + 1
    while step_at(chain, started_at, i) <= now:
        out.append(i)
        i += 1
        if len(out) > 1000:  # a chain stuck for days: the caller records and moves on
            break
    return out


# ---- alert states --------------------------------------------------------------------------


class AlertState(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertChange:
    state: AlertState
    record: bool  # False: nothing changed (idempotent repeat), write no record
    new_token: str | None = None  # set when queued steps must become no-ops


def new_step_token() -> str:
    return secrets.token_hex(8)


def acknowledge(state: AlertState) -> AlertChange:
    """triggered → acknowledged (new token: queued steps stop); again → no second record."""
    if state is AlertState.TRIGGERED:
        return AlertChange(AlertState.ACKNOWLEDGED, True, new_step_token())
    if state is AlertState.ACKNOWLEDGED:
        return AlertChange(AlertState.ACKNOWLEDGED, False)
    # Resolved before the tap arrived: the person still gets a calm answer, nothing changes.
    return AlertChange(AlertState.RESOLVED, False)


def resolve(state: AlertState) -> AlertChange:
    """triggered or acknowledged → resolved (final; steps stop)."""
    if state is AlertState.RESOLVED:
        return AlertChange(AlertState.RESOLVED, False)
    return AlertChange(AlertState.RESOLVED, True, new_step_token())


def may_step_run(alert_state: AlertState, alert_step_token: str, job_token: str) -> bool:
    """Only a job carrying the alert's current token may step, and only while nobody acknowledged."""
    return alert_state is AlertState.TRIGGERED and secrets.compare_digest(alert_step_token, job_token)


def remind_at(acknowledged_at: datetime, remind_after_minutes: int) -> datetime:
    """Acknowledged but not resolved by then: remind the acknowledger and the supervisor."""
    return acknowledged_at + timedelta(minutes=remind_after_minutes)


def validate_resolve_reason(reason: str) -> str:
    """A supervisor resolving by hand says why (the order may still be open)."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("invalid", N_("Say why the alert is resolved"), field="reason")
    if len(reason) > 200:
        raise DomainError("invalid", N_("At most %(max)s characters"), field="reason", max=200)
    return reason


# ---- which breaches open alerts, and what ends an alert ------------------------------------

URGENT_ORDER_KINDS = frozenset({"entrapment"})
ARRIVED = frozenset({"on_site", "paused", "unfinished", "done", "callback", "closed", "cancelled"})
FINISHED = frozenset({"done", "callback", "closed", "cancelled"})
DISPATCHED = frozenset({"assigned", "accepted"}) | ARRIVED
ENDED = frozenset({"closed", "cancelled"})


@dataclass(frozen=True)
class BreachAlertPolicy:
    """Which missed deadlines open a 'breach' alert (its chain: the 'breach' kind's)."""

    urgent_clocks: frozenset[str] | None = None  # None: every clock of an urgent order
    normal_clocks: frozenset[str] = frozenset({"arrival", "completion"})

    def opens_alert(self, clock: str, order_kind: str, urgency: str) -> bool:
        if order_kind in URGENT_ORDER_KINDS or urgency == "emergency":
            return self.urgent_clocks is None or clock in self.urgent_clocks
        return clock in self.normal_clocks


BREACH_ALERTS = BreachAlertPolicy()


def resolved_by(alert_kind: str, clock: str | None, to_status: str) -> bool:
    """Whether the order reaching `to_status` ends this alert (the incident is over)."""
    if to_status in ENDED:
        return True
    if alert_kind != "breach":
        return to_status in ARRIVED  # entrapment, emergency: someone is on site
    if clock == "dispatch":
        return to_status in DISPATCHED
    if clock in ("ack", "arrival"):
        return to_status in ARRIVED
    if clock == "completion":
        return to_status in FINISHED
    return False  # callbacks, progress: closing the order or a supervisor's resolve ends it


# ---- deliveries ----------------------------------------------------------------------------


def dedupe_key(alert_id: int, step_index: int | str, recipient_id: int | str, channel: str) -> str:
    return f"alert:{alert_id}:{step_index}:{recipient_id}:{channel}"


BACKOFF = (
    timedelta(seconds=5),
    timedelta(seconds=15),
    timedelta(seconds=45),
    timedelta(minutes=2),
    timedelta(minutes=5),
)


def next_retry_at(attempt: int, now: datetime) -> datetime | None:
    """After the n-th failed attempt (1-based): when to try again, or None to give up."""
    if attempt < 1 or attempt > len(BACKOFF):
        return None
    return now + BACKOFF[attempt - 1]


def classify_http_status(code: int) -> str:
    """2xx sent; timeouts, throttling and server errors may pass later; other 4xx never will."""
    if 200 <= code < 300:
        return "sent"
    if code in (408, 425, 429) or code >= 500:
        return "retry"
    return "failed"
