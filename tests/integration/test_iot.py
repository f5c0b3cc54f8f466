"""The elevator monitoring boxes' webhook: secret, payload checks, unknown elevators, repeats."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import text

from server import clock
from tests.integration.test_alerts import _tidy, tidy  # noqa: F401 - autouse: cancels what these tests open

URL = "/api/v1/iot/elevator"


def body(**over: object) -> dict[str, object]:
    at = (clock.now() - timedelta(seconds=5)).isoformat()
    return {"elevator": "DEMO-E02", "event": "entrapment", "time": at, **over}


async def test_a_wrong_or_missing_secret_is_refused(client, settings):
    assert (await client.post(URL, json=body())).status_code == 401
    r = await client.post(URL, json=body(), headers={"X-IoT-Secret": settings.iot_secret + "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_bad_payloads_answer_422_naming_the_fields(client, settings):
    h = {"X-IoT-Secret": settings.iot_secret}
    r = await client.post(
        URL, json={"elevator": "", "event": "Entrapment!", "time": "2026-11-24 10:00"}, headers=h
    )
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {"elevator", "event", "time"}
    r = await client.post(URL, content=b"not json", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and "body" in r.json()["error"]["fields"]
    r = await client.post(URL, json=body(time=(clock.now() + timedelta(hours=2)).isoformat()), headers=h)
    assert r.status_code == 422 and "time" in r.json()["error"]["fields"]


async def test_a_stale_replay_is_refused_with_422_naming_the_time(client, settings, engine, caplog):
    h = {"X-IoT-Secret": settings.iot_secret}
    with caplog.at_level(logging.WARNING, logger="baoxiu.alerts.web"):
        r = await client.post(URL, json=body(time=(clock.now() - timedelta(hours=3)).isoformat()), headers=h)
    assert r.status_code == 422 and set(r.json()["error"]["fields"]) == {"time"}
    assert "30" in r.json()["error"]["fields"]["time"] and "time" in caplog.text
    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                text("SELECT count(*) FROM iot_events WHERE occurred_at < :t"),
                {"t": clock.now() - timedelta(hours=2)},
            )
        ).scalar()
    assert recorded == 0


async def test_two_entrapment_events_of_one_elevator_arriving_together_open_one_order(
    client, new_client, settings, engine
):
    h = {"X-IoT-Secret": settings.iot_secret}
    for round_ in range(3):
        now = clock.now()
        payloads = [
            body(elevator="DEMO-E01", time=(now - timedelta(seconds=s + 10 * round_)).isoformat())
            for s in (1, 2)
        ]
        async with new_client() as other:
            answers = await asyncio.gather(
                client.post(URL, json=payloads[0], headers=h), other.post(URL, json=payloads[1], headers=h)
            )
        assert sorted(r.status_code for r in answers) == [200, 201], [r.text for r in answers]
        numbers = {r.json()["order"] for r in answers}
        assert len(numbers) == 1
        async with engine.connect() as conn:
            open_orders = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM orders o JOIN elevators e ON e.id = o.elevator_id WHERE e.code = 'DEMO-E01' "
                        "AND o.kind = 'entrapment' AND o.status NOT IN ('done', 'callback', 'closed', 'cancelled')"
                    )
                )
            ).scalar()
        assert open_orders == 1
        await tidy(engine)


async def test_an_unknown_elevator_is_refused_and_logged(client, settings, caplog):
    with caplog.at_level(logging.WARNING, logger="baoxiu.alerts.web"):
        r = await client.post(
            URL, json=body(elevator="NOPE-99"), headers={"X-IoT-Secret": settings.iot_secret}
        )
    assert r.status_code == 404 and "NOPE-99" in caplog.text


async def test_an_entrapment_opens_the_order_and_its_alert_and_a_repeat_is_ignored(client, settings, engine):
    h = {"X-IoT-Secret": settings.iot_secret}
    payload = body()
    r = await client.post(URL, json=payload, headers=h)
    assert r.status_code == 201, r.text
    number, alert_id = r.json()["order"], r.json()["alert_id"]
    assert number.startswith("KR-") and alert_id
    r2 = await client.post(URL, json=payload, headers=h)
    assert r2.status_code == 200 and r2.json() == {"duplicate": True}
    # The same box, a new timestamp, while the order is open: it joins that order.
    r3 = await client.post(URL, json=body(time=clock.now().isoformat()), headers=h)
    assert r3.status_code == 200 and r3.json()["order"] == number and r3.json()["existing"]
    async with engine.connect() as conn:
        o = (
            (
                await conn.execute(
                    text(
                        "SELECT o.id, o.location, o.channel, e.code FROM orders o "
                        "JOIN elevators e ON e.id = o.elevator_id WHERE o.number = :n"
                    ),
                    {"n": number},
                )
            )
            .mappings()
            .one()
        )
        n_events = (
            await conn.execute(text("SELECT count(*) FROM iot_events WHERE order_id = :o"), {"o": o["id"]})
        ).scalar()
        contractor = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM outbox WHERE alert_id = :a AND payload->>'purpose' = 'contractor'"
                ),
                {"a": alert_id},
            )
        ).scalar()
    assert o["code"] == "DEMO-E02" and o["location"] == "3栋2号梯" and o["channel"] == "department"
    assert n_events == 2 and contractor == 1


async def test_other_events_are_recorded_without_an_order(client, settings, engine):
    r = await client.post(URL, json=body(event="fault"), headers={"X-IoT-Secret": settings.iot_secret})
    assert r.status_code == 202 and r.json() == {"recorded": True, "order": None}
