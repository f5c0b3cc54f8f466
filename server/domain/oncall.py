"""The on-call rota (DOMAIN.md §7): who is on call at a moment, and when nobody is.

Precedence: a statutory holiday's shift, then a weekend's (Saturday and Sunday that are not
调休 make-up working days), then the day or night shift by time of day. A shift that ends at or
before it starts crosses midnight and belongs to the date on which it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.clocks import is_chinese_workday
from server.domain.messages import N_, DomainError

KINDS = ("day", "night", "weekend", "holiday")


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


def _day_kind(day: date) -> str:
    """'holiday' (a statutory holiday), 'weekend' (any other day off) or 'workday'."""
    try:
        import chinese_calendar

        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        if on_holiday and name:
            return "holiday"
    except NotImplementedError:  # a year the library does not know: weekdays work
        pass
    return "workday" if is_chinese_workday(day) else "weekend"


def _covers(shift: RotaShift, start_day: date, at: datetime, tz: ZoneInfo) -> bool:
    begin = datetime.combine(start_day, shift.starts, tz)
    end_day = start_day + timedelta(days=1) if shift.crosses_midnight else start_day
    end = datetime.combine(end_day, shift.ends, tz)
    return begin <= at < end


def on_call_at(shifts: list[RotaShift], at: datetime, tz: ZoneInfo) -> RotaShift | None:
    """The shift on duty at `at` (aware), or None when the rota has a gap."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = at.astimezone(tz)
    for start_day in (local.date(), local.date() - timedelta(days=1)):  # a night started yesterday
        day_kind = _day_kind(start_day)
        order = {
            "holiday": ("holiday", "weekend", "day", "night"),
            "weekend": ("weekend", "day", "night"),
            "workday": ("day", "night"),
        }[day_kind]
        for kind in order:
            # A holiday or weekend shift replaces the ordinary ones of that date when it exists.
            candidates = [s for s in shifts if s.kind == kind]
            if not candidates:
                continue
            for s in candidates:
                if _covers(s, start_day, local, tz):
                    return s
            if kind in ("holiday", "weekend"):
                break
    return None


def find_gaps(
    shifts: list[RotaShift], tz: ZoneInfo, days: int = 7, start: date | None = None, step_minutes: int = 15
) -> list[tuple[datetime, datetime]]:
    """Periods in the next `days` days with nobody on call (to flag when saving and on the board)."""
    start = start or datetime.now(tz).date()
    t = datetime.combine(start, time(0), tz)
    end = t + timedelta(days=days)
    gaps: list[tuple[datetime, datetime]] = []
    gap_start: datetime | None = None
    step = timedelta(minutes=step_minutes)
    while t < end:
        if on_call_at(shifts, t, tz) is None:
            gap_start = gap_start or t
        elif gap_start is not None:
            gaps.append((gap_start, t))
            gap_start = None
        t += step
    if gap_start is not None:
        gaps.append((gap_start, end))
    return gaps


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
