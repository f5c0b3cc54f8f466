"""The rota and the escalation chain, with a fake clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from server.domain.escalation import (
    DEFAULT_CHAIN,
    AlertState,
    acknowledge,
    classify_http_status,
    dedupe_key,
    due_steps,
    freeze_chain,
    may_step_run,
    next_retry_at,
    resolve,
    step_at,
    step_of,
)
from server.domain.messages import DomainError
from server.domain.oncall import RotaShift, find_gaps, on_call_at, validate_shift

SH = ZoneInfo("Asia/Shanghai")
DAY = RotaShift(
    1, 1, "day", time(9), time(17, 30), primary_id=11, backup_id=12, supervisor_id=31, manager_id=41
)
NIGHT = RotaShift(2, 1, "night", time(17, 30), time(9), primary_id=12, backup_id=11)
WEEKEND = RotaShift(3, 1, "weekend", time(9), time(9), primary_id=13, backup_id=14)
HOLIDAY = RotaShift(4, 1, "holiday", time(0), time(0), primary_id=15)
ROTA = [DAY, NIGHT, WEEKEND, HOLIDAY]


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def test_day_and_night_shifts_on_a_workday():
    assert on_call_at(ROTA, at(2026, 11, 24, 10), SH) is DAY
    assert on_call_at(ROTA, at(2026, 11, 24, 20), SH) is NIGHT


def test_a_night_shift_crossing_midnight_belongs_to_the_day_it_started():
    assert on_call_at(ROTA, at(2026, 11, 25, 3), SH) is NIGHT  # Tuesday night, Wednesday 03:00


def test_weekends_have_their_own_shift_but_make_up_workdays_do_not():
    assert on_call_at(ROTA, at(2026, 11, 28, 12), SH) is WEEKEND  # a Saturday
    makeup = next(
        d
        for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
        if d.weekday() >= 5 and chinese_calendar.is_workday(d)
    )
    assert on_call_at(ROTA, datetime.combine(makeup, time(10), SH), SH) is DAY


def test_statutory_holidays_come_first():
    assert on_call_at(ROTA, at(2026, 10, 1, 12), SH) is HOLIDAY


def test_gaps_are_found():
    gaps = find_gaps([DAY], SH, days=1, start=date(2026, 11, 24))
    assert gaps and gaps[0][0] == at(2026, 11, 24, 0)
    assert find_gaps(ROTA, SH, days=3, start=date(2026, 11, 24)) == []


def test_a_shift_needs_a_primary_who_is_not_also_the_backup():
    with pytest.raises(DomainError):
        validate_shift("day", time(9), time(17), None, None)
    with pytest.raises(DomainError):
        validate_shift("day", time(9), time(17), 11, 11)
    with pytest.raises(DomainError):
        validate_shift("lunch", time(9), time(17), 11, None)


def test_the_chain_is_frozen_with_concrete_recipients():
    chain = freeze_chain(DEFAULT_CHAIN, DAY, supervisors=[31, 32], managers=[41])
    assert [s.recipients for s in chain] == [(11,), (12,), (31,), (41,)]
    nobody = freeze_chain(DEFAULT_CHAIN, None, supervisors=[31], managers=[])
    assert nobody[0].recipients == () and nobody[2].recipients == (31,)


def test_each_step_is_due_at_its_time_once_and_the_chain_repeats():
    chain = freeze_chain(DEFAULT_CHAIN, DAY, [31], [41])
    t0 = at(2026, 11, 24, 10)
    assert [step_at(chain, t0, i) - t0 for i in range(5)] == [timedelta(minutes=m) for m in (0, 1, 3, 6, 9)]
    assert due_steps(chain, t0, -1, t0) == [0]
    assert due_steps(chain, t0, 0, t0 + timedelta(seconds=59)) == []
    assert due_steps(chain, t0, 0, t0 + timedelta(minutes=3)) == [1, 2]
    assert due_steps(chain, t0, 2, t0 + timedelta(minutes=3)) == []
    assert step_of(chain, 4).target == "oncall_primary"


def test_acknowledging_replaces_the_token_so_queued_steps_do_nothing():
    token = "abc"
    assert may_step_run(AlertState.TRIGGERED, token, "abc")
    change = acknowledge(AlertState.TRIGGERED)
    assert change.state is AlertState.ACKNOWLEDGED and change.record and change.new_token != token
    assert not may_step_run(change.state, change.new_token or "", "abc")


def test_a_second_acknowledgement_writes_no_record():
    assert acknowledge(AlertState.ACKNOWLEDGED).record is False


@pytest.mark.parametrize("order", [("ack", "resolve"), ("resolve", "ack")])
def test_acknowledge_racing_resolve_ends_resolved(order):
    state = AlertState.TRIGGERED
    for op in order:
        state = (acknowledge if op == "ack" else resolve)(state).state
    assert state is AlertState.RESOLVED


def test_delivery_retries_back_off_then_give_up():
    now = at(2026, 11, 24, 10)
    assert [classify_http_status(c) for c in (500, 500, 500, 200)] == ["retry", "retry", "retry", "sent"]
    assert classify_http_status(400) == "failed" and classify_http_status(429) == "retry"
    assert next_retry_at(1, now) == now + timedelta(seconds=5)
    assert next_retry_at(6, now) is None


def test_dedupe_key_names_alert_step_recipient_and_channel():
    assert dedupe_key(7, 2, 11, "sms") == "alert:7:2:11:sms"
