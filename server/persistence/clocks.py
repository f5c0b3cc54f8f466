"""Order clocks in the database: carry out a clock plan, keep orders.next_deadline current."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import clock_plan as cp
from server.domain import clocks, sla_policy
from server.domain.clocks import Clock, start_clock_for_rule
from server.domain.vocab import Category, ClockKind, ClockState, Kind, Urgency


@dataclass(frozen=True)
class OrderClockContext:
    order_id: int
    project_id: int
    tz: str
    business_hours: str | None
    kind: Kind
    category: Category
    urgency: Urgency
    catalog_item_id: int | None
    catalog_minutes: int | None
    appointment_at: datetime | None


async def load_rules(conn: AsyncConnection, project_id: int) -> list[sla_policy.SlaRule]:
    """The project's live rules on top of the seeded defaults (a DB rule beats a default of equal rank)."""
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT id, project_id, kind, category, urgency, catalog_item_id, clock, minutes, business_hours, priority "
                    "FROM sla_rules WHERE active AND (project_id IS NULL OR project_id = :p)"
                ),
                {"p": project_id},
            )
        )
        .mappings()
        .all()
    )
    db_rules = [
        sla_policy.SlaRule(
            id=r["id"],
            project_id=r["project_id"],
            kind=Kind(r["kind"]) if r["kind"] else None,
            category=Category(r["category"]) if r["category"] else None,
            urgency=Urgency(r["urgency"]) if r["urgency"] else None,
            catalog_item_id=r["catalog_item_id"],
            clock=ClockKind(r["clock"]),
            minutes=r["minutes"],
            business_hours=r["business_hours"],
            priority=r["priority"] + 1,  # stored rules outrank the built-in defaults of the same scope
        )
        for r in rows
    ]
    return [*sla_policy.DEFAULT_RULES, *db_rules]


def _site_hours(ctx: OrderClockContext, wanted: bool) -> sla_policy.BusinessHours | None:
    """The site's business hours when a clock counts them (never for an emergency)."""
    if wanted and ctx.business_hours and ctx.urgency is not Urgency.EMERGENCY:
        return sla_policy.parse_business_hours(ctx.business_hours)
    return None


_CLOCK_COLS = (
    "id, kind, started_at, deadline, minutes, business_hours, state, paused_at, paused_seconds, ended_at"
)


async def _load(
    conn: AsyncConnection, ctx: OrderClockContext, where: str, **params: Any
) -> list[tuple[int, Clock]]:
    """The order's clocks matching ``where``, as domain clocks (locked for this transaction)."""
    rows = (
        await conn.execute(
            text(
                f"SELECT {_CLOCK_COLS} FROM order_clocks WHERE order_id = :o AND {where} ORDER BY id FOR UPDATE"
            ),
            {"o": ctx.order_id, **params},
        )
    ).mappings()
    zone = ZoneInfo(ctx.tz)
    return [
        (
            r["id"],
            Clock(
                kind=ClockKind(r["kind"]),
                started_at=r["started_at"],
                deadline=r["deadline"],
                state=ClockState(r["state"]),
                paused_at=r["paused_at"],
                paused_seconds=r["paused_seconds"],
                business_hours=_site_hours(ctx, r["business_hours"]),
                minutes=r["minutes"],
                tz=zone,
                ended_at=r["ended_at"],
            ),
        )
        for r in rows
    ]


async def _save(conn: AsyncConnection, clock_id: int, c: Clock) -> None:
    await conn.execute(
        text(
            "UPDATE order_clocks SET state = :s, deadline = :d, paused_at = :pa, paused_seconds = :ps, "
            "ended_at = :e WHERE id = :i"
        ),
        {
            "i": clock_id,
            "s": c.state.value,
            "d": c.deadline,
            "pa": c.paused_at,
            "ps": c.paused_seconds,
            "e": c.ended_at,
        },
    )


async def _each(
    conn: AsyncConnection, ctx: OrderClockContext, where: str, step: Callable[[Clock], Clock], **params: Any
) -> None:
    """Load the clocks, let the pure clock module compute each one's new state, store it."""
    for clock_id, c in await _load(conn, ctx, where, **params):
        await _save(conn, clock_id, step(c))


async def apply_plan(
    conn: AsyncConnection,
    ctx: OrderClockContext,
    ops: list[cp.ClockOp],
    now: datetime,
    rules: list[sla_policy.SlaRule] | None = None,
) -> None:
    """Carry out clock operations for one order inside the caller's transaction.

    The arithmetic (deadlines, business hours, appointments, pauses, met or late) is
    server/domain/clocks.py's; this only reads and writes the rows.
    """
    if not ops:
        return
    live = "state IN ('running', 'paused')"
    for op in ops:
        if isinstance(op, cp.Start):
            if rules is None:
                rules = await load_rules(conn, ctx.project_id)
            all_rules = rules
            if ctx.catalog_item_id and ctx.catalog_minutes and op.kind is ClockKind.COMPLETION:
                all_rules = [*rules, sla_policy.catalog_item_rule(ctx.catalog_item_id, ctx.catalog_minutes)]
            rule = sla_policy.resolve(
                all_rules,
                project_id=ctx.project_id,
                kind=ctx.kind,
                category=ctx.category,
                urgency=ctx.urgency,
                catalog_item_id=ctx.catalog_item_id,
                clock=op.kind,
            )
            if rule is None:
                continue
            appointment = None
            if op.at_appointment and ctx.appointment_at is not None and ctx.appointment_at > now:
                appointment = ctx.appointment_at
            started = start_clock_for_rule(
                rule,
                now,
                tz=ZoneInfo(ctx.tz),
                site_hours=_site_hours(ctx, rule.business_hours),
                appointment_at=appointment,
            )
            await _start(conn, ctx.order_id, started, rule)
        elif isinstance(op, cp.Stop):
            finish = clocks.cancel if op.outcome == "cancelled" else clocks.meet
            await _each(conn, ctx, f"kind = :k AND {live}", lambda c, f=finish: f(c, now), k=op.kind.value)
        elif isinstance(op, cp.PauseAll):
            # The callback clock keeps running: the customer is called back whatever the wait.
            await _each(conn, ctx, "state = 'running' AND kind <> 'callback'", lambda c: clocks.pause(c, now))
        elif isinstance(op, cp.ResumeAll):
            await _each(conn, ctx, "state = 'paused'", lambda c: clocks.resume(c, now))
        elif isinstance(op, cp.CancelAll):
            await _each(conn, ctx, live, lambda c: clocks.cancel(c, now))
    await refresh_next_deadline(conn, ctx.order_id)


async def _start(conn: AsyncConnection, order_id: int, c: Clock, rule: sla_policy.SlaRule) -> None:
    # A clock that is still running is not restarted (e.g. completion across a reassignment).
    await conn.execute(
        text(
            "INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, business_hours, state, rule_id) "
            "SELECT :o, :k, coalesce(max(generation), 0) + 1, :now, :d, :m, :bh, 'running', :rid "
            "FROM order_clocks WHERE order_id = :o AND kind = :k "
            "HAVING NOT bool_or(coalesce(state IN ('running', 'paused'), false)) OR count(*) = 0"
        ),
        {
            "o": order_id,
            "k": c.kind.value,
            "now": c.started_at,
            "d": c.deadline,
            "m": max(1, c.minutes),
            "bh": c.business_hours is not None,  # the hours really counted, not just asked for
            "rid": rule.id if rule.id and rule.id > 0 else None,
        },
    )


async def refresh_next_deadline(conn: AsyncConnection, order_id: int) -> None:
    await conn.execute(
        text(
            "UPDATE orders o SET next_deadline = c.deadline, next_clock = c.kind FROM ("
            "  SELECT (SELECT deadline FROM order_clocks WHERE order_id = :o AND state = 'running' "
            "          ORDER BY deadline LIMIT 1) AS deadline, "
            "         (SELECT kind FROM order_clocks WHERE order_id = :o AND state = 'running' "
            "          ORDER BY deadline LIMIT 1) AS kind) c "
            "WHERE o.id = :o AND (o.next_deadline IS DISTINCT FROM c.deadline OR o.next_clock IS DISTINCT FROM c.kind)"
        ),
        {"o": order_id},
    )


async def clocks_of(conn: AsyncConnection, order_id: int) -> list[dict[str, Any]]:
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT kind, generation, started_at, deadline, state, paused_seconds, ended_at "
                    "FROM order_clocks WHERE order_id = :o ORDER BY id"
                ),
                {"o": order_id},
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]
