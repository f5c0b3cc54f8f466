"""The residents' report form behind the QR poster: checked like the desk, rate-limited, channel 线上."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

GOOD = {
    "room": "2-1-101",
    "reporter_name": "王五",
    "reporter_phone": "+86 139-0000-0001",
    "category": "plumbing",
    "summary": "阳台地漏返水",
    "content": "<img src=x onerror=alert(1)>",
}


@pytest.fixture(autouse=True)
async def no_throttle(redis):
    keys = await redis.keys("pub:*")
    if keys:
        await redis.delete(*keys)
    yield
    keys = await redis.keys("pub:*")
    if keys:
        await redis.delete(*keys)


async def count_orders(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one()


async def test_the_form_is_there_for_a_project_and_not_for_an_unknown_one(client):
    assert (await client.get("/report/DEMO")).status_code == 200
    assert (await client.get("/report/NOPE")).status_code == 404


async def test_a_resident_report_becomes_an_online_repair_with_a_code_sent(client, engine):
    r = await client.post("/report/DEMO", data=GOOD)
    assert r.status_code == 200
    number = re.search(r"BX-\d{8}-\d{4}", r.text).group(0)
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT o.channel, o.kind, o.status, o.reporter_phone, o.content, "
                        "(SELECT count(*) FROM outbox x WHERE x.order_id = o.id AND x.topic = 'sms') AS sms "
                        "FROM orders o WHERE o.number = :n"
                    ),
                    {"n": number},
                )
            )
            .mappings()
            .one()
        )
    assert (row["channel"], row["kind"], row["status"]) == ("online", "repair", "pooled")
    assert row["reporter_phone"] == "13900000001" and row["sms"] == 1


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"reporter_phone": "12345"}, "reporter_phone"),
        ({"room": "99-9-999"}, "room"),
        ({"room": "大堂"}, "room"),
        ({"summary": ""}, "summary"),
        ({"summary": "漏" * 101}, "summary"),
        ({"category": "loss"}, "category"),
    ],
)
async def test_a_bad_field_is_marked_beside_it_and_nothing_is_saved(client, engine, over, field):
    before = await count_orders(engine)
    r = await client.post("/report/DEMO", data={**GOOD, **over})
    assert r.status_code == 422
    assert f'data-field="{field}"' in r.text or f'id="err-{field}"' in r.text, r.text[-1500:]
    assert await count_orders(engine) == before
    assert "<img src=x" not in r.text  # what the resident typed comes back escaped


async def test_reports_are_rate_limited_per_phone_and_per_ip(client):
    for i in range(3):
        r = await client.post("/report/DEMO", data={**GOOD, "summary": f"第{i}次"})
        assert r.status_code == 200
    r = await client.post("/report/DEMO", data={**GOOD, "summary": "第四次"})
    assert r.status_code == 429  # the same phone, a fourth time in the hour
    for i in range(6):
        r = await client.post("/report/DEMO", data={**GOOD, "reporter_phone": f"1390000010{i}"})
        assert r.status_code == 200, i
    r = await client.post("/report/DEMO", data={**GOOD, "reporter_phone": "13900000199"})
    assert r.status_code == 429  # the same address, an eleventh time
