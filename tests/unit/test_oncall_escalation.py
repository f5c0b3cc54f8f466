"""The rota and the escalation chain, with a fake clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from server.domain.escalation import (
    BREACH_ALERTS,
    DEFAULT_CHAIN,
    AlertState,
    ChainStep,
    acknowledge,
    classify_http_status,
    dedupe_key,
    default_chain,
    due_steps,
    freeze_chain,
    frozen_json,
    last_fired,
    may_step_run,
    next_retry_at,
    paged_names,
    parse_chain,
    position,
    read_frozen,
    resolve,
    resolved_by,
    step_at,
    step_of,
    validate_resolve_reason,
)
from server.domain.messages import DomainError
from server.domain.oncall import RotaShift, duty_periods, find_gaps, next_change, on_call_at, validate_shift

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
    assert gaps == [
        (at(2026, 11, 24, 0), at(2026, 11, 24, 9)),
        (at(2026, 11, 24, 17, 30), at(2026, 11, 25, 0)),
    ]
    assert find_gaps(ROTA, SH, days=3, start=date(2026, 11, 24)) == []


def test_a_ten_minute_hole_between_day_and_night_is_found_to_the_minute():
    day = RotaShift(1, 1, "day", time(9), time(17, 20), primary_id=11)
    night = RotaShift(2, 1, "night", time(17, 30), time(9), primary_id=12)
    gaps = find_gaps([day, night], SH, days=2, start=date(2026, 11, 24))  # Tuesday, Wednesday
    assert gaps == [
        (at(2026, 11, 24, 17, 20), at(2026, 11, 24, 17, 30)),
        (at(2026, 11, 25, 17, 20), at(2026, 11, 25, 17, 30)),
    ]


def test_a_year_of_the_demo_rota_has_no_gap_through_holidays_and_make_up_days():
    holiday = RotaShift(4, 1, "holiday", time(9), time(9), primary_id=15)  # as the demo seeds it
    assert find_gaps([DAY, NIGHT, WEEKEND, holiday], SH, days=365, start=date(2026, 1, 1)) == []


def test_a_holiday_shift_ending_at_midnight_leaves_the_next_workdays_early_morning_uncovered():
    # 2026: 元旦 1–3 January off, Sunday 4 January a make-up working day (调休).
    gaps = find_gaps(ROTA, SH, days=4, start=date(2026, 1, 1))
    assert gaps == [(at(2026, 1, 4, 0), at(2026, 1, 4, 9))]


def test_a_short_holiday_shift_leaves_the_holiday_nights_uncovered():
    short = RotaShift(5, 1, "holiday", time(9), time(21), primary_id=15)
    gaps = find_gaps([DAY, NIGHT, WEEKEND, short], SH, days=2, start=date(2026, 10, 1))  # 国庆
    assert gaps[0] == (at(2026, 10, 1, 21), at(2026, 10, 2, 9))


def test_on_a_make_up_saturday_the_weekday_shifts_apply_and_a_weekend_only_rota_has_a_gap():
    makeup = next(
        d
        for d in (date(2026, 1, 1) + timedelta(days=i) for i in range(365))
        if d.weekday() >= 5 and chinese_calendar.is_workday(d)
    )
    periods = duty_periods(
        ROTA, datetime.combine(makeup, time(9), SH), datetime.combine(makeup, time(18), SH), SH
    )
    assert [p.shift for p in periods] == [DAY, NIGHT]
    gaps = find_gaps([WEEKEND], SH, days=1, start=makeup)
    assert gaps and gaps[0][0] == datetime.combine(makeup, time(9), SH)  # the weekend shift does not start


def test_the_answer_next_changes_at_the_end_of_the_shift():
    assert next_change(ROTA, at(2026, 11, 24, 10), SH) == at(2026, 11, 24, 17, 30)
    assert next_change(ROTA, at(2026, 11, 27, 20), SH) == at(2026, 11, 28, 9)  # Friday night → weekend


def test_a_shift_is_read_from_a_row_or_its_json():
    row = {"id": 7, "project_id": 1, "kind": "night", "starts": "17:30:00", "ends": "09:00", "primary_id": 3}
    shift = RotaShift.from_mapping(row)
    assert shift.starts == time(17, 30) and shift.crosses_midnight and shift.backup_id is None


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


def test_a_configured_chain_is_parsed_and_validated():
    config = parse_chain(
        [{"target": "supervisor", "wait_after_minutes": 2}, {"target": "staff:9", "wait_after_minutes": 5}],
        15,
    )
    assert (
        config.steps == (ChainStep("supervisor", 2), ChainStep("staff:9", 5))
        and config.remind_after_minutes == 15
    )
    bad = [
        ([], "steps"),
        ("oops", "steps"),
        ([{"target": "supervisor", "wait_after_minutes": 0}], "steps.0.wait"),  # would page in a loop
        ([{"target": "supervisor"}], "steps.0.wait"),
        ([{"wait_after_minutes": 1}], "steps.0.target"),
        (
            [{"target": "supervisor", "wait_after_minutes": 1}, {"target": "boss", "wait_after_minutes": 1}],
            "steps.1.target",
        ),
        ([{"target": "supervisor", "wait_after_minutes": True}], "steps.0.wait"),
        ([{"target": "supervisor", "wait_after_minutes": 2000}], "steps.0.wait"),
    ]
    for steps, field in bad:
        with pytest.raises(DomainError) as e:
            parse_chain(steps)
        assert e.value.field == field, steps
    with pytest.raises(DomainError) as e:
        parse_chain([{"target": "supervisor", "wait_after_minutes": 1}], 0)
    assert e.value.field == "remind_after_minutes"


def test_each_kind_has_a_default_chain_and_breaches_go_to_the_supervisor_first():
    assert default_chain("entrapment").steps == DEFAULT_CHAIN
    assert default_chain("breach").steps[0].target == "supervisor"


def test_the_frozen_chain_round_trips_with_names_and_says_who_was_paged():
    frozen = freeze_chain(DEFAULT_CHAIN, DAY, [31], [41])
    chain = {"steps": frozen_json(frozen, {11: "张师傅", 12: "刘师傅", 31: "王主管", 41: "周经理"})}
    back = read_frozen(chain)
    assert [s.recipients for s in back] == [s.recipients for s in frozen]
    assert paged_names(back, 2) == ["张师傅", "刘师傅"] and paged_names(back, 9) == [
        "张师傅",
        "刘师傅",
        "王主管",
        "周经理",
    ]
    assert paged_names(back, 0) == []


def test_a_repeating_chain_names_its_step_within_the_chain_and_the_round():
    assert position(4, 5).step == 1 and position(4, 5).round == 2
    assert last_fired(4, 1) == position(4, 0) and last_fired(4, 0) is None
    assert last_fired(4, 8).step == 3 and last_fired(4, 8).round == 2


def test_which_breaches_open_an_alert():
    assert BREACH_ALERTS.opens_alert("callback", "repair", "emergency")  # every clock of an urgent order
    assert BREACH_ALERTS.opens_alert("dispatch", "entrapment", "emergency")
    assert BREACH_ALERTS.opens_alert("arrival", "repair", "normal")
    assert BREACH_ALERTS.opens_alert("completion", "repair", "low")
    assert not BREACH_ALERTS.opens_alert("dispatch", "repair", "normal")
    assert not BREACH_ALERTS.opens_alert("first_callback", "matter", "normal")


def test_what_ends_an_alert():
    assert resolved_by("entrapment", None, "on_site") and not resolved_by("entrapment", None, "accepted")
    assert resolved_by("breach", "dispatch", "accepted")
    assert not resolved_by("breach", "completion", "on_site") and resolved_by("breach", "completion", "done")
    assert resolved_by("breach", "callback", "cancelled") and not resolved_by("breach", "callback", "done")


def test_resolving_by_hand_needs_a_reason():
    with pytest.raises(DomainError):
        validate_resolve_reason("  ")
    assert validate_resolve_reason(" 误报，现场无人被困 ") == "误报，现场无人被困"


def test_delivery_retries_back_off_then_give_up():
    now = at(2026, 11, 24, 10)
    assert [classify_http_status(c) for c in (500, 500, 500, 200)] == ["retry", "retry", "retry", "sent"]
    assert classify_http_status(400) == "failed" and classify_http_status(429) == "retry"
    assert next_retry_at(1, now) == now + timedelta(seconds=5)
    assert next_retry_at(6, now) is None


def test_dedupe_key_names_alert_step_recipient_and_channel():
    assert dedupe_key(7, 2, 11, "sms") == "alert:7:2:11:sms"
