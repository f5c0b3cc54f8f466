"""Demo data: project DEMO (阳光花园) with 10 buildings, ~500 rooms, staff for every role.

Later features extend `seed_demo` through `DEMO_EXTENSIONS` (orders in every state, rota,
alerts) so a newcomer sees a living board in the first minute.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.persistence import staff as staff_db
from server.persistence.db import make_engine
from server.security import hash_password

DEMO_CODE = "DEMO"
DEMO_PASSWORD = "demo1234"
DEMO_PIN = "2580"

# (username, display name, role, department, team name or None)
DEMO_STAFF: list[tuple[str, str, str, str | None, str | None]] = [
    ("kefu", "李客服", "dispatcher", "customer_service", None),
    ("jiankong", "赵值班", "monitor", "order", None),
    ("zhuguan", "王主管", "supervisor", "engineering", "水电班"),
    ("shifu1", "张师傅", "engineer", "engineering", "水电班"),
    ("shifu2", "刘师傅", "engineer", "engineering", "水电班"),
    ("shifu3", "陈师傅", "engineer", "engineering", "土建班"),
    ("shifu4", "杨师傅", "engineer", "engineering", "土建班"),
    ("zhixu", "孙队长", "handler", "order", "秩序一队"),
    ("jingli", "周经理", "manager", "customer_service", None),
    ("caiwu", "吴财务", "finance", None, None),
    ("admin", "郑管理员", "admin", None, None),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
]

Extension = Callable[[AsyncConnection, int, random.Random], Awaitable[None]]
DEMO_EXTENSIONS: list[Extension] = []


def demo_logins() -> list[tuple[str, str, str]]:
    return [(u, DEMO_PASSWORD, role) for u, _n, role, _d, _t in DEMO_STAFF]


async def _seed(conn: AsyncConnection) -> int:
    rnd = random.Random(20261124)
    pid = (
        await conn.execute(
            text("INSERT INTO projects (code, name) VALUES (:c, :n) RETURNING id"),
            {"c": DEMO_CODE, "n": "阳光花园"},
        )
    ).scalar_one()
    for b in range(1, 11):
        bid = (
            await conn.execute(
                text("INSERT INTO buildings (project_id, code, name) VALUES (:p, :c, :n) RETURNING id"),
                {"p": pid, "c": str(b), "n": f"{b}栋"},
            )
        ).scalar_one()
        rows = []
        for unit in (1, 2):
            for floor in range(1, 14):
                for door in (1, 2):
                    name = rnd.choice(SURNAMES) + rnd.choice(GIVEN)
                    phone = "13" + "".join(rnd.choice("0123456789") for _ in range(9))
                    rows.append(
                        {"b": bid, "u": str(unit), "n": f"{floor}{door:02d}", "on": name, "op": phone}
                    )
        await conn.execute(
            text(
                "INSERT INTO rooms (building_id, unit, number, owner_name, owner_phone) VALUES (:b, :u, :n, :on, :op)"
            ),
            rows[:50],
        )
    for area in ("1号地库", "2号地库", "中心花园", "东门岗亭", "南门", "会所", "垃圾站", "泳池"):
        await conn.execute(
            text("INSERT INTO public_areas (project_id, name) VALUES (:p, :n)"), {"p": pid, "n": area}
        )
    teams: dict[str, int] = {}
    for name, dept in (
        ("水电班", "engineering"),
        ("土建班", "engineering"),
        ("秩序一队", "order"),
        ("保洁组", "cleaning"),
        ("绿化组", "greening"),
    ):
        teams[name] = (
            await conn.execute(
                text(
                    "INSERT INTO teams (project_id, department_code, name) VALUES (:p, :d, :n) RETURNING id"
                ),
                {"p": pid, "d": dept, "n": name},
            )
        ).scalar_one()
    pw, pin = hash_password(DEMO_PASSWORD), hash_password(DEMO_PIN)
    for username, display, role, dept, team in DEMO_STAFF:
        sid = await staff_db.create_staff(
            conn,
            username=username,
            display_name=display,
            role=role,
            password_hash=pw,
            project_ids=[pid],
            team_ids=[teams[team]] if team else [],
            department_code=dept,
            phone="139" + f"{abs(hash(username)) % 10**8:08d}",
            pin_hash=pin if role in ("engineer", "handler") else None,
        )
        if username == "zhuguan":
            await conn.execute(
                text("UPDATE teams SET lead_id = :s WHERE name IN ('水电班', '土建班') AND project_id = :p"),
                {"s": sid, "p": pid},
            )
    import server.features  # noqa: F401  (hooks: entrapment alerts and the like)

    for ext in DEMO_EXTENSIONS:
        await ext(conn, pid, rnd)
    from server.demo_orders import seed_orders

    await seed_orders(conn, pid, rnd)
    return pid


async def seed_demo(database_url: str, *, reset: bool) -> list[tuple[str, str, str]] | None:
    """Seed the demo; with reset, rebuild a demo-only database first. Return the logins, or None."""
    from server.persistence.migrate import upgrade

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            codes = [r[0] for r in await conn.execute(text("SELECT code FROM projects"))]
        if codes and not reset:
            return None
        if codes and reset:
            if set(codes) != {DEMO_CODE}:
                from server.cli import OperatorError

                raise OperatorError("refusing to reset: this database holds projects other than the demo")
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()
            await _to_thread(upgrade, database_url)
        async with engine.begin() as conn:
            await _seed(conn)
        return demo_logins()
    finally:
        await engine.dispose()


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


async def _demo_rota_and_elevators(conn: AsyncConnection, project_id: int, rnd: random.Random) -> None:
    from server.persistence import alert_setup, alerts, oncall

    await oncall.seed_demo(conn, project_id)
    await alert_setup.seed_demo(conn, project_id)
    await alerts.seed_demo_entrapment(conn, project_id)


DEMO_EXTENSIONS.append(_demo_rota_and_elevators)
