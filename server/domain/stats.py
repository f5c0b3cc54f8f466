"""Report arithmetic (DOMAIN.md §8): periods, rates from counts, safe division. Pure.

The database counts; this module divides. Every rate is ``None`` when its denominator is
zero ("no data" on screen, "—" in tables and exports), so an empty month never divides by zero.

Definitions (also shown on the report page):

- Orders belong to a period by ``received_at`` in the project's own time zone; cancelled
  orders are left out of every count and denominator (a cancellation is not service given).
- 及时率 timeliness = timely / timed: *timed* orders had at least one arrival or completion
  clock; *timely* ones had none of those clocks breached (recorded, judged late when
  stopped, or still running past its deadline). A reopened order's later runs count too.
- 完成率 completion = done / received; *done* = reached done at some point (``finished_at``).
- 回访率 callback = called back / done.
- 满意率 satisfaction = (满意 + 基本满意) / rated; 满意 only where the project's
  ``count_fairly_satisfied`` is off.
- 返修率 rework = reopened / done; *reopened* = the order was reopened (``reopen_count > 0``);
  the lifecycle reopens the same order, so the original is the one counted.
- 一次修复率 first-time fix = done, never unfinished and never reopened / done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, timedelta

from server.domain.messages import N_, DomainError

MAX_DAYS = 731  # "at most two years", leap day included
# Completion time histogram edges in hours: <1, 1–4, 4–8, 8–24, 24–72, ≥72.
HISTOGRAM_EDGES_HOURS: tuple[int, ...] = (1, 4, 8, 24, 72)

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def ratio(numerator: float, denominator: float) -> float | None:
    """Return numerator / denominator, or None when there is nothing to divide by."""
    if not denominator:
        return None
    return numerator / denominator


def percent(value: float | None, digits: int = 1) -> str:
    """Return "93.5%" or "—" for no data."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f}%"


@dataclass(frozen=True)
class Counts:
    """What the SQL counts for one group of orders (one row of a breakdown)."""

    received: int = 0
    done: int = 0
    timed: int = 0
    timely: int = 0
    called_back: int = 0
    rated: int = 0
    satisfied: int = 0
    fairly: int = 0
    unsatisfied: int = 0
    fairly_counted: int = 0  # 基本满意 in projects that count it as satisfied
    reworked: int = 0
    first_fix: int = 0
    open: int = 0
    man_hours: float = 0.0

    @classmethod
    def from_row(cls, row: dict[str, object]) -> Counts:
        """Build from a result row, taking the columns that match; NULL counts as 0."""
        values: dict[str, object] = {}
        for f in fields(cls):
            v = row.get(f.name)
            values[f.name] = float(v or 0) if f.name == "man_hours" else int(v or 0)  # type: ignore[call-overload]
        return cls(**values)  # type: ignore[arg-type]

    @property
    def satisfied_counted(self) -> int:
        return self.satisfied + self.fairly_counted


def satisfied_count(satisfied: int, fairly: int, count_fairly: bool) -> int:
    """Return how many ratings count as satisfied under a project's setting."""
    return satisfied + (fairly if count_fairly else 0)


@dataclass(frozen=True)
class Rates:
    timeliness: float | None
    completion: float | None
    callback: float | None
    satisfaction: float | None
    rework: float | None
    first_fix: float | None


def rates(c: Counts) -> Rates:
    """Return the six rates of one group of counts."""
    return Rates(
        timeliness=ratio(c.timely, c.timed),
        completion=ratio(c.done, c.received),
        callback=ratio(c.called_back, c.done),
        satisfaction=ratio(c.satisfied_counted, c.rated),
        rework=ratio(c.reworked, c.done),
        first_fix=ratio(c.first_fix, c.done),
    )


# ---- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Calendar days [start, end] inclusive, in the project's time zone."""

    start: date
    end: date

    @property
    def end_exclusive(self) -> date:
        return self.end + timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def month(self) -> str | None:
        """Return "YYYY-MM" when the period is exactly one calendar month."""
        if self.start.day == 1 and self.end_exclusive == _next_month(self.start):
            return self.start.strftime("%Y-%m")
        return None


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def month_period(year: int, month: int) -> Period:
    first = date(year, month, 1)
    return Period(first, _next_month(first) - timedelta(days=1))


def last_month(today: date) -> Period:
    """Return the calendar month before `today`'s."""
    prev = today.replace(day=1) - timedelta(days=1)
    return month_period(prev.year, prev.month)


def this_month(today: date) -> Period:
    return Period(today.replace(day=1), today)


def _parse_day(value: str, field: str) -> date:
    value = value.strip()
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid", N_("Invalid date: use the form YYYY-MM-DD"), field=field) from None


def parse_period(month: str | None, start: str | None, end: str | None, today: date) -> Period:
    """Return the period a report asks for: a start–end range, a month, or last month.

    1. A start or an end date asks for a range: both are required, start ≤ end, ≤ 2 years.
    2. Otherwise a month "YYYY-MM".
    3. Otherwise the month before today's.
    """
    start, end, month = (start or "").strip(), (end or "").strip(), (month or "").strip()
    if start or end:
        if not (start and end):
            raise DomainError(
                "invalid", N_("Give both a start and an end date"), field="start" if not start else "end"
            )
        d0, d1 = _parse_day(start, "start"), _parse_day(end, "end")
        if d0 > d1:
            raise DomainError("invalid", N_("The start date must not be after the end date"), field="start")
        if (d1 - d0).days + 1 > MAX_DAYS:
            raise DomainError("invalid", N_("A report covers at most two years"), field="end")
        return Period(d0, d1)
    if month:
        try:
            if not _MONTH.match(month):
                raise ValueError(month)
            y, m = int(month[:4]), int(month[5:])
            if not (1 <= m <= 12 and 1 <= y <= 9998):
                raise ValueError(month)
        except ValueError:
            raise DomainError("invalid", N_("Invalid month: use the form YYYY-MM"), field="month") from None
        return month_period(y, m)
    return last_month(today)


# ---- distributions ------------------------------------------------------------------------


def histogram_buckets(counts_by_bucket: dict[int, int]) -> list[tuple[float, float | None, int]]:
    """Return (from_hours, to_hours or None, count) for every bucket, empty ones included.

    `counts_by_bucket` is keyed by PostgreSQL's width_bucket index over HISTOGRAM_EDGES_HOURS:
    0 below the first edge, len(edges) at or above the last.
    """
    edges = HISTOGRAM_EDGES_HOURS
    out: list[tuple[float, float | None, int]] = []
    for i in range(len(edges) + 1):
        lo = 0.0 if i == 0 else float(edges[i - 1])
        hi = float(edges[i]) if i < len(edges) else None
        out.append((lo, hi, int(counts_by_bucket.get(i, 0))))
    return out


def split_duration(seconds: float | None) -> tuple[str, float] | None:
    """Return (unit, amount) for showing a duration: minutes under 2 h, hours under 3 days, else days."""
    if seconds is None:
        return None
    s = max(0.0, float(seconds))
    if s < 7200:
        return "min", round(s / 60)
    if s < 3 * 86400:
        return "h", round(s / 3600, 1)
    return "d", round(s / 86400, 1)
