"""Which SLA clocks a step of the lifecycle starts, stops, pauses or resumes (DOMAIN.md §5).

Pure and declarative: `plan_for` looks at the step (action, from, to) and the order's kind
and returns clock operations; the persistence layer carries them out and the policy module
says how many minutes each clock gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.vocab import ClockKind, Kind, Status

ACTIVE = frozenset({Status.ASSIGNED, Status.ACCEPTED, Status.ON_SITE})
AWAITING_DISPATCH = frozenset({Status.NEW, Status.POOLED})


@dataclass(frozen=True)
class Start:
    kind: ClockKind
    #: arrival with an appointment is due at the appointment itself
    at_appointment: bool = False


@dataclass(frozen=True)
class Stop:
    kind: ClockKind
    outcome: str = "met"  # "met" (or breached-late, judged at stop time) | "cancelled"


@dataclass(frozen=True)
class PauseAll:
    pass


@dataclass(frozen=True)
class ResumeAll:
    pass


@dataclass(frozen=True)
class CancelAll:
    pass


ClockOp = Start | Stop | PauseAll | ResumeAll | CancelAll


def _dispatched(kind: Kind, has_appointment: bool) -> list[ClockOp]:
    ops: list[ClockOp] = [Stop(ClockKind.DISPATCH)]
    if kind is not Kind.MATTER:  # a matter has no site visit to time; its clocks are completion and callback
        ops += [Start(ClockKind.ARRIVAL, at_appointment=has_appointment), Start(ClockKind.FIRST_CALLBACK)]
    return ops


def plan_for_registration(kind: Kind, status: Status, has_appointment: bool) -> list[ClockOp]:
    """Clocks of a new order: completion always; dispatch while unassigned; entrapment's ack."""
    ops: list[ClockOp] = [Start(ClockKind.COMPLETION)]
    if kind is Kind.ENTRAPMENT:
        ops += [Start(ClockKind.ACK), Start(ClockKind.ARRIVAL)]
        if status in ACTIVE:
            ops.append(Start(ClockKind.PROGRESS))
        return ops
    if status in AWAITING_DISPATCH:
        ops.append(Start(ClockKind.DISPATCH))
    elif status in ACTIVE:
        ops += [op for op in _dispatched(kind, has_appointment) if not isinstance(op, Stop)]
        if kind is not Kind.MATTER:
            ops.append(Start(ClockKind.PROGRESS))
    return ops


def plan_for(
    action: str, from_status: Status, to_status: Status, kind: Kind, has_appointment: bool
) -> list[ClockOp]:
    """Clock operations for one transition, in order."""
    ops: list[ClockOp] = []
    if to_status is Status.CANCELLED:
        return [CancelAll()]
    if to_status is Status.PAUSED:
        return [PauseAll()]
    if from_status is Status.PAUSED:
        ops.append(ResumeAll())
    if from_status is Status.CLOSED:  # reopen (返修): a new run of every clock
        ops += plan_for_registration(kind, to_status, has_appointment)
        return ops

    if from_status in AWAITING_DISPATCH | {Status.UNFINISHED} and to_status in ACTIVE:
        ops += _dispatched(kind, has_appointment)
    elif from_status in ACTIVE and to_status in AWAITING_DISPATCH:  # transfer / return to pool
        ops += [
            Stop(ClockKind.ARRIVAL, "cancelled"),
            Stop(ClockKind.FIRST_CALLBACK, "cancelled"),
            Start(ClockKind.DISPATCH),
        ]
    if action == "arrive" or (to_status is Status.ON_SITE and from_status is not Status.PAUSED):
        ops += [Stop(ClockKind.ARRIVAL), Stop(ClockKind.FIRST_CALLBACK), Stop(ClockKind.ACK)]
    if action == "acknowledge":
        ops.append(Stop(ClockKind.ACK))
    if to_status in (Status.DONE, Status.CALLBACK):
        ops += [
            Stop(ClockKind.COMPLETION),
            Stop(ClockKind.ARRIVAL, "cancelled"),
            Stop(ClockKind.FIRST_CALLBACK, "cancelled"),
            Stop(ClockKind.ACK, "cancelled"),
            Start(ClockKind.CALLBACK),
        ]
    if to_status is Status.CLOSED:
        ops += [Stop(ClockKind.CALLBACK), CancelAll()]
    if to_status is Status.UNFINISHED:
        ops += [Stop(ClockKind.ARRIVAL, "cancelled"), Stop(ClockKind.FIRST_CALLBACK, "cancelled")]

    # "No progress for 2 h": every step of an order being worked restarts the clock.
    ops.append(Stop(ClockKind.PROGRESS, "met" if to_status in ACTIVE | {Status.DONE} else "cancelled"))
    if to_status in ACTIVE and kind is not Kind.MATTER:
        ops.append(Start(ClockKind.PROGRESS))
    return ops
