"""Shift jobs per project, in the project's own time (DOMAIN.md §5–6, 报事报修操作流程 3.9):

17:00 slips of orders taken before 14:00 must be back; 15 min before the desk closes, the
end-of-shift list; at the desk's opening, the night-to-morning handover; 08:00 daily, the
orders unfinished over 24 h. Runs every minute; each notice is sent once per project and day
(dedupe key), so a late or doubled run is harmless.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from arq import cron
from sqlalchemy import text

from server import clock
from server.domain.shifts import shift_windows
from server.persistence import outbox, worklists
from server.persistence.breaches import _audience


def due_notices(local: datetime, desk_opens: time, desk_closes: time) -> list[str]:
    """Which lists are due at this local minute (a window, so a missed minute still sends)."""
    t = local.time()
    close_check = (datetime.combine(local.date(), desk_closes) - timedelta(minutes=15)).time()
    due = []
    if time(17, 0) <= t < time(17, 30):
        due.append("slips")
    if close_check <= t < desk_closes:
        due.append("end_of_shift")
    if desk_opens <= t < (datetime.combine(local.date(), desk_opens) + timedelta(minutes=30)).time():
        due.append("handover")
    if time(8, 0) <= t < time(8, 30):
        due.append("over_24h")
    return due


async def shift_notices(ctx: dict[str, Any]) -> int:
    now = clock.now()
    sent = 0
    async with ctx["engine"].begin() as conn:
        projects = (
            await conn.execute(
                text("SELECT id, code, tz, desk_opens, desk_closes FROM projects WHERE active")
            )
        ).all()
        for pid, _code, tz, opens, closes in projects:
            local = now.astimezone(ZoneInfo(tz))
            for notice in due_notices(local, opens, closes):
                w = shift_windows(now, tz, opens, closes)
                if notice == "slips":
                    rows = await worklists.slips_out(conn, [pid], w["midnight"])
                elif notice == "end_of_shift":
                    rows = await worklists.end_of_shift(conn, [pid], now)
                elif notice == "handover":
                    rows = await worklists.night_handover(conn, [pid], w["night_start"], w["morning"])
                else:
                    rows = await worklists.unfinished_over_24h(conn, [pid], now)
                if not rows:
                    continue
                order = {"project_id": pid, "team_id": None}
                for audience in ("supervisors", "dispatchers"):
                    for staff_id in await _audience(conn, audience, order):
                        if await outbox.enqueue(
                            conn,
                            dedupe_key=f"shift:{notice}:{pid}:{local.date()}:{staff_id}",
                            topic="shift",
                            channel="screen",
                            project_id=pid,
                            recipient_id=staff_id,
                            payload={
                                "list": notice,
                                "count": len(rows),
                                "numbers": [r["number"] for r in rows[:50]],
                                "link": "/shift",
                            },
                        ):
                            sent += 1
    return sent


FUNCTIONS = [shift_notices]
CRON = [cron(shift_notices, second={30}, unique=True, timeout=60)]
