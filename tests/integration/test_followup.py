"""The callback queue, finance and the shift lists, driven like the desk drives them."""

from __future__ import annotations

import re

from sqlalchemy import text

from server import clock
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence import staff as staff_db
from server.persistence.orders import ActorInfo


async def _done_order(engine, room: str, labour_yuan: str = "0") -> str:
    """A repair taken to done through the lifecycle."""
    async with engine.begin() as conn:
        shifu = await staff_db.by_username(conn, "shifu1")
        eng = ActorInfo(shifu.id, shifu.display_name, shifu.role, shifu.project_ids, shifu.team_ids)
        intake = validate_intake(
            {
                "project": "DEMO",
                "kind": "repair",
                "category": "plumbing",
                "room": room,
                "reporter_name": "孙八",
                "reporter_phone": "13600000000",
                "summary": "回访测试",
            },
            now=clock.now(),
        )
        reg = await orders_db.register(conn, intake, ActorInfo(None, "测试", None), clock.now())
        for action, inputs in (
            ("grab", {}),
            ("arrive", {"code": reg.verification_code}),
            ("finish", {"result": "修好了", "labour_yuan": labour_yuan}),
        ):
            row = await orders_db.get_by_number(conn, reg.number)
            await orders_db.apply_action(conn, reg.number, action, row["version"], eng, inputs, clock.now())
    return reg.number


async def test_done_orders_wait_in_the_callback_queue_and_leave_it_when_called(client, login, engine):
    number = await _done_order(engine, "4-1-101")
    token = await login("kefu")
    page = await client.get("/callbacks")
    assert page.status_code == 200 and f'id="cb-{number}"' in page.text
    version = re.search(rf'id="cb-{number}".*?name="version" value="(\d+)"', page.text, re.S).group(1)
    r = await client.post(
        f"/callbacks/{number}/callback",
        data={"version": version, "method": "phone", "rating": "unsatisfied", "comment": "还漏"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert r.status_code == 200
    assert f'id="cb-{number}"' not in r.text
    assert f'hx-post="/callbacks/{number}/reopen"' in r.text  # offered for rework
    async with engine.connect() as conn:
        notes = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM outbox o JOIN orders r ON r.id = o.order_id WHERE r.number = :n "
                    "AND o.payload->>'action' = 'callback'"
                ),
                {"n": number},
            )
        ).scalar_one()
    assert notes >= 1  # the supervisor hears of 不满意

    # 返修 offered and taken: a linked rework order, and the offer is gone
    page = await client.get("/callbacks")
    version = re.search(
        rf'hx-post="/callbacks/{number}/reopen".*?name="version" value="(\d+)"', page.text, re.S
    )
    r = await client.post(
        f"/callbacks/{number}/reopen",
        data={"version": version.group(1), "reason": "仍在漏水"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert r.status_code == 200, r.text
    rework = re.search(r"BX-\d{8}-\d{4}", r.text.split(number, 1)[1]).group(0)
    assert rework != number
    assert f'hx-post="/callbacks/{number}/reopen"' not in r.text
    async with engine.connect() as conn:
        linked = (
            await conn.execute(
                text(
                    "SELECT r.number FROM orders r JOIN orders o ON o.id = r.reopened_from_id "
                    "WHERE o.number = :n AND o.reopen_count = 1"
                ),
                {"n": number},
            )
        ).scalar_one()
    assert linked == rework


async def test_a_callback_without_a_rating_is_refused_in_place(client, login, engine):
    number = await _done_order(engine, "4-1-102")
    token = await login("kefu")
    r = await client.post(
        f"/callbacks/{number}/callback",
        data={"version": "4", "method": "phone"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert r.status_code == 422


async def test_finance_lists_paid_work_and_marks_it_paid(client, login, engine):
    number = await _done_order(engine, "4-1-201", labour_yuan="80")
    token = await login("caiwu")
    page = await client.get("/finance")
    assert number in page.text and "80.00" in page.text
    r = await client.post(f"/finance/{number}/paid", data={"version": "4"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT paid FROM orders WHERE number = :n"), {"n": number})
        ).scalar() is True


async def test_engineers_do_not_see_finance_or_callbacks(client, login):
    await login("shifu1")
    assert (await client.get("/finance")).status_code == 403
    assert (await client.get("/callbacks")).status_code == 403


async def test_the_shift_page_lists_and_a_slip_can_be_returned(client, login, engine):
    number = await _done_order(engine, "4-1-202")
    async with engine.begin() as conn:  # taken at 10:00 local today: its slip is due back by 17:00
        await conn.execute(
            text(
                "UPDATE orders SET received_at = date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') "
                "AT TIME ZONE 'Asia/Shanghai' + interval '10 hours' WHERE number = :n"
            ),
            {"n": number},
        )
    token = await login("kefu")
    page = await client.get("/shift")
    assert page.status_code == 200
    assert 'id="end-of-shift"' in page.text and 'id="handover"' in page.text
    assert f'hx-post="/shift/slip/{number}"' in page.text
    r = await client.post(f"/shift/slip/{number}", headers={"X-CSRF-Token": token})
    assert r.status_code == 200
    assert f'hx-post="/shift/slip/{number}"' not in r.text
