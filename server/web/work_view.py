"""What the tablet and the triage screen show of each order, and the triage filters.

The countdown and colour band of an order's most urgent clock are computed exactly as the wall
board computes them: the clock is built by server/board/view.py from the same columns and its band
comes from server/domain/clocks.py, so a card is amber on the tablet when it is amber on the wall.
Pure: rows in, values out (no web or database imports).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.board import view as board_view
from server.domain import clocks
from server.domain.messages import N_
from server.domain.sla_policy import BusinessHours, parse_business_hours
from server.domain.vocab import Category, ClockState, Kind, Status

# Triage lists open orders; these are the statuses a supervisor filters by, in lifecycle order
# (`callback` is kept for old data only: no step leads there).
TRIAGE_STATUSES: tuple[Status, ...] = (
    Status.NEW,
    Status.POOLED,
    Status.ASSIGNED,
    Status.ACCEPTED,
    Status.ON_SITE,
    Status.PAUSED,
    Status.UNFINISHED,
    Status.DONE,
)
FILTER_KEYS = ("project", "team", "category", "kind", "status", "breached")
# Form fields that steer the request, never lifecycle inputs.
CONTROL_KEYS = ("_csrf", "number", "version", "selected")


@dataclass(frozen=True)
class Countdown:
    band: str  # green | amber | red | breached | paused | none (server/domain/clocks.py band)
    clock_kind: str | None
    countdown: str  # as of `now`; the browser keeps counting from deadline_ms
    deadline_ms: int | None  # None: the text is final (paused, or a business-hours clock)
    due: str  # the deadline's local time, with the date when it is not today


def business_hours_of(raw: str | None) -> BusinessHours | None:
    """A project's business hours, None when it has none or they do not parse (as the board does)."""
    if not raw:
        return None
    try:
        return parse_business_hours(raw)
    except Exception:
        return None


def due_text(deadline: datetime | None, now: datetime, tz: ZoneInfo) -> str:
    """14:05 when the deadline is today (project time), 11-26 14:05 otherwise."""
    if deadline is None:
        return ""
    local = deadline.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == now.astimezone(tz).date() else "%m-%d %H:%M")


def countdown_of(
    row: Mapping[str, Any],
    now: datetime,
    *,
    tz: ZoneInfo,
    hours: BusinessHours | None,
    translate: Callable[..., str],
    day_unit: str = "d",
) -> Countdown:
    """The most urgent clock of one row (columns as in sql/queries/board.sql), as the board shows it."""
    clk = board_view._clock_of(row, tz, hours)
    if clk is None:
        return Countdown("none", None, "", None, "")
    band = clocks.band(clk, now)
    left = clocks.remaining(clk, now)
    countdown = board_view.format_span(left, day_unit)
    deadline_ms = None
    if clk.state == ClockState.RUNNING:
        if clk.business_hours is None:
            deadline_ms = int(clk.deadline.timestamp() * 1000)
        elif left > timedelta(0):
            countdown = board_view.format_minutes(left, translate)
    return Countdown(band, clk.kind.value, countdown, deadline_ms, due_text(clk.deadline, now, tz))


def annotate(
    rows: Iterable[dict[str, Any]], now: datetime, translate: Callable[..., str], day_unit: str = "d"
) -> None:
    """Put `cd` (a Countdown) on each row; rows carry their project's `tz` and `business_hours`."""
    zones: dict[str, ZoneInfo] = {}
    hours: dict[str | None, BusinessHours | None] = {}
    for r in rows:
        tzname = r.get("tz") or "Asia/Shanghai"
        tz = zones.setdefault(tzname, ZoneInfo(tzname))
        raw = r.get("business_hours")
        if raw not in hours:
            hours[raw] = business_hours_of(raw)
        r["cd"] = countdown_of(r, now, tz=tz, hours=hours[raw], translate=translate, day_unit=day_unit)


@dataclass(frozen=True)
class Filters:
    project: str | None = None
    team: int | None = None
    category: str | None = None
    kind: str | None = None
    status: str | None = None
    breached: bool = False

    def params(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "team": self.team,
            "category": self.category,
            "kind": self.kind,
            "status": self.status,
            "breached": self.breached,
        }

    def query(self) -> dict[str, str]:
        """The filters as form values (what the filter form shows)."""
        out = {k: str(v) for k, v in self.params().items() if v not in (None, False)}
        if self.breached:
            out["breached"] = "1"
        return out


Errors = dict[str, tuple[str, dict[str, object]]]


def parse_filters(
    q: Mapping[str, str], project_codes: Iterable[str], team_ids: Iterable[int]
) -> tuple[Filters, Errors]:
    """The filters asked for, each checked against what the caller may see; bad ones are dropped
    and named in the errors ({field: (msgid, params)})."""
    errors: Errors = {}

    def pick(key: str, choices: Iterable[str]) -> str | None:
        raw = (q.get(key) or "").strip()
        if not raw:
            return None
        if raw in set(choices):
            return raw
        errors[key] = (N_("Unknown value %(value)s"), {"value": raw[:30]})
        return None

    team = None
    raw_team = (q.get("team") or "").strip()
    if raw_team:
        if raw_team.isdigit() and int(raw_team) in set(team_ids):
            team = int(raw_team)
        else:
            errors["team"] = (N_("Unknown value %(value)s"), {"value": raw_team[:30]})
    raw_breached = (q.get("breached") or "").strip()
    if raw_breached not in ("", "0", "1", "on", "true"):
        errors["breached"] = (N_("Unknown value %(value)s"), {"value": raw_breached[:30]})
    filters = Filters(
        project=pick("project", project_codes),
        team=team,
        category=pick("category", (c.value for c in Category)),
        kind=pick("kind", (k.value for k in Kind)),
        status=pick("status", (s.value for s in TRIAGE_STATUSES)),
        breached=raw_breached in ("1", "on", "true"),
    )
    return filters, errors


def split_form(data: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A triage action's form: (filters it came with, lifecycle inputs). The filter form is
    included in every action so the list re-renders filtered; its fields are not inputs."""
    filters = {k: v for k, v in data.items() if k in FILTER_KEYS}
    inputs = {k: v for k, v in data.items() if v != "" and k not in FILTER_KEYS and k not in CONTROL_KEYS}
    return filters, inputs


def parse_targets(data: Mapping[str, str]) -> list[tuple[str, int | None]]:
    """One order (number + version) or a bulk selection ("N1@v1,N2@v2"), in order, without repeats."""
    out: list[tuple[str, int | None]] = []
    if data.get("number"):
        v = (data.get("version") or "").strip()
        out.append((data["number"].strip()[:40], int(v) if v.isdigit() else None))
    for item in (data.get("selected") or "").split(","):
        n, sep, v = item.strip().partition("@")
        if sep and n and v.isdigit() and all(n != m for m, _v in out):
            out.append((n[:40], int(v)))
    return out
