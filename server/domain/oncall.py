"""The on-call rota (DOMAIN.md §7): who is on call at a moment, and when nobody is.

Precedence: a statutory holiday's shift, then a weekend's (any other day off: Saturday and
Sunday that are not 调休 make-up working days), then the day or night shift by time of day.
A holiday or weekend shift replaces the ordinary ones of its date when one exists. A shift
that ends at or before it starts crosses midnight and belongs to the date on which it started.

Who is on call only changes at a shift's start or end or at midnight (a new date may be a
different kind of day), so the rota is evaluated exactly at those instants: gaps are exact to
the minute, not sampled.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.domain.clocks import is_chinese_workday
from server.domain.messages import N_, DomainError

KINDS = ("day", "night", "weekend", "holiday")
#: How far ahead the admin page and the board look for gaps: far enough to see the next
#: statutory holiday's shifts in most months.
GAP_HORIZON_DAYS = 31


@dataclass(frozen=True)
class RotaShift:
    id: int | None
    project_id: int
    kind: str  # "day" | "night" | "weekend" | "holiday"
    starts: time
    ends: time  # ends <= starts: crosses midnight
    primary_id: int
    backup_id: int | None = None
    supervisor_id: int | None = None
    manager_id: int | None = None

    @property
    def crosses_midnight(self) -> bool:
        return self.ends <= self.starts

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> RotaShift:
        """A shift from a database row or its JSON (times as `time` or "HH:MM[:SS]")."""

        def _t(v: Any) -> time:
            return v if isinstance(v, time) else time.fromisoformat(str(v))

        return cls(
            id=row.get("id"),
            project_id=int(row.get("project_id") or 0),
            kind=str(row["kind"]),
            starts=_t(row["starts"]),
            ends=_t(row["ends"]),
            primary_id=int(row["primary_id"]),
            backup_id=row.get("backup_id"),
            supervisor_id=row.get("supervisor_id"),
            manager_id=row.get("manager_id"),
        )


@dataclass(frozen=True)
class Duty:
    """A period with one answer to "who is on call": `shift` None is a gap."""

    begins: datetime
    ends: datetime
    shift: RotaShift | None


@functools.lru_cache(maxsize=4096)
def day_kind(day: date) -> str:
    """'holiday' (a statutory holiday), 'weekend' (any other day off) or 'workday' (incl. 调休)."""
    try:
        import chinese_calendar

        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if on_holiday and name:
            return "holiday"
    except NotImplementedError:  # a year the library does not know: weekdays work
        pass
    return "workday" if is_chinese_workday(day) else "weekend"


_PRECEDENCE = {
    "holiday": ("holiday", "weekend", "day", "night"),
    "weekend": ("weekend", "day", "night"),
    "workday": ("day", "night"),
}


def _span(shift: RotaShift, start_day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(start_day, shift.starts, tz)
    end_day = start_day + timedelta(days=1) if shift.crosses_midnight else start_day
    return begin, datetime.combine(end_day, shift.ends, tz)


def on_call_at(shifts: list[RotaShift], at: datetime, tz: ZoneInfo) -> RotaShift | None:
    """The shift on duty at `at` (aware), or None when the rota has a gap."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(tz)
    for start_day in (local.date(), local.date() - timedelta(days=1)):  # a night started yesterday
        for kind in _PRECEDENCE[day_kind(start_day)]:
            candidates = [s for s in shifts if s.kind == kind]
            if not candidates:
                continue
            for s in candidates:
                begin, end = _span(s, start_day, tz)
                if begin <= local < end:
                    return s
            if kind in ("holiday", "weekend"):
                break  # this date has its own special shifts: the ordinary ones do not apply
    return None


def _changes(shifts: list[RotaShift], begin: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    """Every instant in (begin, end) at which the answer of on_call_at may change."""
    first, last = (
        begin.astimezone(tz).date() - timedelta(days=1),
        end.astimezone(tz).date() + timedelta(days=1),
    )
    marks: set[datetime] = set()
    day = first
    while day <= last:
        marks.add(datetime.combine(day, time(0), tz))
        for s in shifts:
            marks.add(datetime.combine(day, s.starts, tz))
            marks.add(datetime.combine(day, s.ends, tz))
        day += timedelta(days=1)
    return sorted(m for m in marks if begin < m < end)


def duty_periods(shifts: list[RotaShift], begin: datetime, end: datetime, tz: ZoneInfo) -> list[Duty]:
    """Who is on call from `begin` to `end`, as consecutive periods (merged when unchanged)."""
    marks = _changes(shifts, begin, end, tz)
    out: list[Duty] = []
    for a, b in zip([begin, *marks], [*marks, end], strict=True):
        shift = on_call_at(shifts, a, tz)
        if out and out[-1].shift == shift:
            out[-1] = Duty(out[-1].begins, b, shift)
        else:
            out.append(Duty(a, b, shift))
    return out


def find_gaps(
    shifts: list[RotaShift], tz: ZoneInfo, days: int = GAP_HORIZON_DAYS, start: date | None = None
) -> list[tuple[datetime, datetime]]:
    """Periods in the `days` days from `start` (project time, midnight) with nobody on call."""
    start = start or datetime.now(tz).date()
    begin = datetime.combine(start, time(0), tz)
    return [
        (d.begins, d.ends)
        for d in duty_periods(shifts, begin, begin + timedelta(days=days), tz)
        if d.shift is None
    ]


def next_change(
    shifts: list[RotaShift], at: datetime, tz: ZoneInfo, within: timedelta = timedelta(days=8)
) -> datetime:
    """When the answer of on_call_at(at) next changes (a board redraws then); at + within at most."""
    periods = duty_periods(shifts, at, at + within, tz)
    return periods[0].ends


def validate_shift(
    kind: str, starts: time | None, ends: time | None, primary_id: int | None, backup_id: int | None
) -> None:
    if kind not in KINDS:
        raise DomainError("invalid", N_("Unknown value %(value)s"), field="kind", value=str(kind)[:20])
    if starts is None:
        raise DomainError("invalid", N_("This field is required"), field="starts")
    if ends is None:
        raise DomainError("invalid", N_("This field is required"), field="ends")
    if starts == ends and kind in ("day", "night"):
        raise DomainError("invalid", N_("A shift must not start and end at the same time"), field="ends")
    if not primary_id:
        raise DomainError("invalid", N_("Name the engineer on call"), field="primary_id")
    if backup_id is not None and backup_id == primary_id:
        raise DomainError("invalid", N_("The backup must be someone else"), field="backup_id")
