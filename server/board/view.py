"""The board's view model: cards grouped by stage, header figures, alerts, on-call, next change.

Pure: built from the rows of one query (server/persistence/board.py) and `now`. Colours come
from server/domain/clocks.py (band, band_changes_at); the earliest instant at which anything on
the board would look different by time alone is returned as `next_change`, so the board's
version can move when a colour band turns without any write to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.board.masking import mask_customer
from server.domain import clocks
from server.domain.messages import N_
from server.domain.sla_policy import BusinessHours, parse_business_hours
from server.domain.vocab import ClockKind, ClockState
from server.persistence.board import BoardData

# (key, heading msgid, statuses) in the order the columns stand on the wall.
STAGES: list[tuple[str, str, tuple[str, ...]]] = [
    ("dispatch", N_("To dispatch / grab"), ("new", "pooled")),
    ("assigned", N_("Dispatched / accepted"), ("assigned", "accepted")),
    ("on_site", N_("On site / in progress"), ("on_site",)),
    ("paused", N_("Paused"), ("paused", "unfinished")),
    ("callback", N_("Awaiting callback"), ("done", "callback")),
]
STAGE_OF = {s: key for key, _h, statuses in STAGES for s in statuses}
MAX_CARDS_PER_COLUMN = 30  # the rest is counted ("+12"), a wall cannot show more anyway
DUE_SOON = timedelta(minutes=15)
# A business-hours countdown is rendered by the server (the browser cannot know the site's hours),
# so its board must be refreshed at least this often.
SERVER_COUNTDOWN_REFRESH = timedelta(seconds=60)

ICONS = {
    "electrical": "electrical",
    "plumbing": "plumbing",
    "building": "building",
    "elevator": "elevator",
    "fire": "fire",
    "security_systems": "security",
    "security_check": "security",
    "hvac": "hvac",
    "network": "network",
    "enquiry": "enquiry",
    "suggestion": "enquiry",
    "complaint": "complaint",
    "loss": "loss",
    "admin_affair": "building",
    "help": "help",
    "cleaning": "cleaning",
    "greening": "greening",
}


@dataclass(frozen=True)
class Card:
    id: int
    number: str
    kind: str
    category: str
    icon: str
    urgency: str
    status: str
    location: str
    summary: str
    customer: str
    assignee: str
    clock_kind: str | None
    band: str  # green | amber | red | breached | paused | none
    deadline_ms: int | None  # the browser counts down from it; None: the text below is final
    countdown: str
    alerting: bool


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    cards: list[Card]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.cards)


@dataclass(frozen=True)
class AlertView:
    id: int
    kind: str
    title: str
    number: str | None
    location: str | None
    paged: list[str]
    step: int
    steps: int
    started_at: datetime | None
    stuck: bool


@dataclass
class BoardView:
    project_code: str
    project_name: str
    tz: str
    columns: list[Column]
    alerts: list[AlertView]
    open_count: int
    breached_count: int
    due_soon_count: int
    on_call: str | None
    on_call_backup: str | None
    next_change: datetime | None


def parse_ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def format_span(delta: timedelta, day_unit: str = "d") -> str:
    """Return 05:07, 1:05:07 or 2d 03:04 for the absolute value of `delta` (board.js formats alike)."""
    s = int(abs(delta.total_seconds()))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d}{day_unit} {h:02d}:{m:02d}"
    if h:
        return f"{h}:{m:02d}:{sec:02d}"
    return f"{m:02d}:{sec:02d}"


def _clock_of(row: Mapping[str, Any], tz: ZoneInfo, hours: BusinessHours | None) -> clocks.Clock | None:
    if not row.get("clock_kind") or not row.get("deadline"):
        return None
    # Emergency orders never run on business hours (server/persistence/clocks.py does the same).
    bh = hours if row.get("clock_business_hours") and row.get("urgency") != "emergency" else None
    try:
        kind = ClockKind(row["clock_kind"])
    except ValueError:
        return None
    return clocks.Clock(
        kind=kind,
        started_at=parse_ts(row["started_at"]),
        deadline=parse_ts(row["deadline"]),  # type: ignore[arg-type]
        state=ClockState(row["clock_state"]),
        paused_at=parse_ts(row.get("paused_at")),
        paused_seconds=int(row.get("paused_seconds") or 0),
        business_hours=bh,
        minutes=int(row.get("minutes") or 0),
        tz=tz,
    )


def _earliest(*instants: datetime | None) -> datetime | None:
    return min((t for t in instants if t is not None), default=None)


def _names(step: Any) -> list[str]:
    """Recipient names of one frozen escalation step, whatever shape the chain snapshot has."""
    if isinstance(step, str):
        return [step]
    if not isinstance(step, dict):
        return []
    out: list[str] = []
    for key in ("display_name", "name", "recipient_name", "target_name"):
        if isinstance(step.get(key), str) and step[key]:
            out.append(step[key])
            break
    for key in ("recipients", "to", "targets", "users"):
        if isinstance(step.get(key), list):
            for item in step[key]:
                out.extend(_names(item))
    return out


def paged_names(chain: Any, step_index: int) -> tuple[list[str], int]:
    """Return (names paged so far, number of steps) from alerts.chain; ([], 0) when it has no steps."""
    steps = chain.get("steps") if isinstance(chain, dict) else chain
    if not isinstance(steps, list):
        return [], 0
    names: list[str] = []
    for step in steps[: max(step_index, 0)]:
        for n in _names(step):
            if n not in names:
                names.append(n)
    return names, len(steps)


def _covers(starts: time, ends: time, t: time) -> bool:
    if starts < ends:
        return starts <= t < ends
    return t >= starts or t < ends  # crosses midnight (ends <= starts)


def on_call(
    shifts: Iterable[Mapping[str, Any]], local_now: datetime
) -> tuple[str | None, str | None, datetime]:
    """Return (engineer, backup, next change) from the rota: the shift covering the time of day now.

    Kept simple: a weekend shift wins on Saturday and Sunday, holiday shifts are not told apart.
    """
    rows = [
        dict(s, starts=time.fromisoformat(s["starts"]), ends=time.fromisoformat(s["ends"])) for s in shifts
    ]
    t = local_now.time().replace(tzinfo=None)
    covering = [s for s in rows if _covers(s["starts"], s["ends"], t)]
    weekend = local_now.weekday() >= 5
    covering.sort(
        key=lambda s: (s["kind"] != ("weekend" if weekend else ""), s["kind"] in ("weekend", "holiday"))
    )
    chosen = covering[0] if covering else None
    # The answer can change at any shift boundary and at midnight (weekday → weekend).
    day = local_now.date()
    candidates = [datetime.combine(day + timedelta(days=1), time(0), tzinfo=local_now.tzinfo)]
    for s in rows:
        for b in (s["starts"], s["ends"]):
            at = datetime.combine(day, b, tzinfo=local_now.tzinfo)
            candidates.append(at if at > local_now else at + timedelta(days=1))
    if chosen is None:
        return None, None, min(candidates)
    return chosen["primary_name"], chosen.get("backup_name"), min(candidates)


def _identity(msgid: str, **params: object) -> str:
    return msgid % params if params else msgid


def format_minutes(delta: timedelta, translate: Callable[..., str]) -> str:
    """A server-rendered countdown (refreshed each minute): 42 min, 3.5 h."""
    minutes = int(abs(delta.total_seconds()) // 60)
    if minutes < 100:
        return translate(N_("%(n)s min"), n=minutes)
    return translate(N_("%(n)s h"), n=f"{minutes / 60:.1f}".rstrip("0").rstrip("."))


def build(
    data: BoardData, now: datetime, *, day_unit: str = "d", translate: Callable[..., str] = _identity
) -> BoardView:
    """Lay the board out as it looks at `now`."""
    tz = ZoneInfo(data.tz)
    try:
        hours = parse_business_hours(data.business_hours) if data.business_hours else None
    except Exception:
        hours = None
    by_stage: dict[str, list[Card]] = {key: [] for key, _h, _s in STAGES}
    breached = due_soon = 0
    next_change: datetime | None = None
    for row in data.cards:
        stage = STAGE_OF.get(row["status"])
        if stage is None:
            continue
        clk = _clock_of(row, tz, hours)
        band, deadline_ms, countdown = "none", None, ""
        if clk is not None:
            band = clocks.band(clk, now)
            left = clocks.remaining(clk, now)
            countdown = format_span(left, day_unit)
            if clk.state == ClockState.RUNNING:
                if clk.business_hours is None:
                    deadline_ms = int(clk.deadline.timestamp() * 1000)
                elif left > timedelta(0):
                    # Business time left: the browser cannot count it down, so the server does, by the minute.
                    countdown = format_minutes(left, translate)
                    next_change = _earliest(next_change, now + SERVER_COUNTDOWN_REFRESH)
                next_change = _earliest(next_change, clocks.band_changes_at(clk, now))
                if band == "breached":
                    breached += 1
                elif clk.deadline - now <= DUE_SOON:
                    due_soon += 1
                else:
                    next_change = _earliest(next_change, clk.deadline - DUE_SOON)
        by_stage[stage].append(
            Card(
                id=row["id"],
                number=row["number"],
                kind=row["kind"],
                category=row["category"],
                icon="entrapment" if row["kind"] == "entrapment" else ICONS.get(row["category"], "other"),
                urgency=row["urgency"],
                status=row["status"],
                location=row["location"],
                summary=row["summary"],
                customer=mask_customer(row.get("reporter_name"), row.get("reporter_phone")),
                assignee=row.get("assignee_name") or row.get("department_name") or "",
                clock_kind=clk.kind.value if clk else None,
                band=band,
                deadline_ms=deadline_ms,
                countdown=countdown,
                alerting=bool(row.get("alerting")),
            )
        )
    columns = [
        Column(key, translate(heading), by_stage[key][:MAX_CARDS_PER_COLUMN], len(by_stage[key]))
        for key, heading, _s in STAGES
    ]
    alerts = []
    for a in data.alerts:
        names, steps = paged_names(a.get("chain"), int(a.get("next_step_index") or 0))
        alerts.append(
            AlertView(
                id=a["id"],
                kind=a["kind"],
                title=a["title"],
                number=a.get("number"),
                location=a.get("location"),
                paged=names,
                step=int(a.get("next_step_index") or 0),
                steps=steps,
                started_at=parse_ts(a.get("started_at")),
                stuck=a.get("stuck_since") is not None,
            )
        )
    engineer, backup, rota_change = on_call(data.shifts, now.astimezone(tz))
    next_change = _earliest(next_change, rota_change)
    return BoardView(
        project_code=data.code,
        project_name=data.name,
        tz=data.tz,
        columns=columns,
        alerts=alerts,
        open_count=sum(c.total for c in columns),
        breached_count=breached,
        due_soon_count=due_soon,
        on_call=engineer,
        on_call_backup=backup,
        next_change=next_change,
    )
