"""Order clocks in the database: carry out a clock plan, keep orders.next_deadline current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import clock_plan as cp
from server.domain import sla_policy
from server.domain.clocks import add_duration
from server.domain.vocab import Category, ClockKind, Kind, Urgency


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


def _deadline(ctx: OrderClockContext, rule: sla_policy.SlaRule, now: datetime) -> datetime:
    hours = None
    if rule.business_hours and ctx.business_hours and ctx.urgency is not Urgency.EMERGENCY:
        hours = sla_policy.parse_business_hours(ctx.business_hours)
    return add_duration(now, rule.minutes, tz=ZoneInfo(ctx.tz), business_hours=hours)


async def apply_plan(
    conn: AsyncConnection,
    ctx: OrderClockContext,
    ops: list[cp.ClockOp],
    now: datetime,
    rules: list[sla_policy.SlaRule] | None = None,
) -> None:
    """Carry out clock operations for one order inside the caller's transaction."""
    if not ops:
        return
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
            if op.at_appointment and ctx.appointment_at is not None and ctx.appointment_at > now:
                deadline, minutes = (
                    ctx.appointment_at,
                    max(1, int((ctx.appointment_at - now).total_seconds() // 60)),
                )
            else:
                deadline, minutes = _deadline(ctx, rule, now), rule.minutes
            await _start(conn, ctx.order_id, op.kind, now, deadline, minutes, rule)
        elif isinstance(op, cp.Stop):
            await conn.execute(
                text(
                    "UPDATE order_clocks SET state = CASE WHEN :outcome = 'cancelled' THEN 'cancelled' "
                    "  WHEN deadline + make_interval(secs => CASE WHEN state = 'paused' "
                    "       THEN extract(epoch FROM :now - paused_at) ELSE 0 END) >= :now THEN 'met' ELSE 'breached' END, "
                    "ended_at = :now "
                    "WHERE order_id = :o AND kind = :k AND state IN ('running', 'paused')"
                ),
                {"o": ctx.order_id, "k": op.kind.value, "outcome": op.outcome, "now": now},
            )
        elif isinstance(op, cp.PauseAll):
            await conn.execute(
                text(
                    "UPDATE order_clocks SET state = 'paused', paused_at = :now "
                    "WHERE order_id = :o AND state = 'running' AND kind <> 'callback'"
                ),
                {"o": ctx.order_id, "now": now},
            )
        elif isinstance(op, cp.ResumeAll):
            # The paused time is added to the deadline (business-hours clocks too: the
            # approximation errs in the customer's favour by at most the pause length).
            await conn.execute(
                text(
                    "UPDATE order_clocks SET state = 'running', "
                    "deadline = deadline + (:now - paused_at), "
                    "paused_seconds = paused_seconds + extract(epoch FROM :now - paused_at)::int, paused_at = NULL "
                    "WHERE order_id = :o AND state = 'paused'"
                ),
                {"o": ctx.order_id, "now": now},
            )
        elif isinstance(op, cp.CancelAll):
            await conn.execute(
                text(
                    "UPDATE order_clocks SET state = 'cancelled', ended_at = :now "
                    "WHERE order_id = :o AND state IN ('running', 'paused')"
                ),
                {"o": ctx.order_id, "now": now},
            )
    await refresh_next_deadline(conn, ctx.order_id)


async def _start(
    conn: AsyncConnection,
    order_id: int,
    kind: ClockKind,
    now: datetime,
    deadline: datetime,
    minutes: int,
    rule: sla_policy.SlaRule,
) -> None:
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
            "k": kind.value,
            "now": now,
            "d": deadline,
            "m": minutes,
            "bh": rule.business_hours,
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


def overdue_by(deadline: datetime, now: datetime) -> timedelta:
    return now - deadline
