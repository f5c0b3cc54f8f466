"""The wall board's reads: one statement per board (sql/queries/board.sql).

The footer's shift-list counts use server/persistence/worklists.py's conditions, put into the
board's statement here, so the board and /shift count the same orders.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.shifts import shift_windows
from server.persistence import worklists
from server.persistence.queries import QUERIES

SHIFT_KEYS = ("slips_out", "end_of_shift", "handover", "over_24h")


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    code: str
    name: str
    tz: str
    desk_opens: time = time(9, 0)
    desk_closes: time = time(17, 30)


@dataclass(frozen=True)
class BoardData:
    project_id: int
    code: str
    name: str
    tz: str
    business_hours: str | None
    cards: list[str] | list[dict[str, Any]]  # one JSON text per open order (dicts in tests)
    alerts: list[dict[str, Any]]
    shifts: list[dict[str, Any]]
    shift_counts: dict[str, int]
    # When the counts above change by time alone (they are counted by the database as of the
    # read, so the board must be read again then); None: not by time.
    reload_at: datetime | None = None
    desk_opens: time = time(9, 0)
    desk_closes: time = time(17, 30)


def _json(value: Any) -> Any:
    # asyncpg hands json columns over as text unless a codec is set on the connection.
    return json.loads(value) if isinstance(value, str | bytes) else value


@cache
def board_sql_text() -> str:
    """board.sql with the shift lists' conditions in place (bound parameters :now, :midnight, …)."""
    counts = worklists.shift_count_columns(
        {"midnight": ":midnight", "now": ":now", "night_start": ":night_start", "morning": ":morning"}
    )
    raw = (QUERIES / "board.sql").read_text()
    return raw.replace("/*shift_counts*/", counts).replace("/*open_unfinished*/", worklists.OPEN_UNFINISHED)


@cache
def board_statement() -> tuple[str, tuple[str, ...]]:
    """board.sql with asyncpg's $n placeholders, and the parameter names in their order."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<![:\w]):(\w+)", number, board_sql_text()), tuple(names)


async def fetch_board(pg: asyncpg.Connection, project: ProjectInfo, now: datetime) -> asyncpg.Record | None:
    """The board's one row, read on the driver's connection: one round trip (no BEGIN, no
    ROLLBACK, no result processing), since this is the read every change of a board costs."""
    sql, names = board_statement()
    values = params(project, now)
    return await pg.fetchrow(sql, *(values[n] for n in names))


def params(project: ProjectInfo, now: datetime) -> dict[str, Any]:
    w = shift_windows(now, project.tz, project.desk_opens, project.desk_closes)
    return {
        "project_id": project.id,
        "now": now,
        "midnight": w["midnight"],
        "night_start": w["night_start"],
        "morning": w["morning"],
    }


def next_window_change(now: datetime, tz: ZoneInfo, desk_closes: time) -> datetime:
    """The next local midnight or desk closing: when shift_windows (hence the counts) moves."""
    local = now.astimezone(tz)
    candidates = (
        datetime.combine(local.date() + timedelta(days=1), time(0), tz),
        datetime.combine(local.date(), desk_closes, tz),
        datetime.combine(local.date() + timedelta(days=1), desk_closes, tz),
    )
    return min(c for c in candidates if c > local)


async def projects(conn: AsyncConnection) -> list[ProjectInfo]:
    rows = await conn.execute(
        text("SELECT id, code, name, tz, desk_opens, desk_closes FROM projects WHERE active ORDER BY code")
    )
    return [ProjectInfo(r.id, r.code, r.name, r.tz, r.desk_opens, r.desk_closes) for r in rows]


async def load(conn: AsyncConnection, project: ProjectInfo, now: datetime) -> BoardData | None:
    """Return the project's open orders, unacknowledged alerts, rota and shift-list counts as of
    `now`, or None for no such project."""
    pg = (await conn.get_raw_connection()).driver_connection
    r = await fetch_board(pg, project, now)
    if r is None:
        return None
    if (r["tz"], r["desk_opens"], r["desk_closes"]) != (project.tz, project.desk_opens, project.desk_closes):
        # The project's hours changed since `project` was read: count in its new windows.
        fresh = ProjectInfo(r["id"], r["code"], r["name"], r["tz"], r["desk_opens"], r["desk_closes"])
        r = await fetch_board(pg, fresh, now)
        if r is None:
            return None
    reload_at = min(
        t
        for t in (
            r["over_24h_next"],
            r["promise_next"],
            next_window_change(now, ZoneInfo(r["tz"]), r["desk_closes"]),
        )
        if t is not None
    )
    return BoardData(
        project_id=r["id"],
        code=r["code"],
        name=r["name"],
        tz=r["tz"],
        business_hours=r["business_hours"],
        cards=list(r["cards"] or ()),
        alerts=_json(r["alerts"]) or [],
        shifts=_json(r["shifts"]) or [],
        shift_counts={k: int(r[k]) for k in SHIFT_KEYS},
        reload_at=reload_at,
        desk_opens=r["desk_opens"],
        desk_closes=r["desk_closes"],
    )
