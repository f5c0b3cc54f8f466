"""Record missed deadlines exactly once, with their history event and notifications."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.domain.breach_policy import route_for
from server.domain.vocab import ClockKind
from server.i18n import gettext, use_locale
from server.persistence import outbox
from server.persistence.orders import ActorInfo, add_event
from server.persistence.queries import sql

log = logging.getLogger(__name__)
SYSTEM = ActorInfo(staff_id=None, name="系统", role=None)

# Features that react to breaches (alerts): async fn(conn, breach: dict, order: dict, now); a
# value it returns is a job to enqueue after commit (returned in the breach's "post_commit").
BREACH_HOOKS: list[Any] = []


async def _audience(conn: AsyncConnection, audience: str, order: dict[str, Any]) -> list[int]:
    if audience == "team_lead":
        lead = (
            (
                await conn.execute(text("SELECT lead_id FROM teams WHERE id = :t"), {"t": order["team_id"]})
            ).scalar()
            if order["team_id"]
            else None
        )
        if lead:
            return [lead]
        audience = "supervisors"  # no team or no lead: the engineering supervisors
    role = {"supervisors": "supervisor", "dispatchers": "dispatcher", "managers": "manager"}[audience]
    return [
        r[0]
        for r in await conn.execute(
            text(
                "SELECT s.id FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                "WHERE sp.project_id = :p AND s.role = :r AND s.active ORDER BY s.id"
            ),
            {"p": order["project_id"], "r": role},
        )
    ]


async def record_due(
    engine: AsyncEngine, now: datetime, *, recorded_by: str, order_id: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Claim and record every due breach in one transaction per batch; return what was recorded."""
    async with engine.begin() as conn:
        claimed = (
            (await conn.execute(sql("claim_due_clocks"), {"now": now, "order_id": order_id, "lim": limit}))
            .mappings()
            .all()
        )
        recorded = []
        for c in claimed:
            # One bad row must not stall the loop: a savepoint per breach.
            breach = dict(c)
            try:
                async with conn.begin_nested():
                    if await _record_one(conn, breach, now, recorded_by):
                        recorded.append(breach)
            except Exception:
                log.exception("recording breach of clock %s failed; retried in a minute", c["id"])
                await conn.execute(
                    text("UPDATE order_clocks SET breached_at = NULL, breach_failed_at = :now WHERE id = :i"),
                    {"i": c["id"], "now": now},
                )
    return recorded


async def _record_one(conn: AsyncConnection, c: dict[str, Any], now: datetime, recorded_by: str) -> bool:
    """Record the breach, its event and notifications; False when it was recorded before."""
    inserted = (
        await conn.execute(
            text(
                "INSERT INTO breaches (clock_id, order_id, clock_kind, deadline, recorded_at, recorded_by) "
                "VALUES (:c, :o, :k, :d, :now, :by) ON CONFLICT (clock_id) DO NOTHING RETURNING id"
            ),
            {
                "c": c["id"],
                "o": c["order_id"],
                "k": c["kind"],
                "d": c["deadline"],
                "now": now,
                "by": recorded_by,
            },
        )
    ).first()
    if inserted is None:
        return False
    order = dict(
        (
            await conn.execute(
                text("SELECT id, number, project_id, team_id, status, location FROM orders WHERE id = :o"),
                {"o": c["order_id"]},
            )
        )
        .mappings()
        .one()
    )
    kind = ClockKind(c["kind"])
    route = route_for(kind)
    overdue_s = int((now - c["deadline"]).total_seconds())
    await add_event(
        conn,
        order["id"],
        now,
        SYSTEM,
        "breach",
        order["status"],
        order["status"],
        None,
        {
            "clock": kind.value,
            "deadline": c["deadline"].isoformat(),
            "overdue_seconds": overdue_s,
            "recorded_by": recorded_by,
        },
    )
    with use_locale("zh_CN"):
        message = gettext(route.message, number=order["number"], location=order["location"])
    for audience, after_minutes in route.steps():
        for staff_id in await _audience(conn, audience, order):
            await outbox.enqueue(
                conn,
                dedupe_key=f"breach:{c['id']}:{staff_id}",
                topic="breach",
                channel="screen",
                project_id=order["project_id"],
                order_id=order["id"],
                recipient_id=staff_id,
                payload={"text": message, "clock": kind.value, "work_list": route.work_list},
                available_at=now + timedelta(minutes=after_minutes) if after_minutes else None,
                now=now,
            )
    await conn.execute(text("UPDATE orders SET updated_at = updated_at WHERE id = :o"), {"o": order["id"]})
    for hook in BREACH_HOOKS:
        later = await hook(conn, c, order, now)
        if later is not None:
            c.setdefault("post_commit", []).append(later)
    return True
