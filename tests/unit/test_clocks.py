"""Clock arithmetic with explicit datetimes: no real time is read anywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.clocks import (
    ARRIVE_EARLY,
    DEFAULT_TZ,
    Clock,
    add_duration,
    band,
    band_changes_at,
    business_time_between,
    cancel,
    is_chinese_workday,
    is_due,
    meet,
    next_deadline,
    pause,
    remaining,
    resume,
    share_left,
    start_clock,
    start_clock_for_rule,
)
from server.domain.sla_policy import BusinessHours, SlaRule
from server.domain.vocab import ClockKind, ClockState

SH = ZoneInfo("Asia/Shanghai")
HOURS = BusinessHours(time(9, 0), time(17, 30))
US = timedelta(microseconds=1)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


def biz(start: datetime, minutes: int, hours: BusinessHours = HOURS, tz: ZoneInfo = SH) -> datetime:
    return add_duration(start, minutes, tz=tz, business_hours=hours)


def workday(d: date) -> bool:
    return bool(chinese_calendar.is_workday(d))


# --- add_duration: calendar time ---------------------------------------------------------------------


def test_calendar_duration_is_elapsed_time_returned_in_utc() -> None:
    due = add_duration(sh(2026, 3, 7, 23, 30), 90, tz=SH, business_hours=None)  # a Saturday night
    assert due == sh(2026, 3, 8, 1, 0)
    assert due.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 3, 2, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_duration(naive, 10, tz=SH, business_hours=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        start_clock(ClockKind.ARRIVAL, naive, 15, SH)
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    for fn in (remaining, band, is_due, pause, meet):
        with pytest.raises(ValueError, match="timezone-aware"):
            fn(clock, naive)  # type: ignore[operator]


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError):
        add_duration(sh(2026, 3, 2, 10), -1, tz=SH, business_hours=None)


# --- add_duration: business hours --------------------------------------------------------------------


def test_business_minutes_within_the_same_window() -> None:
    assert workday(date(2026, 3, 2))
    assert biz(sh(2026, 3, 2, 10), 60) == sh(2026, 3, 2, 11)


def test_ending_exactly_at_closing_time_stays_on_that_day() -> None:
    assert biz(sh(2026, 3, 2, 17), 30) == sh(2026, 3, 2, 17, 30)


def test_business_time_carries_over_midnight_to_the_next_opening() -> None:
    assert biz(sh(2026, 3, 3, 17), 60) == sh(2026, 3, 4, 9, 30)


def test_counting_starts_at_opening_when_requested_outside_hours() -> None:
    assert biz(sh(2026, 3, 3, 20), 30) == sh(2026, 3, 4, 9, 30)  # at night
    assert biz(sh(2026, 3, 4, 7), 30) == sh(2026, 3, 4, 9, 30)  # early morning
    assert biz(sh(2026, 3, 4, 0, 30), 30) == sh(2026, 3, 4, 9, 30)  # before midnight in UTC


def test_business_time_skips_the_weekend() -> None:
    assert [workday(date(2026, 3, d)) for d in (6, 7, 8, 9)] == [True, False, False, True]
    assert biz(sh(2026, 3, 6, 17), 60) == sh(2026, 3, 9, 9, 30)
    assert biz(sh(2026, 3, 7, 11), 60) == sh(2026, 3, 9, 10)  # raised on Saturday


def test_business_time_skips_the_national_day_holiday() -> None:
    # The library's data, not a list typed here: 1–7 October 2026 are days off, the 8th is not.
    assert not any(workday(date(2026, 10, d)) for d in range(1, 8))
    assert workday(date(2026, 9, 30)) and workday(date(2026, 10, 8))
    assert biz(sh(2026, 9, 30, 17), 60) == sh(2026, 10, 8, 9, 30)


def test_a_make_up_working_day_counts_as_business_time() -> None:
    october = [date(2026, 10, d) for d in range(1, 32)]
    make_up = [d for d in october if d.weekday() >= 5 and workday(d)]
    assert make_up, "chinese_calendar should know the 调休 weekend workday after National Day 2026"
    lieu = make_up[0]
    before = max(d for d in october if d < lieu and workday(d))
    after = min(d for d in october if d > lieu and workday(d))
    start = datetime.combine(before, time(17), tzinfo=SH)
    assert biz(start, 60) == datetime.combine(lieu, time(9, 30), tzinfo=SH)
    assert biz(datetime.combine(lieu, time(17), tzinfo=SH), 60) == datetime.combine(
        after, time(9, 30), tzinfo=SH
    )


def test_business_time_crosses_month_end() -> None:
    assert workday(date(2026, 6, 30)) and workday(date(2026, 7, 1))
    assert biz(sh(2026, 6, 30, 17), 60) == sh(2026, 7, 1, 9, 30)


def test_business_time_crosses_year_end_into_a_year_the_library_may_not_know() -> None:
    assert workday(date(2026, 12, 31))
    try:
        first = min(d for d in (date(2027, 1, n) for n in range(1, 10)) if workday(d))
    except NotImplementedError:
        # chinesecalendar 1.11.0 stops at 2026: the fallback takes Friday 1 January as a workday.
        first = date(2027, 1, 1)
    assert biz(sh(2026, 12, 31, 17), 60) == datetime.combine(first, time(9, 30), tzinfo=SH)


def test_unknown_years_fall_back_to_monday_to_friday() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2100, 1, 1))
    assert [is_chinese_workday(date(2100, 1, d)) for d in range(1, 5)] == [
        True,
        False,
        False,
        True,
    ]  # Fri..Mon
    assert biz(sh(2100, 1, 1, 17), 60) == sh(2100, 1, 4, 9, 30)


def test_known_years_follow_the_library_not_the_weekday() -> None:
    assert date(2026, 10, 1).weekday() == 3 and not is_chinese_workday(date(2026, 10, 1))  # a Thursday off
    assert date(2026, 10, 10).weekday() == 5 and is_chinese_workday(date(2026, 10, 10))  # a Saturday on


def test_daily_business_hours_count_weekends_and_holidays() -> None:
    daily = BusinessHours(time(9, 0), time(17, 30), "daily")
    assert biz(sh(2026, 3, 6, 17), 60, daily) == sh(2026, 3, 7, 9, 30)
    assert biz(sh(2026, 9, 30, 17), 60, daily) == sh(2026, 10, 1, 9, 30)


def test_business_hours_are_read_in_the_projects_time_zone() -> None:
    # 09:00 in Shanghai is 01:00 UTC; the input zone does not matter, the project's does.
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert biz(start, 30) == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    urumqi = ZoneInfo("Asia/Urumqi")  # UTC+6: opens at 03:00 UTC
    assert biz(start, 30, tz=urumqi) == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)


def test_zero_minutes_is_the_start_itself() -> None:
    assert biz(sh(2026, 3, 7, 12), 0) == sh(2026, 3, 7, 12)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 12, 1), max_value=datetime(2026, 12, 31), timezones=st.just(SH)
    ),
    minutes=st.integers(min_value=1, max_value=10 * 24 * 60),
)
def test_business_time_between_inverts_add_duration(start: datetime, minutes: int) -> None:
    due = biz(start, minutes)
    assert due > start
    assert business_time_between(start, due, tz=SH, business_hours=HOURS) == timedelta(minutes=minutes)


# --- clocks -------------------------------------------------------------------------------------------


def test_start_clock_sets_the_deadline_from_the_minutes() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    assert clock.deadline == sh(2026, 3, 2, 10, 15)
    assert (clock.state, clock.minutes, clock.paused_seconds) == (ClockState.RUNNING, 15, 0)
    assert clock.tz == SH and DEFAULT_TZ == SH


def test_start_clock_refuses_a_non_positive_budget() -> None:
    with pytest.raises(ValueError):
        start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 0, SH)


def test_arrival_with_an_appointment_is_due_at_the_appointment() -> None:
    appointment = sh(2026, 3, 7, 14)  # a Saturday afternoon; business hours do not apply
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 6, 10), 15, SH, HOURS, appointment_at=appointment)
    assert clock.deadline == appointment
    assert clock.business_hours is None
    assert clock.deadline - ARRIVE_EARLY == sh(2026, 3, 7, 13, 55)
    assert band(clock, sh(2026, 3, 7, 13, 59)) == "red"
    assert meet(clock, sh(2026, 3, 7, 14)).state == ClockState.MET
    assert meet(clock, sh(2026, 3, 7, 14, 1)).state == ClockState.BREACHED


def test_only_the_arrival_clock_follows_an_appointment() -> None:
    with pytest.raises(ValueError):
        start_clock(ClockKind.COMPLETION, sh(2026, 3, 6, 10), 60, SH, appointment_at=sh(2026, 3, 7, 14))


def test_appointment_already_past_is_breached_at_once() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 6, 10), 15, SH, appointment_at=sh(2026, 3, 6, 9))
    assert is_due(clock, sh(2026, 3, 6, 10))
    assert band(clock, sh(2026, 3, 6, 10)) == "breached"
    assert share_left(clock, sh(2026, 3, 6, 10)) == 0.0


def test_resume_adds_the_paused_time_to_the_deadline() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH)
    paused = pause(clock, sh(2026, 3, 2, 10, 20))
    assert paused.state == ClockState.PAUSED
    resumed = resume(paused, sh(2026, 3, 2, 10, 50), SH)
    assert resumed.state == ClockState.RUNNING
    assert resumed.deadline == sh(2026, 3, 2, 11, 30)
    assert resumed.paused_seconds == 30 * 60
    assert resumed.paused_at is None


def test_pauses_accumulate() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH)
    clock = resume(pause(clock, sh(2026, 3, 2, 10, 10)), sh(2026, 3, 2, 10, 20), SH)
    clock = resume(pause(clock, sh(2026, 3, 2, 10, 30)), sh(2026, 3, 2, 11, 0), SH)
    assert clock.paused_seconds == 40 * 60
    assert clock.deadline == sh(2026, 3, 2, 11, 40)
    assert remaining(clock, sh(2026, 3, 2, 11, 0)) == timedelta(minutes=40)


def test_remaining_is_frozen_while_paused() -> None:
    clock = pause(start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH), sh(2026, 3, 2, 10, 45))
    assert remaining(clock, sh(2026, 3, 2, 10, 45)) == timedelta(minutes=15)
    assert remaining(clock, sh(2026, 3, 2, 23, 0)) == timedelta(minutes=15)
    assert not is_due(clock, sh(2026, 3, 2, 23, 0))
    assert band(clock, sh(2026, 3, 2, 23, 0)) == "paused"
    assert band_changes_at(clock, sh(2026, 3, 2, 23, 0)) is None


def test_pause_and_resume_refuse_the_wrong_state() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH)
    with pytest.raises(ValueError):
        resume(clock, sh(2026, 3, 2, 10, 5), SH)
    paused = pause(clock, sh(2026, 3, 2, 10, 10))
    with pytest.raises(ValueError):
        pause(paused, sh(2026, 3, 2, 10, 15))
    with pytest.raises(ValueError):
        resume(paused, sh(2026, 3, 2, 10, 5), SH)  # before the pause


def test_business_hours_resume_carries_the_business_time_left() -> None:
    # 120 business minutes from Friday 16:00: 90 on Friday, 30 on Monday.
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 6, 16), 120, SH, HOURS)
    assert clock.deadline == sh(2026, 3, 9, 9, 30)
    paused = pause(clock, sh(2026, 3, 6, 17))  # 60 business minutes left
    assert remaining(paused, sh(2026, 3, 8, 12)) == timedelta(minutes=60)
    resumed = resume(paused, sh(2026, 3, 9, 10), SH)
    assert resumed.deadline == sh(2026, 3, 9, 11)
    assert remaining(resumed, sh(2026, 3, 9, 10)) == timedelta(minutes=60)


def test_business_clock_overdue_when_paused_stays_overdue_by_the_same_time() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 30, SH, HOURS)
    paused = pause(clock, sh(2026, 3, 2, 10, 40))
    resumed = resume(paused, sh(2026, 3, 3, 9, 0), SH)
    assert remaining(resumed, sh(2026, 3, 3, 9, 0)) == -timedelta(minutes=10)


def test_business_remaining_does_not_drain_overnight() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 17), 60, SH, HOURS)
    assert remaining(clock, sh(2026, 3, 2, 17, 30)) == timedelta(minutes=30)
    assert remaining(clock, sh(2026, 3, 3, 8, 59)) == timedelta(minutes=30)
    assert band(clock, sh(2026, 3, 3, 3, 0)) == "green"  # exactly half left at night


def test_meet_on_or_before_the_deadline_is_met_and_after_it_breached() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    assert meet(clock, sh(2026, 3, 2, 10, 14)).state == ClockState.MET
    assert meet(clock, sh(2026, 3, 2, 10, 15)).state == ClockState.MET
    late = meet(clock, sh(2026, 3, 2, 10, 18))
    assert late.state == ClockState.BREACHED
    assert late.ended_at == sh(2026, 3, 2, 10, 18)
    assert remaining(late, sh(2026, 3, 3)) == -timedelta(minutes=3)  # frozen: how late it was
    assert band(late, sh(2026, 3, 3)) == "breached"


def test_meeting_a_paused_clock_judges_it_as_of_the_pause() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH)
    on_time = meet(pause(clock, sh(2026, 3, 2, 10, 30)), sh(2026, 3, 2, 15))
    assert on_time.state == ClockState.MET
    assert remaining(on_time, sh(2026, 3, 4)) == timedelta(minutes=30)
    late = meet(pause(clock, sh(2026, 3, 2, 11, 5)), sh(2026, 3, 2, 15))
    assert late.state == ClockState.BREACHED


def test_stopped_clocks_cannot_be_stopped_again() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    cancelled = cancel(clock, sh(2026, 3, 2, 10, 5))
    assert cancelled.state == ClockState.CANCELLED
    assert not is_due(cancelled, sh(2026, 3, 3))
    assert band(cancelled, sh(2026, 3, 3)) == "green"
    for fn in (meet, cancel, pause):
        with pytest.raises(ValueError):
            fn(cancelled, sh(2026, 3, 2, 10, 6))
    with pytest.raises(ValueError):
        meet(meet(clock, sh(2026, 3, 2, 10, 6)), sh(2026, 3, 2, 10, 7))


def test_is_due_from_the_deadline_on() -> None:
    clock = start_clock(ClockKind.DISPATCH, sh(2026, 3, 2, 10), 5, SH)
    assert not is_due(clock, sh(2026, 3, 2, 10, 4, 59))
    assert is_due(clock, sh(2026, 3, 2, 10, 5))
    assert is_due(clock, sh(2026, 3, 2, 11))


def test_remaining_goes_negative_when_overdue() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    assert remaining(clock, sh(2026, 3, 2, 10, 5)) == timedelta(minutes=10)
    assert remaining(clock, sh(2026, 3, 2, 10, 20)) == -timedelta(minutes=5)


def test_share_left_is_clamped_to_zero_and_one() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 20, SH)
    assert share_left(clock, sh(2026, 3, 2, 9)) == 1.0  # clock skew: before the start
    assert share_left(clock, sh(2026, 3, 2, 10, 5)) == pytest.approx(0.75)
    assert share_left(clock, sh(2026, 3, 2, 11)) == 0.0


def test_band_thresholds_exactly_at_half_and_a_fifth() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 100, SH)
    assert band(clock, sh(2026, 3, 2, 10)) == "green"
    assert band(clock, sh(2026, 3, 2, 10, 50)) == "green"  # exactly 50 % left: not yet under half
    assert band(clock, sh(2026, 3, 2, 10, 50) + US) == "amber"
    assert band(clock, sh(2026, 3, 2, 11, 20)) == "amber"  # exactly 20 % left
    assert band(clock, sh(2026, 3, 2, 11, 20) + US) == "red"
    assert band(clock, sh(2026, 3, 2, 11, 40) - US) == "red"
    assert band(clock, sh(2026, 3, 2, 11, 40)) == "breached"  # the deadline itself: time is up


def test_band_changes_at_gives_each_next_colour_change() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 100, SH)
    at = band_changes_at(clock, sh(2026, 3, 2, 10))
    assert at == sh(2026, 3, 2, 10, 50) + US and band(clock, at) == "amber"
    at = band_changes_at(clock, at)
    assert at == sh(2026, 3, 2, 11, 20) + US and band(clock, at) == "red"
    at = band_changes_at(clock, at)
    assert at == sh(2026, 3, 2, 11, 40) and band(clock, at) == "breached"
    assert band_changes_at(clock, at) is None


def test_band_changes_at_accounts_for_pauses() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 100, SH)
    clock = resume(pause(clock, sh(2026, 3, 2, 10, 10)), sh(2026, 3, 2, 10, 40), SH)
    assert band_changes_at(clock, sh(2026, 3, 2, 10, 40)) == sh(2026, 3, 2, 11, 20) + US


def test_band_changes_at_skips_closed_hours_in_business_mode() -> None:
    clock = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 16), 120, SH, HOURS)
    assert clock.deadline == sh(2026, 3, 3, 9, 30)
    amber_at = band_changes_at(clock, sh(2026, 3, 2, 16))
    assert amber_at == sh(2026, 3, 2, 17) + US
    red_at = band_changes_at(clock, amber_at)
    assert red_at == sh(2026, 3, 3, 9, 6) + US  # 24 minutes left: 6 on Monday evening are closed
    assert band(clock, sh(2026, 3, 3, 9, 6)) == "amber"
    assert band(clock, red_at) == "red"
    assert band_changes_at(clock, red_at) == clock.deadline


def test_next_deadline_is_the_earliest_running_clock() -> None:
    a = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    b = start_clock(ClockKind.COMPLETION, sh(2026, 3, 2, 10), 60, SH)
    c = start_clock(ClockKind.DISPATCH, sh(2026, 3, 2, 10), 5, SH)
    assert next_deadline([a, b, c]) == sh(2026, 3, 2, 10, 5)
    assert next_deadline([a, b, pause(c, sh(2026, 3, 2, 10, 1))]) == sh(2026, 3, 2, 10, 15)
    assert next_deadline([meet(a, sh(2026, 3, 2, 10, 2)), b]) == sh(2026, 3, 2, 11)
    assert next_deadline([]) is None


def test_rule_uses_site_business_hours_only_when_it_asks_for_them() -> None:
    friday = sh(2026, 3, 6, 17)
    calendar = SlaRule(None, None, None, None, None, None, ClockKind.COMPLETION, 60)
    business = SlaRule(None, None, None, None, None, None, ClockKind.COMPLETION, 60, business_hours=True)
    assert start_clock_for_rule(calendar, friday, site_hours=HOURS).deadline == sh(2026, 3, 6, 18)
    assert start_clock_for_rule(business, friday, site_hours=HOURS).deadline == sh(2026, 3, 9, 9, 30)
    assert start_clock_for_rule(business, friday).deadline == sh(2026, 3, 6, 18)  # site has no hours


def test_clock_is_immutable() -> None:
    clock = start_clock(ClockKind.ARRIVAL, sh(2026, 3, 2, 10), 15, SH)
    assert isinstance(clock, Clock)
    with pytest.raises(AttributeError):
        clock.deadline = sh(2026, 3, 3)  # type: ignore[misc]
