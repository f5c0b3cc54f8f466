"""The desk's and the supervisor's work lists: callbacks, apologies, finance, shift lists.

Each list is one query; times of day are the project's own (desk 09:00–17:30 by default).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_BASE = """
SELECT o.id, o.number, o.project_id, p.code AS project_code, o.kind, o.category, o.urgency, o.status, o.version,
       o.location, o.summary, o.reporter_name, o.reporter_phone, o.received_at, o.finished_at, o.closed_at,
       o.callback_rating, o.total_fen, o.labour_fen, o.material_fen, o.paid, o.promised_at, o.slip_returned_at,
       o.reopen_count, a.display_name AS assignee_name
FROM orders o JOIN projects p ON p.id = o.project_id LEFT JOIN staff a ON a.id = o.assignee_id
"""


async def _rows(
    conn: AsyncConnection, where: str, params: dict[str, Any], order: str, limit: int = 200
) -> list[dict[str, Any]]:
    sql = f"{_BASE} WHERE o.project_id = ANY(:pids) AND {where} ORDER BY {order} LIMIT {int(limit)}"
    return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def callbacks_due(conn: AsyncConnection, pids: list[int]) -> list[dict[str, Any]]:
    """Done orders awaiting their callback, oldest first (100 % are called back)."""
    return await _rows(
        conn, "o.status IN ('done', 'callback')", {"pids": pids}, "o.finished_at NULLS FIRST, o.id"
    )


async def unsatisfied_recent(conn: AsyncConnection, pids: list[int], since: datetime) -> list[dict[str, Any]]:
    """Closed with 不满意 lately and not reworked since: offer a reopen."""
    return await _rows(
        conn,
        "o.status = 'closed' AND o.callback_rating = 'unsatisfied' AND o.closed_at >= :since",
        {"pids": pids, "since": since},
        "o.closed_at DESC",
    )


async def on_breached_clock(conn: AsyncConnection, pids: list[int], clock_kind: str) -> list[dict[str, Any]]:
    """Open orders whose running clock of this kind has breached (apology calls, arrival checks)."""
    return await _rows(
        conn,
        "o.status NOT IN ('closed', 'cancelled') AND EXISTS (SELECT 1 FROM order_clocks c WHERE c.order_id = o.id "
        "AND c.kind = :k AND c.breached_at IS NOT NULL AND c.state IN ('running', 'breached'))",
        {"pids": pids, "k": clock_kind},
        "o.received_at",
    )


async def finance(conn: AsyncConnection, pids: list[int]) -> list[dict[str, Any]]:
    """Paid work (有偿) that is done: unpaid first."""
    return await _rows(
        conn,
        "o.total_fen > 0 AND o.status IN ('done', 'callback', 'closed')",
        {"pids": pids},
        "o.paid, o.finished_at DESC",
    )


async def slips_out(conn: AsyncConnection, pids: list[int], day_start: datetime) -> list[dict[str, Any]]:
    """Orders received before 14:00 today whose paper slip is not back at the desk (check at 17:00)."""
    return await _rows(
        conn,
        "o.received_at >= :d0 AND o.received_at < :d14 AND o.slip_returned_at IS NULL "
        "AND o.status <> 'cancelled'",
        {"pids": pids, "d0": day_start, "d14": day_start + timedelta(hours=14)},
        "o.received_at",
    )


async def end_of_shift(conn: AsyncConnection, pids: list[int]) -> list[dict[str, Any]]:
    """Unfinished orders at the desk's close: each needs a promised finish time."""
    return await _rows(
        conn,
        "o.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished')",
        {"pids": pids},
        "o.promised_at NULLS FIRST, o.received_at",
    )


async def night_handover(
    conn: AsyncConnection, pids: list[int], night_start: datetime, morning: datetime
) -> list[dict[str, Any]]:
    """Orders the monitoring center took overnight that are still open: handed to the morning shift."""
    return await _rows(
        conn,
        "o.received_at >= :a AND o.received_at < :b AND o.status NOT IN ('closed', 'cancelled')",
        {"pids": pids, "a": night_start, "b": morning},
        "o.urgency = 'emergency' DESC, o.received_at",
    )


async def unfinished_over_24h(conn: AsyncConnection, pids: list[int], now: datetime) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        "o.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished') "
        "AND o.received_at < :cut",
        {"pids": pids, "cut": now - timedelta(hours=24)},
        "o.received_at",
    )


async def mark_slip_returned(conn: AsyncConnection, order_id: int, now: datetime) -> bool:
    row = (
        await conn.execute(
            text(
                "UPDATE orders SET slip_returned_at = :now, updated_at = :now "
                "WHERE id = :o AND slip_returned_at IS NULL RETURNING id"
            ),
            {"o": order_id, "now": now},
        )
    ).first()
    return row is not None
