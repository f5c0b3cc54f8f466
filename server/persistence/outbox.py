"""The outbox: notifications written in the transaction of the change, delivered later.

Delivery claims rows with SKIP LOCKED and a lease (available_at pushed forward), so a worker
that dies mid-delivery leaves the row to be retried after the lease, never lost; the
dedupe key makes a second enqueue of the same notification a no-op.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.escalation import next_retry_at

LEASE = timedelta(seconds=60)


async def enqueue(
    conn: AsyncConnection,
    *,
    dedupe_key: str,
    topic: str,
    channel: str = "screen",
    payload: dict[str, Any],
    project_id: int | None = None,
    order_id: int | None = None,
    recipient_id: int | None = None,
    alert_id: int | None = None,
    available_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue one notification; return False when its dedupe key was queued before.

    `now` is the application's clock (the test clock too); without it, the database's."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO outbox (dedupe_key, topic, channel, payload, project_id, order_id, recipient_id, alert_id, "
                "available_at, created_at) VALUES (:k, :t, :c, CAST(:p AS jsonb), :proj, :o, :r, :a, "
                "coalesce(:at, :now, now()), coalesce(:now, now())) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
            ),
            {
                "k": dedupe_key,
                "t": topic,
                "c": channel,
                "p": json.dumps(payload, ensure_ascii=False, default=str),
                "proj": project_id,
                "o": order_id,
                "r": recipient_id,
                "a": alert_id,
                "at": available_at,
                "now": now,
            },
        )
    ).first()
    return row is not None


async def claim_due(conn: AsyncConnection, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "UPDATE outbox SET available_at = :lease, attempts = attempts + 1 WHERE id IN ("
                    "  SELECT id FROM outbox WHERE state = 'pending' AND available_at <= :now "
                    "  ORDER BY available_at LIMIT :lim FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, dedupe_key, topic, channel, payload, project_id, order_id, recipient_id, alert_id, attempts"
                ),
                {"now": now, "lease": now + LEASE, "lim": limit},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


async def record(
    conn: AsyncConnection, outbox_id: int, outcome: str, detail: str, attempts: int, now: datetime
) -> str:
    """Record a delivery outcome; a retry past the last backoff step becomes failed (shown to the
    supervisor). Return the state."""
    at = next_retry_at(attempts, now) if outcome == "retry" else None
    if outcome == "sent":
        state = "sent"
    elif at is not None:
        state = "pending"
    else:
        state = "failed"
    await conn.execute(
        text(
            "UPDATE outbox SET state = :s, last_error = CASE WHEN :s = 'sent' THEN last_error ELSE :d END, "
            "sent_at = CASE WHEN :s = 'sent' THEN :now ELSE sent_at END, available_at = coalesce(:at, available_at) "
            "WHERE id = :i"
        ),
        {"s": state, "d": detail[:500], "now": now, "at": at, "i": outbox_id},
    )
    return state
