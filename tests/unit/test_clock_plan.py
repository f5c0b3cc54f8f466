"""Which clocks each step starts and stops."""

from __future__ import annotations

from server.domain.clock_plan import (
    CancelAll,
    PauseAll,
    ResumeAll,
    Start,
    Stop,
    plan_for,
    plan_for_registration,
)
from server.domain.vocab import ClockKind as C
from server.domain.vocab import Kind, Status


def kinds(ops, cls):
    return {op.kind for op in ops if isinstance(op, cls)}


def test_a_pooled_repair_runs_dispatch_and_completion():
    ops = plan_for_registration(Kind.REPAIR, Status.POOLED, False)
    assert kinds(ops, Start) == {C.DISPATCH, C.COMPLETION}


def test_an_entrapment_runs_ack_and_arrival_at_once():
    assert {C.ACK, C.ARRIVAL, C.COMPLETION} <= kinds(
        plan_for_registration(Kind.ENTRAPMENT, Status.NEW, False), Start
    )


def test_grab_stops_dispatch_and_starts_arrival_and_first_callback():
    ops = plan_for("grab", Status.POOLED, Status.ACCEPTED, Kind.REPAIR, False)
    assert C.DISPATCH in kinds(ops, Stop)
    assert {C.ARRIVAL, C.FIRST_CALLBACK, C.PROGRESS} <= kinds(ops, Start)


def test_arrival_with_an_appointment_is_due_at_the_appointment():
    ops = plan_for("assign", Status.NEW, Status.ASSIGNED, Kind.REPAIR, True)
    assert any(isinstance(op, Start) and op.kind is C.ARRIVAL and op.at_appointment for op in ops)


def test_arrive_meets_arrival_and_first_callback():
    ops = plan_for("arrive", Status.ACCEPTED, Status.ON_SITE, Kind.REPAIR, False)
    assert {C.ARRIVAL, C.FIRST_CALLBACK} <= kinds(ops, Stop)


def test_finish_meets_completion_and_starts_the_callback_clock():
    ops = plan_for("finish", Status.ON_SITE, Status.DONE, Kind.REPAIR, False)
    assert C.COMPLETION in kinds(ops, Stop) and C.CALLBACK in kinds(ops, Start)


def test_pause_and_resume():
    assert plan_for("pause", Status.ON_SITE, Status.PAUSED, Kind.REPAIR, False) == [PauseAll()]
    assert isinstance(plan_for("resume", Status.PAUSED, Status.ON_SITE, Kind.REPAIR, False)[0], ResumeAll)


def test_cancel_cancels_everything():
    assert plan_for("cancel", Status.ACCEPTED, Status.CANCELLED, Kind.REPAIR, False) == [CancelAll()]


def test_return_to_pool_restarts_dispatch():
    ops = plan_for("return", Status.ACCEPTED, Status.POOLED, Kind.REPAIR, False)
    assert C.DISPATCH in kinds(ops, Start)
    assert any(isinstance(op, Stop) and op.kind is C.ARRIVAL and op.outcome == "cancelled" for op in ops)


def test_reopen_starts_a_new_run():
    ops = plan_for("reopen", Status.CLOSED, Status.ASSIGNED, Kind.REPAIR, False)
    assert {C.COMPLETION, C.ARRIVAL} <= kinds(ops, Start)
