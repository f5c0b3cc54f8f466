"""Report arithmetic (DOMAIN.md §8): periods, rates from counts, safe division. Pure.

The database counts (each definition once, for the report, its exports and the wall board's
panel: an order's facts in order_facts_source of sql/migrations/0014_report_facts.sql, judged
at the report's moment in sql/queries/report_orders.sql); this module divides, and words the
definitions the page shows (DEFINITIONS, NOTES: the same rules as the SQL, sentence by
sentence). Every rate is ``None`` when its denominator is zero ("no data" on screen, "—" in
tables and exports), so an empty month never divides by zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, timedelta

from server.domain.messages import N_, DomainError

MAX_DAYS = 731  # "at most two years", leap day included
# Reports cover these years: anything outside is a typo, and would overflow date arithmetic.
MIN_YEAR, MAX_YEAR = 2000, 2100
# Completion time histogram edges in hours: <1, 1–4, 4–8, 8–24, 24–72, ≥72.
HISTOGRAM_EDGES_HOURS: tuple[int, ...] = (1, 4, 8, 24, 72)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")
_FOCUS = re.compile(r"(team|engineer):([0-9]{1,9})")

# (attribute of Rates, name, definition) in the order the page shows them; worded from the SQL.
DEFINITIONS: list[tuple[str, str, str]] = [
    (
        "timeliness",
        N_("Timeliness rate"),
        N_(
            "Orders whose arrival and completion clocks were all met / orders whose clocks are decided "
            "(all met, or one missed). A clock is missed when its breach was recorded, it stopped late, "
            "it is running (or was cancelled) past its deadline, or it was paused after it. Orders whose clocks "
            "are still running or paused in time are pending and left out of both numbers. A clock cancelled "
            "in time (a transfer, a cancellation) is left out; a later run (a new appointment, a reopening) "
            "counts too."
        ),
    ),
    ("completion", N_("Completion rate"), N_("Orders done (at some point) / orders received.")),
    ("callback", N_("Callback rate"), N_("Done orders called back / done orders.")),
    (
        "satisfaction",
        N_("Satisfaction rate"),
        N_(
            "(Satisfied + fairly satisfied) / rated callbacks of done orders; satisfied only in projects "
            "that do not count “fairly satisfied”."
        ),
    ),
    ("rework", N_("Rework rate"), N_("Done orders that were reopened (返修) / done orders.")),
    (
        "first_fix",
        N_("First-time fix rate"),
        N_("Done orders never reported unfinished and never reopened / done orders."),
    ),
]
# The seeds' targets: every done order called back; at least 90 % satisfied.
TARGETS: dict[str, float] = {"callback": 1.0, "satisfaction": 0.9}
# How orders are counted at all; shown with the definitions.
NOTES: list[tuple[str, str]] = [
    (
        N_("Period"),
        N_(
            "Orders count in the period by the time they were received, in the project's time zone. "
            "An order cancelled without being done is left out of every figure; one cancelled after it "
            "was done still counts as done."
        ),
    ),
    (
        N_("Team"),
        N_("An order's team is the team it was transferred to, otherwise the team of its engineer."),
    ),
    (
        N_("Times"),
        N_(
            "Response: received → first accepted; arrival: received → first on site (later re-dispatches "
            "do not reset them); completion: received → done. Median and 90th percentile."
        ),
    ),
    (
        N_("Unfinished over 24 h"),
        N_(
            "Orders, whenever received (those carried over from before the period included), that at the "
            "end of the period (now, while it runs) had been received more than 24 h earlier and were "
            "neither done nor cancelled, as on the wall board."
        ),
    ),
]


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
    timed: int = 0  # orders whose arrival/completion clocks are decided: all met, or one missed
    timely: int = 0  # all met
    timing_pending: int = 0  # orders whose arrival/completion clocks are still undecided
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


def _in_range(year: int, field: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DomainError(
            "invalid",
            N_("Reports cover the years %(min)s to %(max)s"),
            field=field,
            min=MIN_YEAR,
            max=MAX_YEAR,
        )


def _parse_day(value: str, field: str) -> date:
    """The whole value must be YYYY-MM-DD (nothing before or after), a real day in range."""
    if not _DAY.fullmatch(value):
        raise DomainError("invalid", N_("Invalid date: use the form YYYY-MM-DD"), field=field)
    _in_range(int(value[:4]), field)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError("invalid", N_("Invalid date: use the form YYYY-MM-DD"), field=field) from None


def parse_period(month: str | None, start: str | None, end: str | None, today: date) -> Period:
    """Return the period a report asks for: a start–end range, a month, or last month.

    1. A start or an end date asks for a range: both are required, start ≤ end, ≤ 2 years
       (MAX_DAYS days, both ends included), years MIN_YEAR–MAX_YEAR.
    2. Otherwise a month "YYYY-MM" in those years.
    3. Otherwise the month before today's.
    Values are taken whole (surrounding blanks aside): "2025-05-01junk" is refused, not cut.
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
        if not _MONTH.fullmatch(month) or not 1 <= int(month[5:]) <= 12:
            raise DomainError("invalid", N_("Invalid month: use the form YYYY-MM"), field="month")
        _in_range(int(month[:4]), "month")
        return month_period(int(month[:4]), int(month[5:]))
    return last_month(today)


def parse_focus(value: str | None) -> tuple[str, int] | None:
    """Return ("team" | "engineer", id) from "team:3" / "engineer:12", None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    m = _FOCUS.fullmatch(value)
    if not m:
        raise DomainError("invalid", N_("Choose a team or an engineer from the list"), field="focus")
    return m.group(1), int(m.group(2))


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
