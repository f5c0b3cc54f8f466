"""The benchmark data set: 20 projects, 1,000,000 closed and 10,000 open orders.

Seeded once per benchmark database with INSERT … SELECT over generate_series (a minute or
so, not hours); open orders get running clocks with deadlines spread over the next hours so
the board shows a realistic mix of colour bands and nothing is due at seeding time.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROJECTS = 20
CLOSED = 1_000_000
OPEN = 10_000

SEED_PROJECTS = """
INSERT INTO projects (code, name) SELECT 'B' || lpad(g::text, 2, '0'), '压测小区' || g FROM generate_series(1, :n) g
ON CONFLICT (code) DO NOTHING
"""

SEED_STAFF = """
INSERT INTO staff (username, display_name, role, password_hash, department_code)
SELECT 'bench_eng_' || g, '师傅' || g, 'engineer', 'x', 'engineering' FROM generate_series(1, 200) g
ON CONFLICT (username) DO NOTHING
"""

SEED_ORDERS = """
INSERT INTO orders (number, project_id, kind, category, urgency, status, version, area, location, reporter_name,
                    reporter_phone, summary, channel, assignee_id, received_at, finished_at, closed_at,
                    verification_code, next_deadline, next_clock)
SELECT 'BN-' || :tag || '-' || lpad(g::text, 7, '0'),
       (CAST(:pids AS integer[]))[1 + g % array_length(CAST(:pids AS integer[]), 1)],
       'repair',
       (ARRAY['plumbing','electrical','building','elevator','hvac','network'])[1 + g % 6],
       CASE WHEN g % 17 = 0 THEN 'emergency' ELSE 'normal' END,
       CASE WHEN :open THEN (ARRAY['pooled','assigned','accepted','on_site','paused','done'])[1 + g % 6] ELSE 'closed' END,
       1, 'public', (1 + g % 10) || '栋-' || (1 + g % 2) || '单元-' || (100 + g % 1300),
       (ARRAY['张伟','王芳','李娜','刘洋','陈静'])[1 + g % 5], '138' || lpad((g % 100000000)::text, 8, '0'),
       (ARRAY['厨房水龙头漏水','卫生间下水道堵塞','客厅灯不亮','门锁损坏','空调不制冷'])[1 + g % 5],
       'phone',
       CASE WHEN :open AND g % 6 = 0 THEN NULL ELSE (CAST(:engs AS integer[]))[1 + g % 200] END,
       now() - make_interval(mins => CASE WHEN :open THEN g % 600 ELSE 1440 + g % 500000 END),
       CASE WHEN :open THEN NULL ELSE now() - make_interval(mins => 1000 + g % 500000) END,
       CASE WHEN :open THEN NULL ELSE now() - make_interval(mins => 900 + g % 500000) END,
       '123456',
       CASE WHEN :open THEN now() + make_interval(secs => 600 + (g * 37) % 86400) END,
       CASE WHEN :open THEN 'completion' END
FROM generate_series(1, CAST(:n AS integer)) g
"""

SEED_CLOCKS = """
INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, state)
SELECT o.id, 'completion', 1, o.received_at, o.next_deadline,
       greatest(1, (extract(epoch FROM o.next_deadline - o.received_at) / 60)::int), 'running'
FROM orders o WHERE o.number LIKE 'BN-' || :tag || '-%' AND o.next_deadline IS NOT NULL
"""


async def seed(
    engine: AsyncEngine, *, open_orders: int = OPEN, closed: int = CLOSED, tag: str = "O"
) -> dict[str, int]:
    """Seed once (idempotent by tag); return the counts present."""
    async with engine.begin() as conn:
        await conn.execute(text(SEED_PROJECTS), {"n": PROJECTS})
        await conn.execute(text(SEED_STAFF))
        pids = [
            r[0]
            for r in await conn.execute(text("SELECT id FROM projects WHERE code LIKE 'B__' ORDER BY code"))
        ]
        engs = [
            r[0]
            for r in await conn.execute(
                text("SELECT id FROM staff WHERE username LIKE 'bench_eng_%' ORDER BY id")
            )
        ]
        for pid in pids:
            await conn.execute(
                text(
                    "INSERT INTO staff_projects SELECT id, :p FROM staff WHERE username LIKE 'bench_eng_%' "
                    "ON CONFLICT DO NOTHING"
                ),
                {"p": pid},
            )
    async with engine.begin() as conn:
        have_closed = (
            await conn.execute(text("SELECT count(*) FROM orders WHERE number LIKE 'BN-C-%'"))
        ).scalar_one()
        if have_closed < closed:
            await conn.execute(text("SET LOCAL synchronous_commit = off"))
            await conn.execute(
                text(SEED_ORDERS), {"tag": "C", "pids": pids, "engs": engs, "open": False, "n": closed}
            )
    async with engine.begin() as conn:
        have_open = (
            await conn.execute(text("SELECT count(*) FROM orders WHERE number LIKE :t"), {"t": f"BN-{tag}-%"})
        ).scalar_one()
        if have_open < open_orders:
            await conn.execute(
                text(SEED_ORDERS), {"tag": tag, "pids": pids, "engs": engs, "open": True, "n": open_orders}
            )
            await conn.execute(text(SEED_CLOCKS), {"tag": tag})
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE orders"))
        await conn.execute(text("ANALYZE order_clocks"))
        n_open = (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE status NOT IN ('closed', 'cancelled')")
            )
        ).scalar_one()
        n_closed = (
            await conn.execute(text("SELECT count(*) FROM orders WHERE status = 'closed'"))
        ).scalar_one()
    return {"open": n_open, "closed": n_closed, "projects": len(pids)}
