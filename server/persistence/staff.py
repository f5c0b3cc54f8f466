"""Staff, their projects and teams, API and kiosk tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class StaffRow:
    id: int
    username: str
    display_name: str
    role: str
    department_code: str | None
    locale: str
    active: bool
    password_hash: str
    pin_hash: str | None
    project_ids: frozenset[int]
    team_ids: frozenset[int]


_STAFF_SQL = """
SELECT s.id, s.username, s.display_name, s.role, s.department_code, s.locale, s.active,
       s.password_hash, s.pin_hash,
       coalesce((SELECT array_agg(project_id) FROM staff_projects WHERE staff_id = s.id), '{}') AS project_ids,
       coalesce((SELECT array_agg(team_id) FROM staff_teams WHERE staff_id = s.id), '{}') AS team_ids
FROM staff s
"""


def _row(r: object) -> StaffRow:
    m = r._mapping  # type: ignore[attr-defined]
    return StaffRow(
        id=m["id"],
        username=m["username"],
        display_name=m["display_name"],
        role=m["role"],
        department_code=m["department_code"],
        locale=m["locale"],
        active=m["active"],
        password_hash=m["password_hash"],
        pin_hash=m["pin_hash"],
        project_ids=frozenset(m["project_ids"]),
        team_ids=frozenset(m["team_ids"]),
    )


async def by_username(conn: AsyncConnection, username: str) -> StaffRow | None:
    r = (await conn.execute(text(_STAFF_SQL + " WHERE s.username = :u"), {"u": username})).first()
    return _row(r) if r else None


async def by_id(conn: AsyncConnection, staff_id: int) -> StaffRow | None:
    r = (await conn.execute(text(_STAFF_SQL + " WHERE s.id = :i"), {"i": staff_id})).first()
    return _row(r) if r else None


async def by_api_token(conn: AsyncConnection, token_hash: str, now: datetime) -> StaffRow | None:
    r = (
        await conn.execute(
            text(
                "UPDATE api_tokens SET last_used_at = :now WHERE token_hash = :h AND revoked_at IS NULL "
                "RETURNING staff_id"
            ),
            {"h": token_hash, "now": now},
        )
    ).first()
    return await by_id(conn, r[0]) if r else None


async def kiosk_projects(conn: AsyncConnection, token_hash: str) -> tuple[int, frozenset[int]] | None:
    r = (
        await conn.execute(
            text(
                "SELECT k.id, coalesce(array_agg(p.project_id) FILTER (WHERE p.project_id IS NOT NULL), '{}') "
                "FROM kiosk_tokens k LEFT JOIN kiosk_token_projects p ON p.kiosk_id = k.id "
                "WHERE k.token_hash = :h AND k.revoked_at IS NULL GROUP BY k.id"
            ),
            {"h": token_hash},
        )
    ).first()
    return (r[0], frozenset(r[1])) if r else None


async def create_staff(
    conn: AsyncConnection,
    *,
    username: str,
    display_name: str,
    role: str,
    password_hash: str,
    project_ids: list[int],
    team_ids: list[int] = (),  # type: ignore[assignment]
    department_code: str | None = None,
    phone: str | None = None,
    pin_hash: str | None = None,
    locale: str = "zh_CN",
) -> int:
    staff_id = (
        await conn.execute(
            text(
                "INSERT INTO staff (username, display_name, role, password_hash, department_code, phone, "
                "pin_hash, locale) VALUES (:u, :n, :r, :p, :d, :ph, :pin, :loc) RETURNING id"
            ),
            {
                "u": username,
                "n": display_name,
                "r": role,
                "p": password_hash,
                "d": department_code,
                "ph": phone,
                "pin": pin_hash,
                "loc": locale,
            },
        )
    ).scalar_one()
    for pid in project_ids:
        await conn.execute(text("INSERT INTO staff_projects VALUES (:s, :p)"), {"s": staff_id, "p": pid})
    for tid in team_ids:
        await conn.execute(text("INSERT INTO staff_teams VALUES (:s, :t)"), {"s": staff_id, "t": tid})
    return staff_id


async def project_id_by_code(conn: AsyncConnection, code: str) -> int | None:
    return (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": code})).scalar()


async def team_id_by_name(conn: AsyncConnection, project_id: int, name: str) -> int | None:
    return (
        await conn.execute(
            text("SELECT id FROM teams WHERE project_id = :p AND name = :n"), {"p": project_id, "n": name}
        )
    ).scalar()


async def create_api_token(conn: AsyncConnection, staff_id: int, token_hash: str, name: str = "") -> int:
    return (
        await conn.execute(
            text("INSERT INTO api_tokens (staff_id, token_hash, name) VALUES (:s, :h, :n) RETURNING id"),
            {"s": staff_id, "h": token_hash, "n": name},
        )
    ).scalar_one()


async def create_kiosk_token(
    conn: AsyncConnection,
    token_hash: str,
    project_ids: list[int],
    name: str = "",
    created_by: int | None = None,
) -> int:
    kid = (
        await conn.execute(
            text("INSERT INTO kiosk_tokens (token_hash, name, created_by) VALUES (:h, :n, :c) RETURNING id"),
            {"h": token_hash, "n": name, "c": created_by},
        )
    ).scalar_one()
    for pid in project_ids:
        await conn.execute(text("INSERT INTO kiosk_token_projects VALUES (:k, :p)"), {"k": kid, "p": pid})
    return kid


async def set_active(conn: AsyncConnection, staff_id: int, active: bool) -> None:
    await conn.execute(text("UPDATE staff SET active = :a WHERE id = :i"), {"a": active, "i": staff_id})
    await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"staff:{staff_id}"})


async def revoke_kiosk(conn: AsyncConnection, kiosk_id: int, now: datetime) -> None:
    await conn.execute(
        text("UPDATE kiosk_tokens SET revoked_at = :now WHERE id = :i AND revoked_at IS NULL"),
        {"i": kiosk_id, "now": now},
    )
    await conn.execute(text("SELECT pg_notify('auth', 'kiosk')"))


async def revoke_api_token(conn: AsyncConnection, token_id: int, now: datetime) -> None:
    await conn.execute(
        text("UPDATE api_tokens SET revoked_at = :now WHERE id = :i AND revoked_at IS NULL"),
        {"i": token_id, "now": now},
    )
    await conn.execute(text("SELECT pg_notify('auth', 'token')"))
