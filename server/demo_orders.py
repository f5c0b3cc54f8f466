"""Demo orders in every state, taken through the real lifecycle so history and clocks are true.

Registered at staggered times in the past hour or two, so the board opens with green, amber,
red and breached cards, a paused one, callbacks due and a closed history behind them.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server import clock
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence import staff as staff_db
from server.persistence.orders import ActorInfo

REPAIRS = [
    ("plumbing", "厨房水龙头漏水", "水龙头一直滴水，关不紧"),
    ("plumbing", "卫生间下水道堵塞", "地漏返水，有异味"),
    ("electrical", "客厅灯不亮", "换了灯泡也不亮，怀疑开关坏"),
    ("electrical", "插座跳闸", "厨房插座一用电饭煲就跳闸"),
    ("building", "入户门锁损坏", "钥匙插不进去"),
    ("building", "窗户关不严", "卧室推拉窗漏风"),
    ("hvac", "地暖不热", "客厅地暖温度上不去"),
    ("network", "可视对讲无声音", "门口机有画面没声音"),
]
PUBLIC = [
    ("electrical", "地库照明灯坏", "B1 区 3 排灯不亮"),
    ("plumbing", "中心花园喷泉漏水", "水池边有积水"),
    ("fire", "消防栓箱门损坏", "5栋一楼消防栓箱门合不上"),
    ("security_systems", "东门摄像头黑屏", "监控画面无信号"),
]
MATTERS = [
    ("complaint", "楼上装修噪音", "中午施工，影响休息"),
    ("loss", "小区内丢失电动车", "昨晚停在 3 栋楼下"),
    ("cleaning", "楼道垃圾未清理", "8 栋 2 单元楼道"),
    ("greening", "草坪需修剪", "中心花园草太高"),
    ("enquiry", "咨询物业费缴纳方式", ""),
]


async def _actor(conn: AsyncConnection, username: str) -> ActorInfo:
    row = await staff_db.by_username(conn, username)
    assert row is not None
    return ActorInfo(
        staff_id=row.id,
        name=row.display_name,
        role=row.role,  # type: ignore[arg-type]
        project_ids=row.project_ids,
        team_ids=row.team_ids,
        department=row.department_code,
    )


async def _step(
    conn: AsyncConnection, number: str, action: str, who: ActorInfo, at: datetime, **inputs: object
) -> None:
    row = await orders_db.get_by_number(conn, number)
    assert row is not None
    await orders_db.apply_action(conn, number, action, row["version"], who, inputs, at)


async def seed_orders(conn: AsyncConnection, project_id: int, rnd: random.Random) -> None:
    now = clock.now()
    kefu = await _actor(conn, "kefu")
    jiankong = await _actor(conn, "jiankong")
    engineers = [await _actor(conn, u) for u in ("shifu1", "shifu2", "shifu3", "shifu4")]
    zhixu = await _actor(conn, "zhixu")
    rooms = [
        r[0]
        for r in await conn.execute(
            text(
                "SELECT b.code || '-' || r.unit || '-' || r.number FROM rooms r JOIN buildings b ON b.id = r.building_id "
                "WHERE b.project_id = :p ORDER BY r.id"
            ),
            {"p": project_id},
        )
    ]
    areas = [
        r[0]
        for r in await conn.execute(
            text("SELECT name FROM public_areas WHERE project_id = :p"), {"p": project_id}
        )
    ]

    async def register(
        minutes_ago: float,
        kind: str = "repair",
        public: bool = False,
        urgency: str = "normal",
        by: ActorInfo = kefu,
        item: tuple[str, str, str] | None = None,
    ) -> tuple[str, str, datetime]:
        at = now - timedelta(minutes=minutes_ago)
        cat, summary, content = item or rnd.choice(
            MATTERS if kind == "matter" else (PUBLIC if public else REPAIRS)
        )
        room = rnd.choice(rooms)
        owner = (
            await conn.execute(
                text(
                    "SELECT owner_name, owner_phone FROM rooms r JOIN buildings b ON b.id = r.building_id "
                    "WHERE b.project_id = :p AND b.code || '-' || r.unit || '-' || r.number = :room"
                ),
                {"p": project_id, "room": room},
            )
        ).one()
        raw = {
            "project": "DEMO",
            "kind": kind,
            "category": cat,
            "urgency": urgency,
            "summary": summary,
            "content": content,
            "reporter_name": owner[0],
            "reporter_phone": owner[1],
            "channel": rnd.choice(["phone", "phone", "visit", "online", "patrol"]),
        }
        if public:
            raw.update({"area": "public", "public_area": rnd.choice(areas)})
        else:
            raw["room"] = room
        reg = await orders_db.register(conn, validate_intake(raw, now=at), by, at)
        return reg.number, reg.verification_code, at

    # Waiting in the pool: fresh (green), older (amber/red) and past the 5-minute dispatch clock.
    for ago in (0.5, 2.7, 3.9, 9, 25):
        await register(ago, public=ago > 20)
    # Dispatched and accepted, arriving.
    for i, ago in enumerate((4, 11, 14)):
        n, _code, at = await register(ago)
        await _step(conn, n, "grab", engineers[i % 2], at + timedelta(minutes=1))
    n, _code, at = await register(
        6, urgency="emergency", item=("plumbing", "水管爆裂", "厨房进水管爆裂，水流不止")
    )
    await _step(conn, n, "assign", kefu, at + timedelta(minutes=1), assignee_id=engineers[2].staff_id)
    # On site, working.
    for i, ago in enumerate((35, 70, 130)):
        n, code, at = await register(ago)
        await _step(conn, n, "grab", engineers[i % 4], at + timedelta(minutes=2))
        await _step(conn, n, "arrive", engineers[i % 4], at + timedelta(minutes=12), code=code)
    # Paused for parts; unfinished awaiting a new appointment.
    n, code, at = await register(90)
    await _step(conn, n, "grab", engineers[3], at + timedelta(minutes=3))
    await _step(conn, n, "arrive", engineers[3], at + timedelta(minutes=14), code=code)
    await _step(
        conn,
        n,
        "pause",
        engineers[3],
        at + timedelta(minutes=30),
        reason="parts",
        promised_at=(now + timedelta(days=1)).isoformat(),
    )
    n, code, at = await register(200)
    await _step(conn, n, "grab", engineers[0], at + timedelta(minutes=3))
    await _step(conn, n, "arrive", engineers[0], at + timedelta(minutes=13), code=code)
    await _step(
        conn,
        n,
        "unfinished",
        engineers[0],
        at + timedelta(minutes=60),
        reason="需更换整套洁具，业主自购",
        next_at=(now + timedelta(days=2)).isoformat(),
    )
    # Done, awaiting the callback; closed with ratings; one reworked; one cancelled.
    closed = []
    for i, ago in enumerate((300, 600, 900, 1400, 1500, 2000)):
        n, code, at = await register(ago)
        who = engineers[i % 4]
        await _step(conn, n, "grab", who, at + timedelta(minutes=2))
        await _step(conn, n, "arrive", who, at + timedelta(minutes=11 + i), code=code)
        await _step(
            conn, n, "finish", who, at + timedelta(minutes=50), result="已修复，业主确认", labour_yuan="20"
        )
        if ago >= 900:
            rating = ("satisfied", "satisfied", "fairly", "unsatisfied")[i % 4]
            await _step(conn, n, "callback", kefu, at + timedelta(hours=3), method="phone", rating=rating)
            closed.append((n, rating, at))
    for n, rating, at in closed:
        if rating == "unsatisfied":
            await _step(conn, n, "reopen", kefu, at + timedelta(hours=4), reason="回访不满意，仍有渗水")
    n, _code, at = await register(45)
    await _step(conn, n, "cancel", kefu, at + timedelta(minutes=5), reason="业主自行修好")
    # Matters routed to departments.
    for ago in (8, 40, 300):
        n, _code, at = await register(ago, kind="matter", by=jiankong)
        if ago > 100:
            row = await orders_db.get_by_number(conn, n)
            if row and row["department_code"] == "order":
                await _step(conn, n, "handle", zhixu, at + timedelta(minutes=30), result="已处理")
