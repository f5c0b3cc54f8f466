"""The wall board's reads: one statement per board (sql/queries/board.sql)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.persistence.queries import sql


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    code: str
    name: str
    tz: str


@dataclass(frozen=True)
class BoardData:
    project_id: int
    code: str
    name: str
    tz: str
    business_hours: str | None
    cards: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    shifts: list[dict[str, Any]]


def _json(value: Any) -> Any:
    # asyncpg hands json columns over as text unless a codec is set on the connection.
    return json.loads(value) if isinstance(value, str | bytes) else value


async def projects(conn: AsyncConnection) -> list[ProjectInfo]:
    rows = await conn.execute(text("SELECT id, code, name, tz FROM projects WHERE active ORDER BY code"))
    return [ProjectInfo(r.id, r.code, r.name, r.tz) for r in rows]


async def load(conn: AsyncConnection, project_id: int) -> BoardData | None:
    """Return the project's open orders, unacknowledged alerts and rota, or None for no such project."""
    r = (await conn.execute(sql("board"), {"project_id": project_id})).mappings().first()
    if r is None:
        return None
    return BoardData(
        project_id=r["id"],
        code=r["code"],
        name=r["name"],
        tz=r["tz"],
        business_hours=r["business_hours"],
        cards=_json(r["cards"]) or [],
        alerts=_json(r["alerts"]) or [],
        shifts=_json(r["shifts"]) or [],
    )
