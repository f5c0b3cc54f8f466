"""Orders for the tablet and triage tests (integration and browser): made, looked at, retired."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from server import clock
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence.orders import ActorInfo


async def new_order(engine: Any, room: str, summary: str, **over: str) -> str:
    """A DEMO repair registered as the desk would (its clocks running); returns its number."""
    async with engine.begin() as conn:
        intake = validate_intake(
            {
                "project": "DEMO",
                "kind": "repair",
                "category": "electrical",
                "room": room,
                "reporter_name": "测试",
                "reporter_phone": "13500000001",
                "summary": summary,
                **over,
            },
            now=clock.now(),
        )
        reg = await orders_db.register(conn, intake, ActorInfo(None, "测试", None), clock.now())
    return reg.number


async def column(engine: Any, number: str, name: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(text(f"SELECT {name} FROM orders WHERE number = :n"), {"n": number})
        ).scalar()


async def staff_id(engine: Any, username: str) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT id FROM staff WHERE username = :u"), {"u": username})
        ).scalar_one()


async def retire(engine: Any, *numbers: str) -> None:
    """Take a test's orders off every open list (all tests share the database)."""
    async with engine.begin() as conn:
        for n in numbers:
            await conn.execute(
                text(
                    "UPDATE order_clocks SET state = 'cancelled', ended_at = now() WHERE state IN ('running', 'paused') "
                    "AND order_id = (SELECT id FROM orders WHERE number = :n)"
                ),
                {"n": n},
            )
            await conn.execute(
                text(
                    "UPDATE orders SET status = 'cancelled', cancelled_at = now(), next_deadline = NULL WHERE number = :n "
                    "AND status NOT IN ('closed', 'cancelled')"
                ),
                {"n": n},
            )
