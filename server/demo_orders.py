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
    # Last month's history, for the reports (a manager's first look is last month).
    await seed_history(conn, project_id, now)


# ---- past history: last month and the end of the month before (issue 7's reports) -------------

# One order's story: (action, minutes after it was received, who, inputs). Who: "eng" the order's
# engineer, "eng2" the other engineer of the same team (transfers), "desk" the dispatcher, "dept"
# the department handler. Each story is taken through the real lifecycle at those times.
Story = list[tuple[str, float, str, dict[str, object]]]
RATINGS = ("satisfied",) * 14 + ("fairly",) * 3 + ("unsatisfied",)
WATER = ("plumbing", "electrical", "hvac", "network", "fire")  # 水电班; the rest go to 土建班
FINISH = {"result": "已修复，业主确认", "labour_yuan": "30"}


def history_story(kind: str, rnd: random.Random, received: datetime, now: datetime) -> Story:
    """The steps of one past order of the given kind (delays and ratings drawn from `rnd`)."""
    story: Story = []
    t = 0.0

    def then(action: str, lo: float, hi: float, who: str = "eng", **inputs: object) -> None:
        nonlocal t
        t += rnd.uniform(lo, hi)
        story.append((action, t, who, inputs))

    def callback(rating: str | None = None) -> None:
        then("callback", 120, 900, "desk", method="phone", rating=rating or rnd.choice(RATINGS))

    if kind == "assigned":
        then("assign", 1, 4, "desk")
        then("accept", 1, 5)
    elif kind == "transferred":
        then("grab", 1, 5, "eng2")
        then("transfer", 5, 15, "eng2", reason="手头有急活，转给同班师傅")
        then("assign", 2, 6, "desk")
        then("accept", 2, 6)
    elif kind == "matter":
        then("handle", 20, 120, "dept", result="已登记并处理")
        callback()
        return story
    elif kind == "cancelled":
        then("cancel", 5, 30, "desk", reason="业主自行修好")
        return story
    else:
        then("grab", 1, 7)
    if kind == "late_arrival":
        then("arrive", 22, 50)  # the 15-minute arrival clock breached
    else:
        then("arrive", 5, 13)
    if kind == "paused":
        promised = (received + timedelta(days=1, hours=3)).isoformat()
        then("pause", 20, 40, reason="parts", promised_at=promised)
        then("resume", 18 * 60, 26 * 60)
    if kind == "reappointed":
        next_at = (received + timedelta(days=2)).replace(hour=10, minute=0)
        then("unfinished", 30, 60, reason="需更换配件，业主自购", next_at=next_at.isoformat())
        then("reappoint", 20, 60, "desk", appointment_at=next_at.isoformat())
        t = (next_at - received).total_seconds() / 60 - 5  # there five minutes early
        story.append(("arrive", t, "eng", {}))
    if kind == "still_unfinished":
        then("unfinished", 30, 60, reason="等业主确认方案", next_at=(now + timedelta(days=2)).isoformat())
        return story
    if kind == "late_completion":
        then("finish", 26 * 60, 40 * 60, **FINISH)  # the 24-hour completion clock breached
    else:
        then("finish", 30, 240, **FINISH)
    if kind == "awaiting_callback":
        return story
    if kind in ("reopened", "done_then_cancelled"):
        callback("unsatisfied")
        then("reopen", 30, 90, "desk", reason="回访不满意，仍有渗水")
        if kind == "done_then_cancelled":
            then("cancel", 60, 240, "desk", reason="业主表示不再维修")
            return story
        then("accept", 10, 40)
        then("arrive", 20, 60)
        then("finish", 40, 120, **FINISH)
        callback("satisfied")
        return story
    callback()
    return story


# One cycle of kinds; past orders take them in turn, so every outcome is in every month.
HISTORY_CYCLE = (
    "ok", "assigned", "ok", "late_arrival", "ok", "paused", "matter", "ok",
    "late_completion", "ok", "reappointed", "assigned", "ok", "reopened", "transferred", "cancelled",
)  # fmt: skip


async def _rework_of(conn: AsyncConnection, order_id: int) -> tuple[str, int, str] | None:
    """The newest rework order of a reopened order: (number, version, verification code)."""
    row = (
        await conn.execute(
            text(
                "SELECT number, version, verification_code FROM orders WHERE reopened_from_id = :o "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"o": order_id},
        )
    ).first()
    return (row[0], row[1], row[2]) if row else None


async def seed_history(conn: AsyncConnection, project_id: int, now: datetime) -> list[str]:
    """Orders of last month and the last days of the month before, through the real lifecycle.

    One a day (seeding stays a matter of seconds: tests seed the demo), at office hours or in
    the evening, each a story of HISTORY_CYCLE (late ones,
    paused, reappointed, reopened, transferred, cancelled, a matter); plus one received at 23:50
    on the month before's last day and finished the next day, one done then cancelled, two
    awaiting their callback and one still unfinished at the end. Steps that would fall after
    `now` are left out (on the 1st of a month the last orders are still under way). Return the
    order numbers.
    """
    from zoneinfo import ZoneInfo

    from server.domain import stats

    tz = ZoneInfo("Asia/Shanghai")
    rnd = random.Random(202611)
    today = now.astimezone(tz).date()
    month = stats.last_month(today)
    first = month.start - timedelta(days=8)
    desk = await _actor(conn, "kefu")
    night_desk = await _actor(conn, "jiankong")
    dept = await _actor(conn, "zhixu")
    water = [await _actor(conn, u) for u in ("shifu1", "shifu2")]
    build = [await _actor(conn, u) for u in ("shifu3", "shifu4")]
    rooms = (
        await conn.execute(
            text(
                "SELECT b.code || '-' || r.unit || '-' || r.number, r.owner_name, r.owner_phone "
                "FROM rooms r JOIN buildings b ON b.id = r.building_id WHERE b.project_id = :p ORDER BY r.id"
            ),
            {"p": project_id},
        )
    ).all()

    plan: list[tuple[datetime, str]] = []
    day, i = first, 0
    while day <= month.end:
        hour = rnd.choice((8, 9, 10, 10, 11, 14, 15, 16, 19, 21))
        midnight = datetime.combine(day, datetime.min.time(), tz)
        plan.append(
            (
                midnight + timedelta(hours=hour, minutes=rnd.randint(0, 59)),
                HISTORY_CYCLE[i % len(HISTORY_CYCLE)],
            )
        )
        day, i = day + timedelta(days=1), i + 1
    # Month-spanning: 23:50 on the month before's last day, done on the 1st.
    plan.append((datetime.combine(month.start, datetime.min.time(), tz) - timedelta(minutes=10), "ok"))
    late = datetime.combine(month.end, datetime.min.time(), tz)
    plan += [
        (late - timedelta(days=6, hours=-10), "done_then_cancelled"),
        (late - timedelta(days=3, hours=-15), "still_unfinished"),
        (late + timedelta(hours=9, minutes=20), "awaiting_callback"),
        (late + timedelta(hours=11, minutes=5), "awaiting_callback"),
    ]

    numbers = []
    cutoff = now - timedelta(minutes=1)
    for received, kind in sorted(plan):
        if received >= cutoff:
            continue
        matter = kind == "matter"
        if matter:
            cat, summary, content = ("loss", "小区内丢失快递", "放在门口的快递不见了")
        else:
            cat, summary, content = rnd.choice(REPAIRS)
        room, owner, phone = rnd.choice(rooms)
        local_hour = received.astimezone(tz).hour
        by = desk if 9 <= local_hour < 17 else night_desk
        raw = {
            "project": "DEMO",
            "kind": "matter" if matter else "repair",
            "category": cat,
            "urgency": "normal",
            "summary": summary,
            "content": content,
            "reporter_name": owner,
            "reporter_phone": phone,
            "channel": rnd.choice(["phone", "phone", "visit", "online"]),
            "room": room,
        }
        reg = await orders_db.register(conn, validate_intake(raw, now=received), by, received)
        numbers.append(reg.number)
        eng, other = rnd.sample(water if cat in WATER else build, 2)
        who = {"eng": eng, "eng2": other, "desk": desk, "dept": dept}
        number, version, code = reg.number, reg.version, reg.verification_code
        for action, minutes, actor, inputs in history_story(kind, rnd, received, now):
            at = received + timedelta(minutes=minutes)
            if at >= cutoff:
                break
            if action == "arrive":
                inputs = {**inputs, "code": code}
            if action == "assign":
                inputs = {**inputs, "assignee_id": eng.staff_id}
            row = await orders_db.apply_action(conn, number, action, version, who[actor], inputs, at)
            version = row["version"]
            if action == "reopen" and row["status"] == "closed":
                # 返修 as a new linked rework order (TEAM.md): the story goes on with that one.
                rework = await _rework_of(conn, row["id"])
                if rework is None:
                    break
                number, version, code = rework
                numbers.append(number)
    # Their SMS and notices went out at the time; nothing of the past is left to send.
    await conn.execute(
        text(
            "UPDATE outbox SET state = 'sent', attempts = 1, sent_at = o.received_at FROM orders o "
            "WHERE outbox.order_id = o.id AND o.number = ANY(CAST(:n AS text[])) AND outbox.state = 'pending'"
        ),
        {"n": numbers},
    )
    return numbers
