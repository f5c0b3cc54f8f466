"""SLA clock arithmetic (DOMAIN.md §5): deadlines, pauses, business hours, board colours.

Pure functions over a frozen ``Clock``; the caller passes ``now`` (never read here), so
tests and the worker drive time explicitly. All datetimes must be timezone-aware;
results are in UTC.

Business hours count only minutes inside the site's window on Chinese working days
(``chinese_calendar`` knows statutory holidays and make-up working days 调休). For a
year the library has no data for (it raises NotImplementedError, e.g. 2027 with
chinesecalendar 1.11.0) we fall back to Monday–Friday: deadlines stay computable,
at worst a holiday counts as a working day until the package is upgraded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from server.domain.sla_policy import BusinessHours, SlaRule
from server.domain.vocab import ClockKind, ClockState

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
# With an appointment the deadline is the appointment; the engineer is expected this much earlier (display only).
ARRIVE_EARLY = timedelta(minutes=5)

Band = Literal["green", "amber", "red", "breached", "paused"]
_STOPPED = frozenset({ClockState.MET, ClockState.BREACHED, ClockState.CANCELLED})
_US = timedelta(microseconds=1)


def _aware(value: datetime, name: str = "now") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


@lru_cache(maxsize=4096)
def is_chinese_workday(day: date) -> bool:
    """Working day per the State Council calendar; Monday–Friday for years the library does not know."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _is_business_day(day: date, hours: BusinessHours) -> bool:
    return hours.days == "daily" or is_chinese_workday(day)


def _windows(from_utc: datetime, tz: ZoneInfo, hours: BusinessHours) -> Iterable[tuple[datetime, datetime]]:
    """Business windows (UTC) ending after ``from_utc``, in order, forever."""
    day = from_utc.astimezone(tz).date() - timedelta(days=1)  # a window may straddle the UTC date
    while True:
        if _is_business_day(day, hours):
            opens = datetime.combine(day, hours.start, tzinfo=tz).astimezone(UTC)
            closes = datetime.combine(day, hours.end, tzinfo=tz).astimezone(UTC)
            if closes > from_utc:
                yield opens, closes
        day += timedelta(days=1)


def _add_business(start_utc: datetime, amount: timedelta, tz: ZoneInfo, hours: BusinessHours) -> datetime:
    if amount <= timedelta(0):
        return start_utc
    left = amount
    for opens, closes in _windows(start_utc, tz, hours):
        cursor = max(start_utc, opens)
        available = closes - cursor
        if left <= available:
            # Ending exactly at closing time stays today, not tomorrow morning.
            return cursor + left
        left -= available
    raise AssertionError("unreachable: business windows never run out")


def business_time_between(
    start: datetime, end: datetime, *, tz: ZoneInfo, business_hours: BusinessHours
) -> timedelta:
    """Business time in [start, end); zero when end <= start."""
    a, b = _aware(start, "start"), _aware(end, "end")
    total = timedelta(0)
    if b <= a:
        return total
    for opens, closes in _windows(a, tz, business_hours):
        if opens >= b:
            break
        total += min(closes, b) - max(opens, a)
    return total


def add_duration(
    start: datetime, minutes: int, *, tz: ZoneInfo, business_hours: BusinessHours | None
) -> datetime:
    """The instant ``minutes`` after ``start``: calendar time, or business time when hours are given."""
    start_utc = _aware(start, "start")
    if minutes < 0:
        raise ValueError(f"minutes must not be negative, got {minutes}")
    if business_hours is None:
        return start_utc + timedelta(minutes=minutes)
    return _add_business(start_utc, timedelta(minutes=minutes), tz, business_hours)


@dataclass(frozen=True, slots=True)
class Clock:
    kind: ClockKind
    started_at: datetime
    deadline: datetime
    state: ClockState
    paused_at: datetime | None = None
    paused_seconds: int = 0
    business_hours: BusinessHours | None = None
    minutes: int = 0  # the budget; with business hours, business minutes
    tz: ZoneInfo = DEFAULT_TZ  # the project's zone: business hours are local wall-clock times
    ended_at: datetime | None = None  # when met, breached or cancelled: freezes remaining()


def start_clock(
    kind: ClockKind,
    now: datetime,
    minutes: int,
    tz: ZoneInfo = DEFAULT_TZ,
    business_hours: BusinessHours | None = None,
    appointment_at: datetime | None = None,
) -> Clock:
    """A running clock; an arrival with an appointment is due at the appointment itself."""
    now_utc = _aware(now)
    if appointment_at is not None:
        if kind != ClockKind.ARRIVAL:
            raise ValueError(f"only the arrival clock follows an appointment, not {kind}")
        due = _aware(appointment_at, "appointment_at")
        # The appointment is a wall-clock promise to the customer: business hours do not apply.
        budget = max(0, int((due - now_utc).total_seconds()) // 60)
        return Clock(kind, now_utc, due, ClockState.RUNNING, minutes=budget, tz=tz)
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    due = add_duration(now_utc, minutes, tz=tz, business_hours=business_hours)
    return Clock(
        kind, now_utc, due, ClockState.RUNNING, business_hours=business_hours, minutes=minutes, tz=tz
    )


def start_clock_for_rule(
    rule: SlaRule,
    now: datetime,
    *,
    tz: ZoneInfo = DEFAULT_TZ,
    site_hours: BusinessHours | None = None,
    appointment_at: datetime | None = None,
) -> Clock:
    """Start the clock a resolved rule sets; the site's hours count only if the rule asks for them."""
    hours = site_hours if rule.business_hours else None
    appointment = appointment_at if rule.clock == ClockKind.ARRIVAL else None
    return start_clock(rule.clock, now, rule.minutes, tz, hours, appointment)


def pause(clock: Clock, now: datetime) -> Clock:
    if clock.state != ClockState.RUNNING:
        raise ValueError(f"cannot pause a {clock.state} clock")
    return dataclasses.replace(clock, state=ClockState.PAUSED, paused_at=_aware(now))


def resume(clock: Clock, now: datetime, tz: ZoneInfo | None = None) -> Clock:
    """Restart a paused clock: the deadline moves by the time spent paused."""
    if clock.state != ClockState.PAUSED or clock.paused_at is None:
        raise ValueError(f"cannot resume a {clock.state} clock")
    now_utc = _aware(now)
    if now_utc < clock.paused_at:
        raise ValueError("cannot resume before the pause")
    zone = tz or clock.tz
    # Whole seconds, so that the calendar budget (deadline - started - paused) stays exact.
    paused = timedelta(seconds=int((now_utc - clock.paused_at).total_seconds()))
    if clock.business_hours is not None and clock.paused_at < clock.deadline:
        # Nights and weekends while paused do not count either way: carry the business time left.
        left = business_time_between(
            clock.paused_at, clock.deadline, tz=zone, business_hours=clock.business_hours
        )
        deadline = _add_business(now_utc, left, zone, clock.business_hours)
    else:
        deadline = clock.deadline + paused
    return dataclasses.replace(
        clock,
        state=ClockState.RUNNING,
        deadline=deadline,
        paused_at=None,
        paused_seconds=clock.paused_seconds + int(paused.total_seconds()),
        tz=zone,
    )


def meet(clock: Clock, now: datetime) -> Clock:
    """Stop the clock because its goal was reached: met on or before the deadline, else breached."""
    if clock.state in _STOPPED:
        raise ValueError(f"cannot meet a {clock.state} clock")
    now_utc = _aware(now)
    # A paused clock is judged as it stood when paused (its deadline moves with the pause),
    # and resumed first so that remaining() freezes at a consistent value.
    judged_at, deadline = now_utc, clock.deadline
    if clock.state == ClockState.PAUSED and clock.paused_at is not None:
        judged_at = clock.paused_at
        clock = resume(clock, now_utc)
    state = ClockState.MET if judged_at <= deadline else ClockState.BREACHED
    return dataclasses.replace(clock, state=state, ended_at=now_utc)


def cancel(clock: Clock, now: datetime) -> Clock:
    if clock.state in _STOPPED:
        raise ValueError(f"cannot cancel a {clock.state} clock")
    now_utc = _aware(now)
    if clock.state == ClockState.PAUSED:
        clock = resume(clock, now_utc)
    return dataclasses.replace(clock, state=ClockState.CANCELLED, ended_at=now_utc)


def is_due(clock: Clock, now: datetime) -> bool:
    """A running clock whose deadline has come (the worker then records the breach)."""
    return clock.state == ClockState.RUNNING and _aware(now) >= clock.deadline


def _frozen_at(clock: Clock, now: datetime) -> datetime:
    if clock.state == ClockState.PAUSED and clock.paused_at is not None:
        return clock.paused_at
    if clock.state in _STOPPED and clock.ended_at is not None:
        return clock.ended_at
    return _aware(now)


def _remaining_at(clock: Clock, at: datetime) -> timedelta:
    if at >= clock.deadline or clock.business_hours is None:
        # Overdue is always shown in real time ("how long overdue").
        return clock.deadline - at
    return business_time_between(at, clock.deadline, tz=clock.tz, business_hours=clock.business_hours)


def remaining(clock: Clock, now: datetime) -> timedelta:
    """Time left (business time in business-hours mode); negative when overdue; frozen while paused."""
    return _remaining_at(clock, _frozen_at(clock, now))


def _total(clock: Clock) -> timedelta:
    if clock.business_hours is not None:
        return timedelta(minutes=clock.minutes)
    return clock.deadline - clock.started_at - timedelta(seconds=clock.paused_seconds)


def share_left(clock: Clock, now: datetime) -> float:
    """Remaining / total budget, clamped to 0..1."""
    left, total = remaining(clock, now), _total(clock)
    if total <= timedelta(0):
        return 1.0 if left > timedelta(0) else 0.0
    return min(1.0, max(0.0, left / total))


def _band_for(left: timedelta, total: timedelta) -> Band:
    # Exact integer comparisons (no floats): under half left is amber, under a fifth red.
    if left <= timedelta(0):
        return "breached"
    if left * 5 < total:
        return "red"
    if left * 2 < total:
        return "amber"
    return "green"


def band(clock: Clock, now: datetime) -> Band:
    """The board colour. A deadline reached is breached; a met or cancelled clock shows green."""
    if clock.state == ClockState.PAUSED:
        return "paused"
    if clock.state == ClockState.BREACHED:
        return "breached"
    if clock.state in _STOPPED:
        return "green"
    return _band_for(remaining(clock, now), _total(clock))


def band_changes_at(clock: Clock, now: datetime) -> datetime | None:
    """The first instant (microsecond) after which band() differs by time alone; None if it never will."""
    if clock.state != ClockState.RUNNING:
        return None
    now_utc = _aware(now)
    left, total = remaining(clock, now_utc), _total(clock)
    current = _band_for(left, total)
    if current == "breached":
        return None
    # The largest remaining time that already shows the next colour (integer microseconds).
    total_us = total // _US
    threshold = {
        "green": max(0, (total_us - 1) // 2),
        "amber": max(0, (total_us - 1) // 5),
        "red": 0,
    }[current]
    if threshold == 0:
        return clock.deadline
    spend = left - timedelta(microseconds=threshold)
    if clock.business_hours is None:
        return now_utc + spend
    return _add_business(now_utc, spend, clock.tz, clock.business_hours)


def next_deadline(clocks: Iterable[Clock]) -> datetime | None:
    """The earliest deadline among running clocks (when the worker must next look)."""
    return min((c.deadline for c in clocks if c.state == ClockState.RUNNING), default=None)
