"""The board's view model: cards grouped by stage, header, alerts, on call, footer, next change.

Pure: built from the rows of one query (server/persistence/board.py) and `now`, with no locale
(headings are msgids, times are numbers; the templates translate). Everything on it is a step
function of time: `next_change` is the earliest instant at which anything would look different
by time alone, and `signature()` is the same in every process that sees the same data between
two such instants. That is what makes the board's version agree across web processes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple
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


class Card(NamedTuple):
    """One card as it looks between two changes: its own render-cache key (with the locale).

    A named tuple: the board makes up to 200 of these per look, and tuples are cheap to make and hash.
    """

    key: str  # the order's row as the database sent it: same row, same band, same card
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
    alerting: bool
    pinned: bool  # entrapment or an open alert: on top of its column
    band: str  # green | amber | red | breached | paused | none
    # How the countdown is shown: "live" — the browser counts from deadline_ms (calendar time,
    # or any clock once overdue); "frozen" — seconds left when paused (negative: overdue);
    # "business" — whole business minutes left; "" — no clock.
    cd_mode: str
    deadline_ms: int | None
    cd_value: int


@dataclass(frozen=True, slots=True)
class Row:
    """An open order's row made ready once (parsed, its clock built, the customer masked), and
    reused by every rebuild and read while the row stays the same."""

    key: str
    stage: str | None
    clock: clocks.Clock | None
    static: tuple[Any, ...]  # Card's fields from key to pinned
    pinned: bool
    running_deadline: float | None  # the running clock's deadline (POSIX seconds), for the counts
    # The last look worked out, as [valid from, valid until (None: for ever), card]: a card looks
    # the same until its next band turn, so most cards of a changed board are not worked out again.
    look: list[Any] = field(default_factory=list, compare=False, hash=False)


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
        h = hashlib.blake2b(digest_size=8)
        for col in self.columns:
            h.update(f"{col.key}\x1d{col.total}\x1d".encode())
            for c in col.cards:
                h.update(f"{c.key}\x1e{c.band}\x1e{c.cd_mode}\x1e{c.cd_value}\x1f".encode())
        rest = (
            self.project_code,
            self.project_name,
            self.tz,
            self.alerts,
            self.open_count,
            self.breached_count,
            self.due_soon_count,
            self.rota,
            self.footer,
        )
        h.update(repr(rest).encode())
        return h.hexdigest()


def parse_ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def format_span(delta: timedelta, day_unit: str = "d") -> str:
    """Return 05:07, 1:05:07 or 2d 03:04 for the absolute value of `delta` (the tablet's countdown)."""
    s = int(abs(delta.total_seconds()))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d}{day_unit} {h:02d}:{m:02d}"
    if h:
        return f"{h}:{m:02d}:{sec:02d}"
    return f"{m:02d}:{sec:02d}"


def format_minutes(delta: timedelta, translate: Callable[..., str]) -> str:
    """A server-rendered countdown (refreshed each minute): 42 min, 3.5 h (the tablet's)."""
    minutes = int(abs(delta.total_seconds()) // 60)
    if minutes < 100:
        return translate(N_("%(n)s min"), n=minutes)
    return translate(N_("%(n)s h"), n=f"{minutes / 60:.1f}".rstrip("0").rstrip("."))


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


def prepare(data: BoardData, memo: Mapping[str, Row] | None = None) -> list[Row]:
    """The rows of `data` made ready, taking the unchanged ones from `memo` (an earlier read's)."""
    memo = memo or {}
    tz = ZoneInfo(data.tz)
    try:
        hours = parse_business_hours(data.business_hours) if data.business_hours else None
    except Exception:
        hours = None
    salt = f"{data.tz}|{data.business_hours}|"  # the clocks depend on the project's zone and hours
    out = []
    for raw in data.cards:
        text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, default=str)
        key = salt + text
        row = memo.get(key)
        if row is None:
            row = _prepare_row(key, json.loads(text) if isinstance(raw, str) else raw, tz, hours)
        out.append(row)
    return out


def _prepare_row(key: str, row: Mapping[str, Any], tz: ZoneInfo, hours: BusinessHours | None) -> Row:
    clk = _clock_of(row, tz, hours)
    alerting = bool(row.get("alerting"))
    pinned = alerting or row["kind"] == "entrapment"
    static = (
        key,
        row["id"],
        row["number"],
        row["kind"],
        row["category"],
        "entrapment" if row["kind"] == "entrapment" else ICONS.get(row["category"], "other"),
        row["urgency"],
        row["status"],
        row["location"],
        row["summary"],
        mask_customer(row.get("reporter_name"), row.get("reporter_phone")),
        row.get("assignee_name") or row.get("department_name") or "",
        clk.kind.value if clk else None,
        alerting,
        pinned,
    )
    running = clk.deadline.timestamp() if clk is not None and clk.state == ClockState.RUNNING else None
    return Row(key, STAGE_OF.get(row["status"]), clk, static, pinned, running)


def _card(row: Row, now: datetime) -> tuple[Card, datetime | None]:
    """The card at `now` and the instant its look changes by time alone."""
    if row.look:
        since, until, card = row.look
        if since <= now and (until is None or now < until):
            return card, until
    card, until = _look(row, now)
    row.look[:] = [now, until, card]
    return card, until


def _look(row: Row, now: datetime) -> tuple[Card, datetime | None]:
    band, mode, deadline_ms, value, change = "none", "", None, 0, None
    clk = row.clock
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
    return Card(*row.static, band, mode, deadline_ms, value), change


@dataclass(frozen=True)
class AlertProgress:
    """Who has been paged and where the chain stands: "paged 张师傅、刘师傅 · step 2/4 · round 2"."""

    paged: tuple[str, ...]
    step: int
    steps: int
    round: int


def alert_progress(chain: Any, fired: int) -> AlertProgress:
    """The wall's and the tablet's reading of alerts.chain after `fired` (next_step_index) steps."""
    names, steps = paged_names(chain, fired)
    if fired > steps > 0:
        names, _n = paged_names(chain, steps)  # every step has paged once at least
    step, rnd = chain_position(fired, steps)
    return AlertProgress(tuple(names), step, steps, rnd)


def _alert(a: Mapping[str, Any]) -> AlertView:
    progress = alert_progress(a.get("chain"), int(a.get("next_step_index") or 0))
    names, step, steps, rnd = progress.paged, progress.step, progress.steps, progress.round
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


def build(data: BoardData, now: datetime, rows: list[Row] | None = None) -> BoardView:
    """Lay the board out as it looks at `now` (`rows`: prepare(data), when already made)."""
    if rows is None:
        rows = prepare(data)
    by_stage: dict[str, list[Row]] = {key: [] for key, _h, _s in STAGES}
    breached = due_soon = 0
    # The next change as POSIX seconds: hundreds of candidates, compared as floats.
    now_ts, soon = now.timestamp(), DUE_SOON.total_seconds()
    upcoming = data.reload_at.timestamp() if data.reload_at else float("inf")
    for row in rows:
        if row.stage is None:
            continue
        by_stage[row.stage].append(row)
        deadline = row.running_deadline
        if deadline is not None:
            # The header's counts: breached from the deadline on, due soon 15 minutes before it.
            if now_ts >= deadline:
                breached += 1
            elif deadline - now_ts <= soon:
                due_soon += 1
                upcoming = min(upcoming, deadline)
            else:
                upcoming = min(upcoming, deadline - soon)
    next_change = datetime.fromtimestamp(upcoming, UTC) if upcoming != float("inf") else None
    columns = []
    for key, heading, _s in STAGES:
        stage_rows = by_stage[key]
        stage_rows.sort(key=lambda r: not r.pinned)  # stable: the query's most urgent first otherwise
        cards = []
        for row in stage_rows[:MAX_CARDS_PER_COLUMN]:  # only the cards sent need their look
            card, change = _card(row, now)
            cards.append(card)
            next_change = _earliest(next_change, change)
        columns.append(Column(key, heading, tuple(cards), len(stage_rows)))
    tz = ZoneInfo(data.tz)
    rota, rota_change = rota_at(data.shifts, now, tz)
    next_change = _earliest(next_change, rota_change)
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
        next_change=next_change,
    )
