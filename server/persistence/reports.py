"""Report figures by SQL aggregates (sql/queries/report_*.sql); no order is loaded into Python.

Every breakdown query is `report_orders.sql` (the period's orders and their clock facts)
followed by the breakdown's own SELECT. The rate breakdowns (overview, project, team,
engineer, category) share one GROUPING SETS query: one scan instead of five.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.domain import stats
from server.persistence.queries import QUERIES

RATE_BREAKDOWNS = ("overview", "project", "team", "engineer", "category")
UNFINISHED_LIMIT = 500
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+-[0-9A-Fa-f]+(-[0-9]+)?$")


@cache
def _query(name: str) -> TextClause:
    head = (QUERIES / "report_orders.sql").read_text()
    return text(head + "\n" + (QUERIES / f"report_{name}.sql").read_text())


@cache
def _plain(name: str) -> TextClause:
    return text((QUERIES / f"report_{name}.sql").read_text())


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


@dataclass
class Report:
    projects: list[ProjectRow]
    period: stats.Period
    now: datetime
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


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(tz))


def _params(projects: list[ProjectRow], period: stats.Period, now: datetime) -> dict[str, Any]:
    # Several projects are reported over the same instants, those of the first one's zone
    # (in practice all are Asia/Shanghai); constant bounds keep the planner's estimates right.
    tz = projects[0].tz
    return {
        "project_ids": [p.id for p in projects],
        "start_at": local_midnight(period.start, tz),
        "end_at": local_midnight(period.end_exclusive, tz),
        "now": now,
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


async def rate_breakdowns(
    conn: AsyncConnection, projects: list[ProjectRow], period: stats.Period, now: datetime
) -> dict[str, list[Row]]:
    """Return {breakdown: rows} for overview, project, team, engineer and category."""
    out: dict[str, list[Row]] = {b: [] for b in RATE_BREAKDOWNS}
    for r in (await conn.execute(_query("rates"), _params(projects, period, now))).mappings():
        key, name = _name(r["breakdown"], dict(r))
        p50 = r["completion_avg"]
        out[r["breakdown"]].append(
            Row(key, name, stats.Counts.from_row(dict(r)), float(p50) if p50 is not None else None)
        )
    return out


async def durations(
    conn: AsyncConnection, projects: list[ProjectRow], period: stats.Period, now: datetime
) -> dict[str, dict[str, Any]]:
    """Return {"response"|"arrival"|"completion": {"n", "p50", "p90"}} in seconds (None: no data)."""
    r = (await conn.execute(_query("durations"), _params(projects, period, now))).mappings().one()
    out: dict[str, dict[str, Any]] = {}
    for m in ("response", "arrival", "completion"):
        pct = r[f"{m}_pct"] or [None, None]
        out[m] = {"n": int(r[f"{m}_n"]), "p50": pct[0], "p90": pct[1]}
    return out


async def histogram(
    conn: AsyncConnection, projects: list[ProjectRow], period: stats.Period, now: datetime
) -> list[tuple[float, float | None, int]]:
    params = {**_params(projects, period, now), "edges": [float(e) for e in stats.HISTOGRAM_EDGES_HOURS]}
    rows = (await conn.execute(_query("distribution"), params)).all()
    return stats.histogram_buckets({int(b): int(n) for b, n in rows})


async def breaches(
    conn: AsyncConnection, projects: list[ProjectRow], period: stats.Period, now: datetime
) -> list[dict[str, Any]]:
    rows = (await conn.execute(_query("breaches"), _params(projects, period, now))).mappings().all()
    return [dict(r) for r in rows]


async def unfinished(
    conn: AsyncConnection,
    projects: list[ProjectRow],
    period: stats.Period,
    now: datetime,
    limit: int = UNFINISHED_LIMIT,
) -> tuple[list[dict[str, Any]], int]:
    """Return (oldest orders not done 24 h after they came in, how many in all)."""
    params = {**_params(projects, period, now), "lim": limit}
    rows = [dict(r) for r in (await conn.execute(_query("unfinished"), params)).mappings().all()]
    return rows, int(rows[0]["total"]) if rows else 0


async def _tune(conn: AsyncConnection) -> None:
    # The default 4 MB work_mem sends a month of 100k orders to disk sorts; this stays per transaction.
    await conn.execute(text("SET LOCAL work_mem = '64MB'"))


async def full_report(
    engine: AsyncEngine, projects: list[ProjectRow], period: stats.Period, now: datetime
) -> Report:
    """Run every breakdown for the projects and period at once; return the report.

    The breakdowns run concurrently on their own connections, all reading one snapshot
    (pg_export_snapshot), so the figures agree with each other exactly.
    """
    async with engine.connect() as main:
        main = await main.execution_options(isolation_level="REPEATABLE READ")
        async with main.begin():
            await _tune(main)
            snapshot = str((await main.execute(text("SELECT pg_export_snapshot()"))).scalar_one())
            if not _SNAPSHOT_ID.match(snapshot):  # it is spliced into SQL below: never trust blindly
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")

            async def on_snapshot(fn: Callable[..., Awaitable[Any]]) -> Any:
                async with engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="REPEATABLE READ")
                    async with conn.begin():
                        await conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
                        await _tune(conn)
                        return await fn(conn, projects, period, now)

            breakdowns, durs, hist, brs, (unf, unf_total) = await asyncio.gather(
                rate_breakdowns(main, projects, period, now),
                on_snapshot(durations),
                on_snapshot(histogram),
                on_snapshot(breaches),
                on_snapshot(unfinished),
            )
    return Report(
        projects=projects,
        period=period,
        now=now,
        breakdowns=breakdowns,
        durations=durs,
        histogram=hist,
        breaches=brs,
        unfinished=unf,
        unfinished_total=unf_total,
    )


@dataclass(frozen=True)
class PanelFigures:
    month: stats.Counts
    today: stats.Counts
    unfinished_24h: int


async def panel(conn: AsyncConnection, project: ProjectRow, today: date, now: datetime) -> PanelFigures:
    """Return this month's and today's counts for the wall board's panel."""
    params = {
        "project_id": project.id,
        "month_at": local_midnight(today.replace(day=1), project.tz),
        "today_at": local_midnight(today, project.tz),
        "end_at": local_midnight(today + timedelta(days=1), project.tz),
        "now": now,
    }
    rows = (await conn.execute(_plain("panel"), params)).mappings().all()
    by = {bool(r["is_today"]): dict(r) for r in rows}
    return PanelFigures(
        month=stats.Counts.from_row(by.get(False, {})),
        today=stats.Counts.from_row(by.get(True, {})),
        unfinished_24h=int(by.get(False, {}).get("unfinished_24h") or 0),
    )
