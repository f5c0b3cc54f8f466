"""Bench: the monthly report page over 100,000 orders of one month (`make bench`).

Seeds a BENCH project once (INSERT … SELECT over generate_series: seconds, not minutes) with
orders in every outcome, their arrival/completion clocks (about one in ten breached), breach
rows and each order's history (register, accept, arrive, finish, callback; some unfinished);
the triggers mark every order changed; their order_facts are flushed (as the first report
after them would) and analyzed before timing. Then time GET /reports for that month as a manager
through the real application (auth, scope, every section of the report, the page rendered and
sent): median of RUNS; and once more right after CHANGED of its orders changed (their facts
flushed by that request).

Alone: baoxiu with-services --root .run/bench --database baoxiu_bench -- python -m bench.report
"""

from __future__ import annotations

import asyncio
import statistics
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

BENCH_CODE = "BENCH"
ORDERS = 100_000
MONTH = "2025-03"  # a past month: every clock has long been decided
RUNS = 5

SEED_ORDERS = """
WITH src AS (
    SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
    FROM generate_series(1, CAST(:n AS integer)) AS g
), shaped AS (
    SELECT g, r2, r3, r4, r5,
           timestamptz '2025-03-01 00:00+08' + (g - 1) * (interval '31 days' / CAST(:n AS integer)) AS received_at,
           CASE WHEN r1 < 0.03 THEN 'cancelled' WHEN r1 < 0.04 THEN 'pooled' WHEN r1 < 0.05 THEN 'assigned'
                WHEN r1 < 0.06 THEN 'on_site' WHEN r1 < 0.065 THEN 'paused' WHEN r1 < 0.07 THEN 'unfinished'
                WHEN r1 < 0.10 THEN 'callback' ELSE 'closed' END AS status
    FROM src
)
INSERT INTO orders (number, project_id, kind, category, urgency, status, area, location, reporter_name,
                    reporter_phone, summary, channel, team_id, assignee_id, received_at, dispatched_at,
                    accepted_at, arrived_at, finished_at, closed_at, cancelled_at, verification_code,
                    callback_at, callback_rating, reopen_count, man_hours)
SELECT 'BENCH-' || lpad(g::text, 6, '0'), :pid, 'repair',
       (ARRAY['plumbing','electrical','building','elevator','hvac','network','fire','security_systems'])[1 + g % 8],
       CASE WHEN g % 20 = 0 THEN 'emergency' ELSE 'normal' END, status, 'public', '公区', '业户', '13800000000',
       '压测工单', 'phone', (CAST(:teams AS integer[]))[1 + g % 4], CASE WHEN status = 'pooled' THEN NULL ELSE (CAST(:engineers AS integer[]))[1 + g % 20] END,
       received_at,
       CASE WHEN status IN ('pooled', 'cancelled') THEN NULL ELSE received_at + r2 * interval '20 minutes' END,
       CASE WHEN status IN ('pooled', 'cancelled', 'assigned') THEN NULL ELSE received_at + r2 * interval '25 minutes' END,
       CASE WHEN status IN ('pooled', 'cancelled', 'assigned') THEN NULL
            ELSE received_at + r2 * interval '25 minutes' + r3 * interval '40 minutes' END,
       CASE WHEN status IN ('callback', 'closed')
            THEN received_at + r2 * interval '25 minutes' + r3 * interval '40 minutes' + r4 * r4 * interval '36 hours' END,
       CASE WHEN status = 'closed' THEN received_at + interval '3 days' END,
       CASE WHEN status = 'cancelled' THEN received_at + interval '1 hour' END,
       '1234',
       CASE WHEN status = 'closed' AND r5 < 0.97 THEN received_at + interval '3 days' END,
       CASE WHEN status = 'closed' AND r5 < 0.97 THEN
            CASE WHEN r5 < 0.80 THEN 'satisfied' WHEN r5 < 0.93 THEN 'fairly' ELSE 'unsatisfied' END END,
       CASE WHEN status = 'closed' AND r3 < 0.02 THEN 1 ELSE 0 END,
       CASE WHEN status IN ('callback', 'closed') THEN round((0.5 + r4 * 3)::numeric, 2) END
FROM shaped
"""

SEED_CLOCKS = """
INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, state, breached_at, ended_at)
SELECT o.id, k.kind, 1, k.started, k.deadline, k.minutes,
       CASE WHEN o.status = 'cancelled' THEN 'cancelled'
            WHEN k.ended IS NULL THEN CASE WHEN o.status = 'paused' THEN 'paused' ELSE 'running' END
            WHEN k.ended <= k.deadline THEN 'met' ELSE 'breached' END,
       CASE WHEN coalesce(k.ended, timestamptz '2025-06-01') > k.deadline AND o.status <> 'cancelled'
            THEN k.deadline + interval '1 minute' END,
       CASE WHEN o.status = 'cancelled' THEN o.cancelled_at ELSE k.ended END
FROM orders o
CROSS JOIN LATERAL (VALUES
    ('completion', o.received_at, o.received_at + interval '24 hours', 1440, o.finished_at),
    ('arrival', o.dispatched_at, o.dispatched_at + interval '30 minutes', 30, o.arrived_at)
) AS k(kind, started, deadline, minutes, ended)
WHERE o.project_id = :pid AND k.started IS NOT NULL
"""

SEED_BREACHES = """
INSERT INTO breaches (clock_id, order_id, clock_kind, deadline, recorded_at, recorded_by)
SELECT c.id, c.order_id, c.kind, c.deadline, c.breached_at, 'sweep'
FROM order_clocks c JOIN orders o ON o.id = c.order_id
WHERE o.project_id = :pid AND c.breached_at IS NOT NULL
"""

SEED_EVENTS = """
INSERT INTO order_events (order_id, at, actor_label, action, from_status, to_status, reason)
SELECT o.id, o.arrived_at + interval '1 hour', '压测', 'unfinished', 'on_site', 'unfinished', '缺配件'
FROM orders o
WHERE o.project_id = :pid AND o.arrived_at IS NOT NULL AND o.id % 40 = 0
"""

# The steps every order went through, as the lifecycle writes them (about 5 events an order).
SEED_HISTORY = """
INSERT INTO order_events (order_id, at, actor_label, action, from_status, to_status)
SELECT o.id, s.at, '压测', s.action, s.from_status, s.to_status
FROM orders o
CROSS JOIN LATERAL (VALUES
    (o.received_at, 'register', NULL, 'pooled'),
    (o.accepted_at, 'grab', 'pooled', 'accepted'),
    (o.arrived_at, 'arrive', 'accepted', 'on_site'),
    (o.finished_at, 'finish', 'on_site', 'done'),
    (o.callback_at, 'callback', 'done', 'closed'),
    (o.cancelled_at, 'cancel', 'pooled', 'cancelled')
) AS s(at, action, from_status, to_status)
WHERE o.project_id = :pid AND s.at IS NOT NULL
"""


async def _seed(conn: AsyncConnection) -> int:
    """Create the bench project with its orders, unless a previous run already did; return its id."""
    pid = (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": BENCH_CODE})).scalar()
    if pid is not None:
        if not (
            await conn.execute(
                text(
                    "SELECT 1 FROM order_events e JOIN orders o ON o.id = e.order_id "
                    "WHERE o.project_id = :p AND e.action = 'register' LIMIT 1"
                ),
                {"p": pid},
            )
        ).first():  # seeded by an older bench without the history
            await conn.execute(text(SEED_HISTORY), {"pid": pid})
            await conn.execute(text("ANALYZE order_events"))
        return int(pid)
    pid = (
        await conn.execute(
            text("INSERT INTO projects (code, name) VALUES (:c, '压测花园') RETURNING id"), {"c": BENCH_CODE}
        )
    ).scalar_one()
    teams = []
    for name in ("水电一班", "水电二班", "土建班", "综合班"):
        teams.append(
            (
                await conn.execute(
                    text(
                        "INSERT INTO teams (project_id, department_code, name) VALUES (:p, 'engineering', :n) RETURNING id"
                    ),
                    {"p": pid, "n": name},
                )
            ).scalar_one()
        )
    engineers = []
    for i in range(20):
        sid = (
            await conn.execute(
                text(
                    "INSERT INTO staff (username, display_name, role, password_hash, department_code) "
                    "VALUES (:u, :n, 'engineer', '!', 'engineering') RETURNING id"
                ),
                {"u": f"bench_shifu{i:02d}", "n": f"压测师傅{i:02d}"},
            )
        ).scalar_one()
        await conn.execute(text("INSERT INTO staff_projects VALUES (:s, :p)"), {"s": sid, "p": pid})
        await conn.execute(text("INSERT INTO staff_teams VALUES (:s, :t)"), {"s": sid, "t": teams[i % 4]})
        engineers.append(sid)
    await conn.execute(text("SELECT setseed(0.2025)"))
    await conn.execute(text(SEED_ORDERS), {"n": ORDERS, "pid": pid, "teams": teams, "engineers": engineers})
    await conn.execute(text(SEED_CLOCKS), {"pid": pid})
    await conn.execute(text(SEED_BREACHES), {"pid": pid})
    await conn.execute(text(SEED_EVENTS), {"pid": pid})
    await conn.execute(text(SEED_HISTORY), {"pid": pid})
    for table in ("orders", "order_clocks", "breaches", "order_events"):
        await conn.execute(text(f"ANALYZE {table}"))
    return int(pid)


MANAGER = "bench_jingli"
CHANGED = 1000
# Touch CHANGED orders of the month (the triggers mark them for the next flush of their facts).
TOUCH = """
UPDATE orders SET updated_at = updated_at
WHERE id IN (SELECT id FROM orders WHERE project_id = :pid ORDER BY random() LIMIT :n)
"""


async def _manager_token(conn: AsyncConnection, pid: int) -> str:
    """A manager of the bench project with a personal API token (made once); return the token."""
    from server.security import token_hash

    token = "bx_bench_report_manager"
    sid = (await conn.execute(text("SELECT id FROM staff WHERE username = :u"), {"u": MANAGER})).scalar()
    if sid is None:
        sid = (
            await conn.execute(
                text(
                    "INSERT INTO staff (username, display_name, role, password_hash, department_code) "
                    "VALUES (:u, '压测经理', 'manager', '!', 'customer_service') RETURNING id"
                ),
                {"u": MANAGER},
            )
        ).scalar_one()
        await conn.execute(text("INSERT INTO staff_projects VALUES (:s, :p)"), {"s": sid, "p": pid})
        await conn.execute(
            text("INSERT INTO api_tokens (staff_id, name, token_hash) VALUES (:s, 'bench', :h)"),
            {"s": sid, "h": token_hash(token)},
        )
    return token


async def bench_report(database_url: str) -> dict[str, object]:
    """Seed (once) and time GET /reports for one month of 100k orders, rendered; median of RUNS."""
    import httpx

    from server.app import create_app
    from server.config import get_settings
    from server.persistence.db import make_engine
    from server.persistence.migrate import upgrade

    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            pid = await _seed(conn)
            token = await _manager_token(conn, pid)
        async with engine.begin() as conn:  # every order seeded here or by other benches: as a report would
            await conn.execute(text("SELECT order_facts_flush()"))
            await conn.execute(text("ANALYZE order_facts"))
    finally:
        await engine.dispose()
    app = create_app(get_settings())
    for hook in app.on_startup:
        await hook(app)
    timings: list[float] = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"Authorization": f"Bearer {token}"}
            params = {"project": BENCH_CODE, "month": MONTH}
            warm = await client.get("/reports", params=params, headers=headers)  # connections, templates
            assert warm.status_code == 200, warm.text[:300]
            for _ in range(RUNS):
                t0 = time.perf_counter()
                r = await client.get("/reports", params=params, headers=headers)
                body = r.text
                timings.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200 and "压测师傅" in body and len(body) > 10_000
            # The same page right after CHANGED orders of the month changed (the facts flushed first).
            async with app.state.runtime.engine.begin() as conn:
                await conn.execute(text(TOUCH), {"pid": pid, "n": CHANGED})
            t0 = time.perf_counter()
            r = await client.get("/reports", params=params, headers=headers)
            after_changes = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200
    finally:
        for hook in app.on_shutdown:
            await hook(app)
    return {
        "metric": "report_month_100k_ms",
        "value": round(statistics.median(timings), 1),
        "unit": "ms",
        "target": "< 1000",
        "runs": [round(t) for t in timings],
        f"after_{CHANGED}_changed_ms": round(after_changes, 1),
    }


if __name__ == "__main__":
    # Alone: baoxiu with-services --root .run/bench --database baoxiu_bench -- python -m bench.report
    # (or python -m bench.report DATABASE_URL); prints the figure as one JSON line.
    import json
    import os
    import sys

    os.environ.setdefault("BAOXIU_TEST_CLOCK", "0")
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ["DATABASE_URL"]
    print(json.dumps(asyncio.run(bench_report(url)), ensure_ascii=False), flush=True)
