"""Demo extension: open orders in every stage and colour, and an on-call rota, for the wall board.

Not registered by default (server/demo.py is not ours): add `board_demo.seed_board_demo` to
DEMO_EXTENSIONS to use it. Written with plain SQL because it seeds a picture, not a history:
no order events, no outbox rows.
"""

from __future__ import annotations

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server import clock

# (status, category, urgency, clock kind, budget min, minutes elapsed, location, summary, engineer or None)
SCENE: list[tuple[str, str, str, str, int, int, str, str, str | None]] = [
    ("pooled", "electrical", "normal", "dispatch", 5, 1, "5栋-1单元-1202", "客厅跳闸，全屋停电", None),
    ("new", "plumbing", "emergency", "dispatch", 15, 9, "1号地库", "消防水管爆裂，地面积水", None),
    ("pooled", "building", "normal", "dispatch", 5, 7, "8栋-2单元-301", "入户门锁打不开", None),
    ("assigned", "hvac", "normal", "arrival", 15, 4, "1栋-1单元-902", "空调不制冷", "shifu1"),
    ("accepted", "network", "normal", "arrival", 15, 13, "会所", "前台电话无信号", "shifu2"),
    ("on_site", "elevator", "emergency", "completion", 480, 60, "3栋 2号电梯", "电梯门关不严", "shifu3"),
    ("on_site", "fire", "normal", "completion", 1440, 1500, "中心花园", "消火栓箱门损坏", "shifu4"),
    (
        "paused",
        "plumbing",
        "normal",
        "completion",
        1440,
        300,
        "6栋-2单元-1101",
        "等待配件：马桶进水阀",
        "shifu1",
    ),
    ("callback", "greening", "low", "callback", 1440, 120, "南门", "草坪喷灌已修复，待回访", "shifu2"),
]


async def seed_board_demo(conn: AsyncConnection, project_id: int, rnd: random.Random) -> None:
    now = clock.now()
    staff = {r.username: r.id for r in await conn.execute(text("SELECT id, username FROM staff"))}
    day = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    for status, cat, urg, kind, budget, elapsed, loc, summary, who in SCENE:
        started = now - timedelta(minutes=elapsed)
        due = started + timedelta(minutes=budget)
        paused = status == "paused"
        n = (
            await conn.execute(
                text(
                    "INSERT INTO order_counters (prefix, day, last) VALUES ('BX', :d, 1) "
                    "ON CONFLICT (prefix, day) DO UPDATE SET last = order_counters.last + 1 RETURNING last"
                ),
                {"d": day},
            )
        ).scalar_one()
        oid = (
            await conn.execute(
                text(
                    "INSERT INTO orders (number, project_id, kind, category, urgency, status, area, location, reporter_name, "
                    "reporter_phone, summary, channel, received_at, verification_code, assignee_id, next_deadline, next_clock) "
                    "VALUES (:num, :p, 'repair', :cat, :urg, :st, 'public', :loc, :rn, :rp, :sum, 'phone', :at, :code, :a, "
                    ":due, :kind) RETURNING id"
                ),
                {
                    "num": f"BX-{day:%Y%m%d}-{n:04d}",
                    "p": project_id,
                    "cat": cat,
                    "urg": urg,
                    "st": status,
                    "loc": loc,
                    "rn": rnd.choice("王李张刘陈杨黄赵吴周") + rnd.choice(["伟", "芳", "娜", "敏", "静"]),
                    "rp": "13" + "".join(rnd.choice("0123456789") for _ in range(9)),
                    "sum": summary,
                    "at": started,
                    "code": f"{rnd.randrange(10**6):06d}",
                    "a": staff.get(who) if who else None,
                    "due": None if paused else due,
                    "kind": None if paused else kind,
                },
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO order_clocks (order_id, kind, started_at, deadline, minutes, state, paused_at) "
                "VALUES (:o, :k, :s, :d, :m, :state, :pa)"
            ),
            {
                "o": oid,
                "k": kind,
                "s": started,
                "d": due,
                "m": budget,
                "state": "paused" if paused else "running",
                "pa": now if paused else None,
            },
        )
    if "shifu1" in staff and "shifu2" in staff:
        await conn.execute(
            text(
                "INSERT INTO oncall_shifts (project_id, kind, starts, ends, primary_id, backup_id, supervisor_id) VALUES "
                "(:p, 'day', '09:00', '17:30', :a, :b, :s), (:p, 'night', '17:30', '09:00', :b, :a, :s)"
            ),
            {"p": project_id, "a": staff["shifu1"], "b": staff["shifu2"], "s": staff.get("zhuguan")},
        )
