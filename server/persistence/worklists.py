"""The desk's and the supervisor's work lists: callbacks, apologies, finance, shift lists.

Each list is one query; times of day are the project's own (desk 09:00–17:30 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.shifts import shift_windows

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
        "o.status = 'closed' AND o.callback_rating = 'unsatisfied' AND o.closed_at >= :since "
        "AND NOT EXISTS (SELECT 1 FROM orders r WHERE r.reopened_from_id = o.id)",
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


# The shift lists' conditions, shared by the lists and by shift_summary's counts. Placeholders
# name the window bounds: bound parameters for one list, columns of each project's window there.
OPEN_UNFINISHED = "o.status IN ('new', 'pooled', 'assigned', 'accepted', 'on_site', 'paused', 'unfinished')"
_SLIPS = (
    "o.received_at >= {midnight} AND o.received_at < CAST({midnight} AS timestamptz) + interval '14 hours' "
    "AND o.slip_returned_at IS NULL AND o.status <> 'cancelled'"
)
# An order leaves the end-of-shift list once it has a promised finish time still ahead.
_END_OF_SHIFT = OPEN_UNFINISHED + " AND (o.promised_at IS NULL OR o.promised_at <= {now})"
_HANDOVER = (
    "o.received_at >= {night_start} AND o.received_at < {morning} AND o.status NOT IN ('closed', 'cancelled')"
)
_OVER_24H = OPEN_UNFINISHED + " AND o.received_at < CAST({now} AS timestamptz) - interval '24 hours'"


async def slips_out(conn: AsyncConnection, pids: list[int], day_start: datetime) -> list[dict[str, Any]]:
    """Orders received before 14:00 today whose paper slip is not back at the desk (check at 17:00)."""
    return await _rows(conn, _SLIPS.format(midnight=":d0"), {"pids": pids, "d0": day_start}, "o.received_at")


async def end_of_shift(
    conn: AsyncConnection, pids: list[int], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Unfinished orders at the desk's close still needing a promised finish time (none, or one passed).

    Without ``now`` every unfinished order is listed, promised or not.
    """
    if now is None:
        return await _rows(conn, OPEN_UNFINISHED, {"pids": pids}, "o.promised_at NULLS FIRST, o.received_at")
    return await _rows(
        conn,
        _END_OF_SHIFT.format(now=":now"),
        {"pids": pids, "now": now},
        "o.promised_at NULLS FIRST, o.received_at",
    )


async def night_handover(
    conn: AsyncConnection, pids: list[int], night_start: datetime, morning: datetime
) -> list[dict[str, Any]]:
    """Orders the monitoring center took overnight that are still open: handed to the morning shift."""
    return await _rows(
        conn,
        _HANDOVER.format(night_start=":a", morning=":b"),
        {"pids": pids, "a": night_start, "b": morning},
        "o.urgency = 'emergency' DESC, o.received_at",
    )


async def unfinished_over_24h(conn: AsyncConnection, pids: list[int], now: datetime) -> list[dict[str, Any]]:
    return await _rows(conn, _OVER_24H.format(now=":now"), {"pids": pids, "now": now}, "o.received_at")


SHIFT_SUMMARY_KEYS = ("slips_out", "end_of_shift", "handover", "over_24h")
_CONDITIONS = (_SLIPS, _END_OF_SHIFT, _HANDOVER, _OVER_24H)


def shift_count_columns(bounds: dict[str, str]) -> str:
    """Return the SELECT list counting each shift list (``count(*) FILTER (…) AS slips_out``, …).

    ``bounds`` names the SQL for each window bound: midnight, night_start, morning and now
    (bound parameters such as ":now", or columns of a joined window). The board's statement
    and shift_summary count with it, so they and the lists on /shift hold the same orders.
    """
    return ", ".join(
        f"count(*) FILTER (WHERE {cond.format(**bounds)}) AS {key}"
        for key, cond in zip(SHIFT_SUMMARY_KEYS, _CONDITIONS, strict=True)
    )


async def shift_summary(conn: AsyncConnection, project_ids: Sequence[int], now: datetime) -> dict[str, int]:
    """Return how many orders each shift list holds now, over these projects (each in its own time).

    Keys: slips_out (before-14:00 slips not back), end_of_shift (unfinished without a promised
    finish time ahead), handover (taken overnight, still open), over_24h (unfinished over 24 h);
    the same conditions as the lists on /shift. Two statements however many projects.
    """
    projects = (
        await conn.execute(
            text("SELECT id, tz, desk_opens, desk_closes FROM projects WHERE id = ANY(:p)"),
            {"p": list(project_ids)},
        )
    ).all()
    counts = dict.fromkeys(SHIFT_SUMMARY_KEYS, 0)
    if not projects:
        return counts
    windows = [(pid, shift_windows(now, tz, opens, closes)) for pid, tz, opens, closes in projects]
    cols = {"midnight": "w.midnight", "night_start": "w.night_start", "morning": "w.morning", "now": ":now"}
    sql = (
        "SELECT "
        + shift_count_columns(cols)
        + " FROM orders o JOIN unnest(CAST(:pids AS integer[]), CAST(:mid AS timestamptz[]), "
        "CAST(:ns AS timestamptz[]), CAST(:mo AS timestamptz[])) AS w(project_id, midnight, night_start, morning) "
        "ON w.project_id = o.project_id "
        # Only what a list can hold: open orders, or orders received since midnight (slips).
        "WHERE o.status NOT IN ('closed', 'cancelled') OR o.received_at >= w.midnight"
    )
    row = (
        (
            await conn.execute(
                text(sql),
                {
                    "pids": [pid for pid, _w in windows],
                    "mid": [w["midnight"] for _p, w in windows],
                    "ns": [w["night_start"] for _p, w in windows],
                    "mo": [w["morning"] for _p, w in windows],
                    "now": now,
                },
            )
        )
        .mappings()
        .one()
    )
    return {key: int(row[key]) for key in SHIFT_SUMMARY_KEYS}


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
