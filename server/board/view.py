"""The board's view model: cards grouped by stage, header, alerts, on call, footer, next change.

Pure: built from the rows of one query (server/persistence/board.py) and `now`, with no locale
(headings are msgids, times are numbers; the templates translate). Everything on it is a step
function of time: `next_change` is the earliest instant at which anything would look different
by time alone, and `signature()` is the same in every process that sees the same data between
two such instants. That is what makes the board's version agree across web processes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.board.masking import mask_customer
from server.domain import clocks, oncall
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
# Cards sent per column: more than a 4K wall holds (the browser hides what does not fit whole
# and counts it into "+N"); the rest is only counted.
MAX_CARDS_PER_COLUMN = 40
DUE_SOON = timedelta(minutes=15)
GAP_HORIZON = timedelta(hours=24)  # rota gaps this far ahead are flagged on the board
# A business-hours countdown is shown in whole minutes by the server (the browser cannot know
# the site's hours): the board changes when the minute does.
_MINUTE = timedelta(minutes=1)

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


@dataclass(frozen=True, slots=True)
class Card:
    """One card as it looks between two changes: its own render-cache key (with the locale)."""

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
    # How the countdown is shown: "live" — the browser counts from deadline_ms (calendar time,
    # or any clock once overdue); "frozen" — seconds left when paused (negative: overdue);
    # "business" — whole business minutes left; "" — no clock.
    cd_mode: str
    deadline_ms: int | None
    cd_value: int
    alerting: bool
    pinned: bool  # entrapment or an open alert: on top of its column


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    heading: str  # msgid
    cards: tuple[Card, ...]
    total: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.cards)


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    kind: str
    clock: str | None  # a breach alert's clock kind
    location: str
    summary: str
    number: str | None
    paged: tuple[str, ...]
    step: int  # the step last paged, 1-based within the chain; 0 before the first
    steps: int
    round: int  # how many times the chain has started over, 1 on its first pass
    started_ms: int
    stuck: bool
    next_step_at: datetime | None


@dataclass(frozen=True, slots=True)
class RotaView:
    on_call: str | None
    backup: str | None
    gap_now: bool  # nobody on call now
    gap: tuple[datetime, datetime] | None  # the first gap within GAP_HORIZON (maybe the one now)


@dataclass(frozen=True, slots=True)
class Footer:
    """The shift lists' counts (server/persistence/worklists.py defines them)."""

    slips_out: int
    end_of_shift: int
    handover: int
    over_24h: int


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
    rota: RotaView
    footer: Footer
    next_change: datetime | None = field(default=None, compare=False)

    @property
    def on_call(self) -> str | None:
        return self.rota.on_call

    @property
    def on_call_backup(self) -> str | None:
        return self.rota.backup

    def signature(self) -> str:
        """A short digest of everything shown (not of next_change): the board's version."""
        shown = (
            self.project_code,
            self.project_name,
            self.tz,
            self.columns,
            self.alerts,
            self.open_count,
            self.breached_count,
            self.due_soon_count,
            self.rota,
            self.footer,
        )
        return hashlib.blake2b(repr(shown).encode(), digest_size=8).hexdigest()


def parse_ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


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
        started_at=parse_ts(row["started_at"]),  # type: ignore[arg-type]
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


def paged_names(chain: Any, fired: int) -> tuple[list[str], int]:
    """Return (names paged so far, number of steps) from alerts.chain after `fired` steps."""
    steps = chain.get("steps") if isinstance(chain, dict) else chain
    if not isinstance(steps, list):
        return [], 0
    names: list[str] = []
    for step in steps[: max(fired, 0)]:
        for n in _names(step):
            if n not in names:
                names.append(n)
    return names, len(steps)


def chain_position(fired: int, steps: int) -> tuple[int, int]:
    """(step within the chain, round) of the last step paged; the chain repeats after its last.

    alerts.next_step_index counts the steps fired so far; 6 fired of a 4-step chain is step 2
    of round 2, not "6/4".
    """
    if steps <= 0 or fired <= 0:
        return 0, 1
    last = fired - 1
    return last % steps + 1, last // steps + 1


# ---- the on-call rota (the rules are server/domain/oncall.py's) ---------------------------------


def _rota_shifts(rows: list[Mapping[str, Any]]) -> list[oncall.RotaShift]:
    out = []
    for r in rows:
        out.append(
            oncall.RotaShift(
                id=r["id"],
                project_id=r["project_id"],
                kind=r["kind"],
                starts=time.fromisoformat(r["starts"]),
                ends=time.fromisoformat(r["ends"]),
                primary_id=r["primary_id"],
                backup_id=r.get("backup_id"),
                supervisor_id=r.get("supervisor_id"),
                manager_id=r.get("manager_id"),
            )
        )
    return out


def _boundaries(shifts: list[oncall.RotaShift], local_now: datetime) -> list[datetime]:
    """Instants after `local_now` at which the shift on duty may change: shift edges, midnights."""
    tz = local_now.tzinfo
    out = []
    for d in range(-1, 3):
        day = local_now.date() + timedelta(days=d)
        out.append(datetime.combine(day, time(0), tz))
        for s in shifts:
            out.append(datetime.combine(day, s.starts, tz))
            out.append(datetime.combine(day, s.ends, tz))
    return [b for b in out if b > local_now]


def _rota_at(rows: list[Mapping[str, Any]], now: datetime, tz: ZoneInfo) -> tuple[RotaView, datetime | None]:
    shifts = _rota_shifts(rows)
    names = {r["id"]: (r.get("primary_name"), r.get("backup_name")) for r in rows}
    local = now.astimezone(tz)
    shift = oncall.on_call_at(shifts, now, tz) if shifts else None
    primary, backup = names.get(shift.id, (None, None)) if shift else (None, None)
    horizon = now + GAP_HORIZON
    # From yesterday's midnight (a gap may be running) to beyond the horizon (one may come into view).
    gaps = [
        g for g in oncall.find_gaps(shifts, tz, days=4, start=local.date() - timedelta(days=1)) if g[1] > now
    ]
    near = [g for g in gaps if g[0] <= horizon]
    changes = _boundaries(shifts, local)
    for a, b in gaps:
        changes.extend(t for t in (a - GAP_HORIZON, a, b) if t > now)
    gap = near[0] if near else None
    if shift is None and (gap is None or gap[0] > now):
        gap = (now, gap[1] if gap else now)  # find_gaps looks every 15 minutes; nobody is on call now
    return RotaView(primary, backup, shift is None, gap), min(changes, default=None)


_rota_memo: dict[tuple[str, str], tuple[datetime, datetime | None, RotaView]] = {}


def rota_at(rows: list[Mapping[str, Any]], now: datetime, tz: ZoneInfo) -> tuple[RotaView, datetime | None]:
    """Who is on call at `now`, the first rota gap within GAP_HORIZON, and when that may change.

    Constant between two changes, so remembered per rota until the next one (a rebuild of the
    board every few seconds does not walk the calendar again).
    """
    key = (repr(rows), str(tz))
    hit = _rota_memo.get(key)
    if hit is not None and hit[0] <= now and (hit[1] is None or now < hit[1]):
        return hit[2], hit[1]
    view, change = _rota_at(rows, now, tz)
    if len(_rota_memo) > 256:
        _rota_memo.clear()
    _rota_memo[key] = (now, change, view)
    return view, change


# ---- the whole board ---------------------------------------------------------------------------


def _card(row: Mapping[str, Any], clk: clocks.Clock | None, now: datetime) -> tuple[Card, datetime | None]:
    """The card at `now` and the instant its look changes by time alone."""
    band, mode, deadline_ms, value, change = "none", "", None, 0, None
    if clk is not None:
        band = clocks.band(clk, now)
        left = clocks.remaining(clk, now)
        if clk.state == ClockState.PAUSED:
            mode, value = "frozen", int(left.total_seconds())
        elif clk.state == ClockState.RUNNING:
            change = clocks.band_changes_at(clk, now)
            if clk.business_hours is None or left <= timedelta(0):
                mode, deadline_ms = "live", int(clk.deadline.timestamp() * 1000)
            else:
                mode, value = "business", int(left // _MINUTE)
                # The shown minute ticks over after the spare seconds of this one, in business
                # time: never sooner in wall time (a look that changes nothing is cheap).
                spare = left - value * _MINUTE + timedelta(microseconds=1)
                change = _earliest(change, now + max(spare, timedelta(seconds=1)))
    alerting = bool(row.get("alerting"))
    card = Card(
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
        cd_mode=mode,
        deadline_ms=deadline_ms,
        cd_value=value,
        alerting=alerting,
        pinned=alerting or row["kind"] == "entrapment",
    )
    return card, change


def _alert(a: Mapping[str, Any]) -> AlertView:
    fired = int(a.get("next_step_index") or 0)
    names, steps = paged_names(a.get("chain"), fired)
    if fired > steps > 0:
        names, _n = paged_names(a.get("chain"), steps)  # every step has paged once at least
    step, rnd = chain_position(fired, steps)
    started = parse_ts(a.get("started_at"))
    chain = a.get("chain") if isinstance(a.get("chain"), dict) else {}
    return AlertView(
        id=a["id"],
        kind=a["kind"],
        clock=chain.get("clock") if a["kind"] == "breach" else None,
        location=a.get("location") or "",
        summary=a.get("summary") or a.get("title") or "",
        number=a.get("number"),
        paged=tuple(names),
        step=step,
        steps=steps,
        round=rnd,
        started_ms=int(started.timestamp() * 1000) if started else 0,
        stuck=a.get("stuck_since") is not None,
        next_step_at=parse_ts(a.get("next_step_at")),
    )


def build(data: BoardData, now: datetime) -> BoardView:
    """Lay the board out as it looks at `now`."""
    tz = ZoneInfo(data.tz)
    try:
        hours = parse_business_hours(data.business_hours) if data.business_hours else None
    except Exception:
        hours = None
    by_stage: dict[str, list[Card]] = {key: [] for key, _h, _s in STAGES}
    breached = due_soon = 0
    next_change: datetime | None = data.reload_at
    for row in data.cards:
        stage = STAGE_OF.get(row["status"])
        if stage is None:
            continue
        clk = _clock_of(row, tz, hours)
        card, change = _card(row, clk, now)
        next_change = _earliest(next_change, change)
        if clk is not None and clk.state == ClockState.RUNNING:
            if card.band == "breached":
                breached += 1
            elif clk.deadline - now <= DUE_SOON:
                due_soon += 1
            else:
                next_change = _earliest(next_change, clk.deadline - DUE_SOON)
        by_stage[stage].append(card)
    columns = []
    for key, heading, _s in STAGES:
        cards = by_stage[key]
        cards.sort(key=lambda c: not c.pinned)  # stable: the query's most urgent first otherwise
        columns.append(Column(key, heading, tuple(cards[:MAX_CARDS_PER_COLUMN]), len(cards)))
    rota, rota_change = rota_at(data.shifts, now, tz)
    alerts = [_alert(a) for a in data.alerts]
    return BoardView(
        project_code=data.code,
        project_name=data.name,
        tz=data.tz,
        columns=columns,
        alerts=alerts,
        open_count=sum(c.total for c in columns),
        breached_count=breached,
        due_soon_count=due_soon,
        rota=rota,
        footer=Footer(**data.shift_counts),
        next_change=_earliest(next_change, rota_change),
    )
