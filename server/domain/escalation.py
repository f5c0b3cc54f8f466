"""Escalation chains and the alert state machine (DOMAIN.md §7; Grafana OnCall's lessons).

- A chain is ordered steps: notify a target, then wait N minutes before the next step; after
  the last step it starts again, until a person acknowledges.
- The chain is frozen into the alert when it starts (concrete recipients), so editing the rota
  mid-incident changes nothing for a running alert.
- One token decides which queued step may act: acknowledging replaces the token, so every step
  already queued finds a stranger's token and does nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from server.domain.messages import N_, DomainError
from server.domain.oncall import RotaShift


@dataclass(frozen=True)
class ChainStep:
    target: str  # "oncall_primary" | "oncall_backup" | "supervisor" | "manager" | "staff:<id>"
    wait_after_minutes: int


#: notify the on-call engineer → 1 min → backup → 2 min → engineering supervisor → 3 min →
#: project manager → 3 min → (again from the top)
DEFAULT_CHAIN: tuple[ChainStep, ...] = (
    ChainStep("oncall_primary", 1),
    ChainStep("oncall_backup", 2),
    ChainStep("supervisor", 3),
    ChainStep("manager", 3),
)


@dataclass(frozen=True)
class FrozenStep:
    target: str
    recipients: tuple[int, ...]  # empty: nobody resolved (flagged, the next step still follows on time)
    wait_after_minutes: int


def validate_chain(steps: list[ChainStep]) -> None:
    if not steps:
        raise DomainError("invalid", N_("An escalation chain needs at least one step"), field="steps")
    for s in steps:
        if s.wait_after_minutes < 1 or s.wait_after_minutes > 24 * 60:
            raise DomainError("invalid", N_("Wait between 1 minute and 24 hours"), field="steps")
        if s.target not in ("oncall_primary", "oncall_backup", "supervisor", "manager") and not (
            s.target.startswith("staff:") and s.target[6:].isdigit()
        ):
            raise DomainError("invalid", N_("Unknown value %(value)s"), field="steps", value=s.target[:30])


def freeze_chain(
    chain: tuple[ChainStep, ...] | list[ChainStep],
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


def step_at(chain: tuple[FrozenStep, ...], started_at: datetime, index: int) -> datetime:
    """When step `index` is due: step 0 at once, each next one after the previous step's wait.

    The index grows without bound; the chain repeats from the top after its last step.
    """
    if not chain:
        raise ValueError("empty chain")
    cycle = sum(s.wait_after_minutes for s in chain)
    full, rest = divmod(index, len(chain))
    minutes = full * cycle + sum(s.wait_after_minutes for s in chain[:rest])
    return started_at + timedelta(minutes=minutes)


def step_of(chain: tuple[FrozenStep, ...], index: int) -> FrozenStep:
    return chain[index % len(chain)]


def due_steps(
    chain: tuple[FrozenStep, ...], started_at: datetime, last_fired_index: int, now: datetime
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


def reminder_due(acknowledged_at: datetime, now: datetime, minutes: int = 30) -> bool:
    """Acknowledged but not resolved after `minutes`: remind whoever acknowledged."""
    return now - acknowledged_at >= timedelta(minutes=minutes)


def dedupe_key(alert_id: int, step_index: int, recipient_id: int | str, channel: str) -> str:
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
