"""Report figures by SQL aggregates (sql/queries/report_*.sql); no order is loaded into Python.

They read order_facts (sql/migrations/0014_report_facts.sql): one narrow row per order with the
facts a report counts, kept by triggers that mark changed orders and brought up to date by
`flush_facts` before each report and wall-board panel. `report_orders.sql` holds the read-side
definitions once (the period's facts judged at now, the orders unfinished over 24 h); each section
(rates, durations, histogram, breaches, unfinished) is a SELECT over it. The whole report is ONE
statement, the sections aggregated to JSON side by side: one connection, one snapshot, so the
figures agree with each other exactly and a burst of reports cannot drain the pool. The rate
breakdowns (overview, project, team, engineer, category) share one GROUPING SETS.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.domain import stats
from server.persistence.queries import QUERIES

RATE_BREAKDOWNS = ("overview", "project", "team", "engineer", "category")
UNFINISHED_LIMIT = 500
# Reports computed at once per process: a burst waits here instead of taking the connections the
# board and the desk need (each report holds one connection for a few hundred milliseconds).
CONCURRENT_REPORTS = 3
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _read(name: str) -> str:
    """One report_*.sql file, with the shared count list spliced in where it says {{counts}}
    (where it says {{sums}}, the sum of each of those counts over the rows `x`; where it says
    {{columns}}, those counts of the rows `x` as they are)."""
    body = (QUERIES / f"report_{name}.sql").read_text()
    counts = (QUERIES / "report_counts.sql").read_text().strip()
    names = re.findall(r" AS (\w+),?$", counts, flags=re.M)
    sums = ",\n".join(f"coalesce(sum(x.{n}), 0) AS {n}" for n in names)
    columns = ", ".join(f"x.{n}" for n in names)
    buckets = ",\n".join(
        f"count(*) FILTER (WHERE f.done AND width_bucket(f.completion_s / 3600.0, "
        f"CAST(:edges AS double precision[])) = {i}) AS bucket_{i}"
        for i in range(len(stats.HISTOGRAM_EDGES_HOURS) + 1)
    )
    return (
        body.replace("{{counts}}", counts)
        .replace("{{sums}}", sums)
        .replace("{{columns}}", columns)
        .replace("{{buckets}}", buckets)
    )


@cache
def _full_report_sql() -> TextClause:
    lists = ("rates", "breaches", "unfinished")
    sections = [f"(SELECT coalesce(json_agg(x), '[]') FROM (\n{_read(n)}\n) x) AS {n}" for n in lists]
    sections.append(f"(SELECT row_to_json(x) FROM (\n{_read('durations')}\n) x) AS durations")
    return text(_read("orders") + "\nSELECT\n" + ",\n".join(sections))


@cache
def _panel_sql() -> TextClause:
    return text(_read("orders") + "\n" + _read("panel"))


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(CONCURRENT_REPORTS)
    return gate


@dataclass(frozen=True)
class ProjectRow:
    id: int
    code: str
    name: str
    tz: str
    count_fairly_satisfied: bool


@dataclass
class Row:
    """One line of a rate breakdown: who or what, the counts, and the rates from them."""

    key: Any
    name: str
    counts: stats.Counts
    completion_avg: float | None = None

    @property
    def rates(self) -> stats.Rates:
        return stats.rates(self.counts)


@dataclass(frozen=True)
class Focus:
    """Narrows a report to one team or one engineer (every figure, not just a table); None: everyone."""

    team_id: int | None = None
    engineer_id: int | None = None
    name: str = ""


EVERYONE = Focus()


@dataclass
class Report:
    projects: list[ProjectRow]
    period: stats.Period
    now: datetime
    focus: Focus = EVERYONE
    breakdowns: dict[str, list[Row]] = field(default_factory=dict)
    durations: dict[str, dict[str, Any]] = field(default_factory=dict)
    histogram: list[tuple[float, float | None, int]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    unfinished: list[dict[str, Any]] = field(default_factory=list)
    unfinished_total: int = 0

    @property
    def overview(self) -> Row:
        rows = self.breakdowns.get("overview") or []
        return rows[0] if rows else Row(None, "", stats.Counts())

    @property
    def as_of(self) -> datetime:
        """The moment "unfinished over 24 h" is judged at: the end of the period, or now while it runs."""
        return min(local_midnight(self.period.end_exclusive, self.projects[0].tz), self.now)


async def projects_of(conn: AsyncConnection, project_ids: frozenset[int]) -> list[ProjectRow]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, code, name, tz, count_fairly_satisfied FROM projects "
                    "WHERE id = ANY(CAST(:ids AS integer[])) ORDER BY code"
                ),
                {"ids": sorted(project_ids)},
            )
        )
        .mappings()
        .all()
    )
    return [ProjectRow(**r) for r in rows]


async def focus_choices(
    conn: AsyncConnection, projects: list[ProjectRow]
) -> dict[str, list[tuple[int, str]]]:
    """Return {"team": [(id, name)], "engineer": [(id, name)]}: what a report can be narrowed to."""
    ids = [p.id for p in projects]
    teams = await conn.execute(
        text("SELECT id, name FROM teams WHERE project_id = ANY(CAST(:p AS integer[])) ORDER BY name, id"),
        {"p": ids},
    )
    engineers = await conn.execute(
        text(
            "SELECT DISTINCT s.id, s.display_name FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
            "WHERE sp.project_id = ANY(CAST(:p AS integer[])) AND s.role IN ('engineer', 'handler', 'supervisor') "
            "ORDER BY s.display_name, s.id"
        ),
        {"p": ids},
    )
    return {"team": [(r[0], r[1]) for r in teams], "engineer": [(r[0], r[1]) for r in engineers]}


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(tz))


def _params(
    projects: list[ProjectRow], period: stats.Period, now: datetime, focus: Focus = EVERYONE
) -> dict[str, Any]:
    # Several projects are reported over the same instants, those of the first one's zone
    # (in practice all are Asia/Shanghai); constant bounds keep the planner's estimates right.
    tz = projects[0].tz
    end_at = local_midnight(period.end_exclusive, tz)
    return {
        "project_ids": [p.id for p in projects],
        "fairly_projects": [p.id for p in projects if p.count_fairly_satisfied],
        "start_at": local_midnight(period.start, tz),
        "end_at": end_at,
        "now": now,
        "as_of": min(end_at, now),
        "team_id": focus.team_id,
        "engineer_id": focus.engineer_id,
    }


def _name(breakdown: str, r: dict[str, Any]) -> tuple[Any, str]:
    if breakdown == "project":
        return r["project_id"], r["project_name"]
    if breakdown == "team":
        return r["team_id"], r["team_name"]
    if breakdown == "engineer":
        return r["assignee_id"], r["engineer_name"]
    if breakdown == "category":
        return r["category"], r["category"]
    return None, ""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _rate_rows(rows: list[dict[str, Any]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {b: [] for b in RATE_BREAKDOWNS}
    for r in rows:
        key, name = _name(r["breakdown"], r)
        avg = r["completion_avg"]
        out[r["breakdown"]].append(
            Row(key, name, stats.Counts.from_row(r), float(avg) if avg is not None else None)
        )
    return out


def _durations(r: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    r = r or {}
    out: dict[str, dict[str, Any]] = {}
    for m in ("response", "arrival", "completion"):
        pct = r.get(f"{m}_pct") or [None, None]
        out[m] = {"n": int(r.get(f"{m}_n") or 0), "p50": pct[0], "p90": pct[1]}
    return out


def _histogram(r: dict[str, Any] | None) -> list[tuple[float, float | None, int]]:
    r = r or {}
    n = len(stats.HISTOGRAM_EDGES_HOURS) + 1
    return stats.histogram_buckets({i: int(r.get(f"bucket_{i}") or 0) for i in range(n)})


def _unfinished(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        for k in ("received_at", "promised_at"):
            if r.get(k):
                r[k] = datetime.fromisoformat(r[k])
    return rows


async def flush_facts(conn: AsyncConnection) -> int:
    """Recompute the order_facts of every order changed since the last flush; return how many.

    Run it in a READ COMMITTED transaction of its own, before the report's snapshot (see
    sql/migrations/0014_report_facts.sql); it commits with that transaction.
    """
    return int((await conn.execute(text("SELECT order_facts_flush()"))).scalar_one())


async def _tune(conn: AsyncConnection) -> None:
    # The default 4 MB work_mem sends a month of 100k orders' percentiles to disk sorts; custom
    # plans, because a cached generic plan cannot see how much of the table the period covers.
    await conn.execute(text("SET LOCAL work_mem = '64MB'"))
    await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def full_report(
    engine: AsyncEngine,
    projects: list[ProjectRow],
    period: stats.Period,
    now: datetime,
    focus: Focus = EVERYONE,
) -> Report:
    """Compute every section of the report for the projects, period and focus; return the report.

    One connection (at most CONCURRENT_REPORTS at once per process): the changed orders' facts
    flushed, then one REPEATABLE READ snapshot with every section in one statement.
    """
    params = {
        **_params(projects, period, now, focus),
        "edges": [float(e) for e in stats.HISTOGRAM_EDGES_HOURS],
        "lim": UNFINISHED_LIMIT,
    }
    async with _gate(), engine.connect() as conn:
        async with conn.begin():
            await flush_facts(conn)
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await _tune(conn)
            row = (await conn.execute(_full_report_sql(), params)).mappings().one()
    unfinished = _unfinished(_json(row["unfinished"]))
    return Report(
        projects=projects,
        period=period,
        now=now,
        focus=focus,
        breakdowns=_rate_rows(_json(row["rates"])),
        durations=_durations(_json(row["durations"])),
        histogram=_histogram(_json(row["durations"])),
        breaches=_json(row["breaches"]),
        unfinished=unfinished,
        unfinished_total=int(unfinished[0]["total"]) if unfinished else 0,
    )


@dataclass(frozen=True)
class PanelFigures:
    month: stats.Counts
    today: stats.Counts
    unfinished_24h: int


async def panel(conn: AsyncConnection, project: ProjectRow, today: date, now: datetime) -> PanelFigures:
    """Return this month's and today's counts for the wall board's panel (the report's definitions).

    This month so far is the report's period [1st, today]; unfinished over 24 h is judged at now.
    The caller flushes the changed orders' facts first (`flush_facts`, in a transaction of its own).
    """
    params = {
        **_params([project], stats.this_month(today), now),
        "today_at": local_midnight(today, project.tz),
    }
    await _tune(conn)  # in the caller's transaction: SET LOCAL ends with it
    rows = (await conn.execute(_panel_sql(), params)).mappings().all()
    by = {bool(r["is_today"]): dict(r) for r in rows}
    return PanelFigures(
        month=stats.Counts.from_row(by.get(False, {})),
        today=stats.Counts.from_row(by.get(True, {})),
        unfinished_24h=int(by.get(False, {}).get("unfinished_24h") or 0),
    )
