"""The orders API: contract, lifecycle through HTTP, refusals, the twenty-grab race."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.domain.lifecycle import ACTIONS, allowed_actions
from server.domain.messages import DomainError
from server.domain.vocab import Status
from server.persistence import staff as staff_db
from server.security import new_token, token_hash


@pytest.fixture(scope="session")
async def tokens(engine) -> dict[str, str]:
    """A personal API token for every demo user and the outsider."""
    out: dict[str, str] = {}
    async with engine.begin() as conn:
        for user in (
            "kefu",
            "jiankong",
            "zhuguan",
            "shifu1",
            "shifu2",
            "shifu3",
            "zhixu",
            "jingli",
            "caiwu",
            "admin",
            "other_kefu",
            "other_shifu",
        ):
            row = await staff_db.by_username(conn, user)
            tok = new_token("bx")
            await staff_db.create_api_token(conn, row.id, token_hash(tok), "tests")
            out[user] = tok
    return out


@pytest.fixture
def api(client, tokens):
    async def call(method: str, path: str, user: str, json: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        return await client.request(method, path, json=json, headers=headers)

    return call


def ahead(days: float) -> str:
    """A time `days` from now (the app's clock), in China time."""
    from server import clock

    return (clock.now() + timedelta(days=days)).astimezone(ZoneInfo("Asia/Shanghai")).isoformat()


NEW = {
    "project": "DEMO",
    "kind": "repair",
    "category": "plumbing",
    "urgency": "normal",
    "room": "1-1-101",
    "reporter_name": "张三",
    "reporter_phone": "+86 138-0013-8000",
    "summary": "厨房水龙头漏水",
    "content": "<script>alert(1)</script> 一直滴水",
    "channel": "phone",
}


async def register(api, user: str = "kefu", **over: Any) -> dict[str, Any]:
    r = await api("POST", "/api/v1/orders", user, {**NEW, **over})
    assert r.status_code == 201, r.text
    return r.json()


async def act(api, user: str, number: str, action: str, **inputs: Any):
    order = (await api("GET", f"/api/v1/orders/{number}", user)).json()
    return await api(
        "POST", f"/api/v1/orders/{number}/actions/{action}", user, {"version": order["version"], **inputs}
    )


async def test_register_answers_201_with_number_status_and_version(api):
    body = await register(api)
    assert body["number"].startswith("BX-") and len(body["number"]) == len("BX-20261124-0001")
    assert body["status"] == "pooled" and body["version"] == 1
    assert body["verification_code"].isdigit() and 4 <= len(body["verification_code"]) <= 6


async def test_matter_numbers_start_with_bs_and_go_to_their_department(api):
    body = await register(api, kind="matter", category="loss", room="1-1-102")
    assert body["number"].startswith("BS-")
    order = (await api("GET", f"/api/v1/orders/{body['number']}", "kefu")).json()
    assert order["department_code"] == "order"


async def test_the_order_has_its_history_and_normalised_phone(api):
    body = await register(api)
    order = (await api("GET", f"/api/v1/orders/{body['number']}", "kefu")).json()
    assert order["reporter_phone"] == "13800138000"
    assert [h["action"] for h in order["history"]] == ["register"]
    assert order["next_deadline"] is not None


async def test_bad_input_names_every_field_with_422(api):
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "room": "9-9-999", "reporter_phone": "12"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert "reporter_phone" in err["fields"]


async def test_unknown_room_is_422_naming_the_room(api):
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "room": "9-9-999"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "room"


async def test_missing_field_is_422_not_500(api):
    body = dict(NEW)
    del body["summary"]
    r = await api("POST", "/api/v1/orders", "kefu", body)
    assert r.status_code == 422
    assert "summary" in r.json()["error"]["fields"]


async def test_unknown_enum_is_422(api):
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "kind": "pizza"})
    assert r.status_code == 422


async def test_engineer_may_not_register(api):
    r = await api("POST", "/api/v1/orders", "shifu1", NEW)
    assert r.status_code == 403


async def test_outsider_sees_no_order_of_another_project(api):
    body = await register(api)
    r = await api("GET", f"/api/v1/orders/{body['number']}", "other_kefu")
    assert r.status_code == 404
    r = await api("POST", "/api/v1/orders", "other_kefu", NEW)
    assert r.status_code in (404, 422)


async def test_no_token_is_401_and_a_bad_token_too(client):
    assert (await client.get("/api/v1/orders")).status_code == 401
    r = await client.get("/api/v1/orders", headers={"Authorization": "Bearer bx_nope"})
    assert r.status_code == 401


async def test_a_revoked_token_stops_working(client, engine):
    from server import clock

    async with engine.begin() as conn:
        row = await staff_db.by_username(conn, "caiwu")
        tok = new_token("bx")
        await staff_db.create_api_token(conn, row.id, token_hash(tok), "to revoke")
    headers = {"Authorization": f"Bearer {tok}"}
    assert (await client.get("/api/v1/orders", headers=headers)).status_code == 200
    async with engine.begin() as conn:
        from sqlalchemy import text

        tid = (
            await conn.execute(
                text("SELECT id FROM api_tokens WHERE token_hash = :h"), {"h": token_hash(tok)}
            )
        ).scalar()
        await staff_db.revoke_api_token(conn, tid, clock.now())
    await asyncio.sleep(0.2)
    assert (await client.get("/api/v1/orders", headers=headers)).status_code == 401


async def test_unknown_action_is_404_and_stale_version_is_409(api):
    body = await register(api)
    r = await api("POST", f"/api/v1/orders/{body['number']}/actions/teleport", "shifu1", {"version": 1})
    assert r.status_code == 404
    r = await api("POST", f"/api/v1/orders/{body['number']}/actions/grab", "shifu1", {"version": 99})
    assert r.status_code == 409


async def test_a_repair_from_registration_to_closed_callback(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    r = await act(
        api, "shifu1", n, "arrive", code="000000" if body["verification_code"] != "000000" else "111111"
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "code"
    assert (await act(api, "shifu1", n, "arrive", code=body["verification_code"])).status_code == 200
    r = await act(api, "shifu1", n, "finish", result="换了新水龙头")
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("done", "callback")
    r = await act(api, "kefu", n, "callback", method="phone", rating="satisfied", comment="很好")
    assert r.status_code == 200, r.text
    order = (await api("GET", f"/api/v1/orders/{n}", "kefu")).json()
    assert order["status"] == "closed"
    actions = [h["action"] for h in order["history"]]
    assert actions == ["register", "grab", "arrive", "finish", "callback"]
    assert all(h["actor"] for h in order["history"])


async def test_cancel_needs_a_reason_and_keeps_the_order(api):
    body = await register(api)
    r = await act(api, "kefu", body["number"], "cancel")
    assert r.status_code == 422
    r = await act(api, "kefu", body["number"], "cancel", reason="业主自行解决")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    order = (await api("GET", f"/api/v1/orders/{body['number']}", "kefu")).json()
    assert order["cancelled_at"] is not None and order["history"][-1]["reason"] == "业主自行解决"


async def test_list_filters_by_status_and_updated_since(api):
    body = await register(api)
    r = await api("GET", "/api/v1/orders?status=pooled&project=DEMO", "kefu")
    assert r.status_code == 200
    assert body["number"] in [o["number"] for o in r.json()["orders"]]
    r = await api("GET", "/api/v1/orders?updated_since=yesterday", "kefu")
    assert r.status_code == 422


async def test_twenty_concurrent_grabs_have_exactly_one_winner(api, new_client, tokens, engine):
    """Twenty engineers grab one order at once, each with the version it saw (1).

    A row lock held by the test keeps every request waiting inside its conditional UPDATE until
    all twenty are there; the lock is then released, so the database's `WHERE version = 1`
    decides, not the order in which the requests happened to arrive.
    """
    from sqlalchemy import text

    body = await register(api)
    n = body["number"]
    engineers = ["shifu1", "shifu2"] * 10
    names = {"shifu1": "张师傅", "shifu2": "刘师傅"}

    async def grab(user: str) -> tuple[str, int, dict[str, Any]]:
        async with new_client() as c:
            r = await c.post(
                f"/api/v1/orders/{n}/actions/grab",
                json={"version": 1},
                headers={"Authorization": f"Bearer {tokens[user]}"},
            )
            return user, r.status_code, r.json()

    async with engine.connect() as holder:
        tx = await holder.begin()
        await holder.execute(text("SELECT 1 FROM orders WHERE number = :n FOR UPDATE"), {"n": n})
        tasks = [asyncio.ensure_future(grab(u)) for u in engineers]
        waiting = 0
        for _ in range(2400):  # until all twenty wait on the lock (a bound, not a timed assertion)
            waiting = await _lock_waiters(engine)
            if waiting == 20 or any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        assert waiting == 20 and not any(t.done() for t in tasks)
        await tx.commit()
        results = await asyncio.gather(*tasks)

    codes = sorted(code for _, code, _ in results)
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    winner = next(user for user, code, _ in results if code == 200)
    refusals = [b["error"]["message"] for _, code, b in results if code == 409]
    assert all(m == f"已被 {names[winner]} 抢单" for m in refusals), refusals
    order = (await api("GET", f"/api/v1/orders/{n}", "kefu")).json()
    assert order["assignee_name"] == names[winner] and order["version"] == 2
    assert [h["action"] for h in order["history"]] == ["register", "grab"]


async def _lock_waiters(engine) -> int:
    from sqlalchemy import text

    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'UPDATE orders SET status%'"
                )
            )
        ).scalar_one()


async def test_the_schema_lists_category_codes(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "plumbing" in r.text and "entrapment" in r.text


async def test_a_matter_spawns_a_linked_repair(api):
    body = await register(api, kind="matter", category="complaint", room="1-1-102")
    r = await api("POST", f"/api/v1/orders/{body['number']}/spawn-repair", "kefu", {"category": "plumbing"})
    assert r.status_code == 201, r.text
    repair = r.json()["number"]
    assert repair.startswith("BX-")
    matter = (await api("GET", f"/api/v1/orders/{body['number']}", "kefu")).json()
    assert matter["history"][-1]["action"] == "spawn_repair"
    assert matter["history"][-1]["inputs"]["repair"] == repair
    assert (await order_of(api, repair))["spawned_from"] == body["number"]
    r = await api("POST", f"/api/v1/orders/{repair}/spawn-repair", "kefu", {"category": "plumbing"})
    assert r.status_code == 409


async def test_a_saturated_engineering_department_offers_later_slots(api, engine):
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE teams SET saturated_on = (now() AT TIME ZONE 'Asia/Shanghai')::date "
                "WHERE department_code = 'engineering' AND project_id = (SELECT id FROM projects WHERE code = 'DEMO')"
            )
        )
    try:
        r = await api("POST", "/api/v1/orders", "kefu", NEW)
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["field"] == "appointment_at" and "09:00" in err["message"]
        r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "urgency": "emergency"})
        assert r.status_code == 201  # emergencies are never deferred
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE teams SET saturated_on = NULL"))


# ---- the lifecycle's gaps: rework, transfer, promise, remark, fees -------------------------------


async def order_of(api, number: str, user: str = "kefu") -> dict[str, Any]:
    r = await api("GET", f"/api/v1/orders/{number}", user)
    assert r.status_code == 200, r.text
    return r.json()


async def to_done(api, number: str, code: str, engineer: str = "shifu1", **finish: Any) -> None:
    assert (await act(api, engineer, number, "grab")).status_code == 200
    assert (await act(api, engineer, number, "arrive", code=code)).status_code == 200
    r = await act(api, engineer, number, "finish", result="换了新水龙头", **finish)
    assert r.status_code == 200, r.text


async def running_clocks(engine, number: str) -> list[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.kind FROM order_clocks c JOIN orders o ON o.id = c.order_id "
                "WHERE o.number = :n AND c.state IN ('running', 'paused') ORDER BY c.kind"
            ),
            {"n": number},
        )
        return [r[0] for r in rows]


async def test_an_unsatisfied_callback_then_reopen_opens_a_linked_rework_order(api, engine):
    body = await register(api)
    n = body["number"]
    await to_done(api, n, body["verification_code"])
    r = await act(api, "kefu", n, "callback", method="visit", rating="unsatisfied", comment="还在滴")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    from sqlalchemy import text

    async with engine.connect() as conn:
        notices = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM outbox x JOIN orders o ON o.id = x.order_id "
                    "WHERE o.number = :n AND x.dedupe_key LIKE 'unsatisfied:%'"
                ),
                {"n": n},
            )
        ).scalar()
    assert notices >= 1  # the supervisor hears of it
    r = await act(api, "kefu", n, "reopen")
    assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
    r = await act(api, "kefu", n, "reopen", reason="回访不满意，仍有渗水")
    assert r.status_code == 200, r.text
    original = r.json()
    assert original["status"] == "closed" and original["reopen_count"] == 1
    rework_number = original["rework_number"]
    assert rework_number.startswith("BX-") and rework_number != n
    assert await running_clocks(engine, n) == []  # the original's clocks stay stopped

    rework = await order_of(api, rework_number)
    assert rework["reopened_from"] == n
    assert rework["status"] == "assigned" and rework["assignee_name"] == "张师傅"
    assert rework["location"] == (await order_of(api, n))["location"]
    assert rework["history"][0]["action"] == "register"
    assert rework["history"][0]["inputs"]["reopened_from"] == n
    assert rework["history"][0]["reason"] == "回访不满意，仍有渗水"
    assert "arrival" in await running_clocks(engine, rework_number)
    hist = (await order_of(api, n))["history"]
    assert hist[-1]["action"] == "reopen" and hist[-1]["inputs"]["rework"] == rework_number
    # the rework order goes through the lifecycle on its own; the original counts it
    assert (await act(api, "shifu1", rework_number, "accept")).status_code == 200
    assert (await act(api, "kefu", n, "reopen", reason="again")).status_code == 200
    assert (await order_of(api, n))["reopen_count"] == 2


async def test_reopen_is_refused_on_an_open_order_and_for_an_engineer(api):
    body = await register(api)
    r = await act(api, "kefu", body["number"], "reopen", reason="x")
    assert r.status_code == 409
    assert "已" in r.json()["error"]["message"] or r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("target", "status", "assignee"),
    [
        ({}, "pooled", None),
        ({"assignee_id": "shifu2"}, "assigned", "刘师傅"),
        ({"department": "order"}, "assigned", None),
    ],
)
async def test_transfer_to_a_person_a_department_or_without_target_back_to_the_pool(
    api, engine, target, status, assignee
):
    from tests.work_orders import staff_id

    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    if "assignee_id" in target:
        target = {"assignee_id": await staff_id(engine, target["assignee_id"])}
    r = await act(api, "shifu1", n, "transfer", reason="手头有急活", **target)
    assert r.status_code == 200, r.text
    order = await order_of(api, n)
    assert order["status"] == status and order["assignee_name"] == assignee
    assert order["history"][-1]["action"] == "transfer" and order["history"][-1]["reason"] == "手头有急活"
    if "department" in target:
        assert order["department_code"] == "order"
        # the department's handler takes it
        assert (await act(api, "zhixu", n, "accept")).status_code == 200
    if status == "pooled":
        assert "dispatch" in await running_clocks(engine, n)
        assert (await act(api, "shifu2", n, "grab")).status_code == 200


async def test_transfer_to_a_team_puts_it_in_that_teams_pool(api, engine):
    from sqlalchemy import text

    async with engine.connect() as conn:
        team = (await conn.execute(text("SELECT id FROM teams WHERE name = '土建班'"))).scalar_one()
    body = await register(api)
    n = body["number"]
    r = await act(api, "kefu", n, "transfer", reason="归土建班", team_id=team)
    assert r.status_code == 200 and r.json()["status"] == "pooled" and r.json()["team_id"] == team
    r = await act(api, "shifu1", n, "grab")  # 水电班
    assert r.status_code == 403 and r.json()["error"]["message"]
    assert (await act(api, "shifu3", n, "grab")).status_code == 200  # 土建班


async def test_transfer_to_an_unknown_person_or_department_is_422_naming_it(api):
    body = await register(api)
    n = body["number"]
    r = await act(api, "kefu", n, "transfer", reason="r", assignee_id=999999)
    assert r.status_code == 422 and r.json()["error"]["field"] == "assignee_id"
    r = await act(api, "kefu", n, "transfer", reason="r", department="kitchen")
    assert r.status_code == 422 and r.json()["error"]["field"] == "department"
    assert [h["action"] for h in (await order_of(api, n))["history"]] == ["register"]


async def test_return_pause_resume_unfinished_and_a_new_appointment(api, engine):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    r = await act(api, "shifu1", n, "return", reason="不会修")
    assert r.status_code == 200 and r.json()["status"] == "pooled" and r.json()["assignee_id"] is None
    assert (await act(api, "shifu2", n, "grab")).status_code == 200
    first_accepted = (await order_of(api, n))["accepted_at"]
    assert (await act(api, "shifu2", n, "arrive", code=body["verification_code"])).status_code == 200
    first_arrival = (await order_of(api, n))["arrived_at"]
    r = await act(api, "shifu2", n, "pause", reason="parts")
    assert r.status_code == 422 and r.json()["error"]["field"] == "promised_at"
    r = await act(api, "shifu2", n, "pause", reason="parts", promised_at=ahead(1))
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert await running_clocks(engine, n)  # paused, not stopped
    assert (await act(api, "shifu1", n, "resume")).status_code == 403  # not his order
    assert (await act(api, "shifu2", n, "resume")).json()["status"] == "on_site"
    r = await act(api, "shifu2", n, "unfinished", reason="需更换整套洁具", next_at=ahead(2))
    assert r.status_code == 200 and r.json()["status"] == "unfinished"
    r = await act(api, "kefu", n, "reappoint", appointment_at=ahead(2))
    assert r.status_code == 200 and r.json()["status"] == "assigned" and r.json()["assignee_name"] == "刘师傅"
    assert (await act(api, "shifu2", n, "accept")).status_code == 200
    assert (await act(api, "shifu2", n, "arrive", code=body["verification_code"])).status_code == 200
    order = await order_of(api, n)
    # 接单 and 到场 times keep their first occurrence
    assert order["accepted_at"] == first_accepted and order["arrived_at"] == first_arrival
    actions = [h["action"] for h in order["history"]]
    assert actions == [
        "register", "grab", "return", "grab", "arrive", "pause", "resume", "unfinished", "reappoint",
        "accept", "arrive",
    ]  # fmt: skip


async def test_a_promised_finish_time_and_a_remark_go_on_the_record(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    promised = datetime.fromisoformat(ahead(1)).replace(hour=17, minute=0, second=0, microsecond=0)
    r = await act(api, "shifu1", n, "promise", promised_at=promised.isoformat(), reason="等配件")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert datetime.fromisoformat(r.json()["promised_at"]) == promised
    for bad, message in (
        ("2020-01-01T10:00:00+08:00", "过去"),
        (ahead(2000), "过远"),
        ("20260-01-01T10:00:00", ""),
    ):
        r = await act(api, "shifu1", n, "promise", promised_at=bad)
        assert r.status_code == 422 and r.json()["error"]["field"] == "promised_at"
        assert message in r.json()["error"]["message"], r.json()
    r = await act(api, "shifu1", n, "promise", promised_at="明天")
    assert r.status_code == 422 and r.json()["error"]["field"] == "promised_at"
    r = await act(api, "caiwu", n, "remark", remark="<b>业主</b>下午在家")
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    hist = (await order_of(api, n))["history"]
    assert [h["action"] for h in hist][-2:] == ["promise", "remark"]
    assert hist[-1]["inputs"]["remark"] == "<b>业主</b>下午在家"
    r = await act(api, "kefu", n, "remark", remark="")
    assert r.status_code == 422 and r.json()["error"]["field"] == "remark"


async def test_material_lines_and_totals_are_kept_in_fen(api, engine):
    body = await register(api)
    n = body["number"]
    await to_done(
        api,
        n,
        body["verification_code"],
        labour_yuan="20",
        man_hours="1.5",
        materials=[
            {"name": "水龙头", "quantity": "2", "unit": "个", "unit_price_yuan": "35.50"},
            {"name": "软管", "quantity": 1, "unit": "根", "provided_by": "customer", "verified": "bad"},
        ],
    )
    order = await order_of(api, n)
    assert (order["labour_fen"], order["material_fen"], order["total_fen"]) == (2000, 7100, 9100)
    assert order["man_hours"] == "1.50"
    assert [(m["name"], m["provided_by"], m["verified"]) for m in order["materials"]] == [
        ("水龙头", "center", None),
        ("软管", "customer", False),
    ]


async def test_a_bad_material_line_is_422_naming_it_and_nothing_is_written(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    assert (await act(api, "shifu1", n, "arrive", code=body["verification_code"])).status_code == 200
    r = await act(
        api,
        "shifu1",
        n,
        "finish",
        result="好",
        materials=[
            {"name": "管", "quantity": "2", "unit_price_yuan": "1"},
            {"name": "软管", "provided_by": "customer"},
        ],
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "materials[1].verified"
    order = await order_of(api, n)
    assert order["status"] == "on_site" and order["materials"] == []


@pytest.fixture
async def big_item(engine):
    """A catalog item over 500 yuan (the seeded catalog has none)."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog_items (category, code, name, minutes, price_fen) "
                "VALUES ('plumbing', 'test-big-pipe', '更换整栋入户总管', 240, 80000) ON CONFLICT (code) DO NOTHING"
            )
        )
    return "test-big-pipe"


async def test_over_500_yuan_work_waits_for_agreement_and_prepayment(api, big_item):
    body = await register(api, catalog_item=big_item)
    n = body["number"]
    code = body["verification_code"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    r = await act(api, "shifu1", n, "arrive", code=code)
    assert r.status_code == 409
    assert "500" in r.json()["error"]["message"]
    assert (await order_of(api, n))["status"] == "accepted"
    r = await act(api, "kefu", n, "record_agreement", agreed_yuan="800")
    assert r.status_code == 200 and r.json()["agreement_recorded"] and not r.json()["prepaid"]
    assert (await act(api, "shifu1", n, "arrive", code=code)).status_code == 409  # not prepaid yet
    r = await act(api, "kefu", n, "record_agreement", agreed_yuan="800", prepaid=True)
    assert r.status_code == 200 and r.json()["prepaid"] and r.json()["agreed_fen"] == 80000
    assert (await act(api, "shifu1", n, "arrive", code=code)).status_code == 200
    assert (await act(api, "shifu1", n, "start")).status_code == 200
    assert (await order_of(api, n))["started_at"] is not None
    r = await act(api, "shifu1", n, "finish", result="换好", labour_yuan="50")
    assert r.status_code == 422 and "800.00" in r.json()["error"]["message"]  # over what was agreed
    r = await act(api, "shifu1", n, "finish", result="换好")
    assert r.status_code == 200 and r.json()["total_fen"] == 80000
    # finance sees it and marks it paid
    assert (await act(api, "shifu1", n, "mark_paid")).status_code == 403
    r = await act(api, "caiwu", n, "mark_paid")
    assert r.status_code == 200 and r.json()["paid"] is True


async def test_work_quoted_on_site_over_500_yuan_cannot_start_before_prepayment(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    assert (await act(api, "shifu1", n, "arrive", code=body["verification_code"])).status_code == 200
    assert (await act(api, "shifu1", n, "record_agreement", agreed_yuan="650")).status_code == 200
    r = await act(api, "shifu1", n, "start")
    assert r.status_code == 409 and "500" in r.json()["error"]["message"]
    r = await act(api, "shifu1", n, "finish", result="换好", labour_yuan="650")
    assert r.status_code == 422 and r.json()["error"]["field"] == "labour_yuan"


# ---- random walks against the real database ------------------------------------------------------


WALKERS = (
    "kefu",
    "jiankong",
    "zhuguan",
    "shifu1",
    "shifu2",
    "shifu3",
    "zhixu",
    "jingli",
    "caiwu",
    "other_shifu",
)
WALK_STATS: dict[str, Any] = {"examples": 0, "accepted": 0, "statuses": set()}
WALK_ACTIONS = (*sorted(ACTIONS), "teleport")


@pytest.fixture(scope="session")
async def walkers(engine) -> dict[str, Any]:
    from server.persistence.orders import ActorInfo

    out = {}
    async with engine.connect() as conn:
        for u in WALKERS:
            row = await staff_db.by_username(conn, u)
            out[u] = ActorInfo(
                staff_id=row.id,
                name=row.display_name,
                role=row.role,
                project_ids=row.project_ids,
                team_ids=row.team_ids,
                department=row.department_code,
            )
    return out


def walk_inputs(kind: int, code: str, walkers: dict[str, Any]) -> dict[str, Any]:
    """0: every input a step may need, good; 1: nothing; 2: bad values everywhere."""
    if kind == 0:
        return {
            "assignee_id": walkers["shifu2"].staff_id,
            "reason": "parts",
            "code": code,
            "promised_at": ahead(1),
            "next_at": ahead(2),
            "appointment_at": ahead(2),
            "result": "已修好",
            "method": "phone",
            "rating": "unsatisfied",
            "agreed_yuan": "100",
            "remark": "备注",
            "labour_yuan": "20",
            "materials": [{"name": "水龙头", "quantity": "1", "unit_price_yuan": "30"}],
        }
    if kind == 1:
        return {}
    return {
        "assignee_id": "abc",
        "reason": "x" * 600,
        "code": "000000" if code != "000000" else "111111",
        "promised_at": "tomorrow",
        "next_at": "",
        "appointment_at": "31/12",
        "result": "",
        "method": "fax",
        "rating": "5 stars",
        "agreed_yuan": "-3",
        "remark": "",
        "labour_yuan": "1e9",
        "materials": [{"name": "管", "quantity": "0"}],
        "department": "kitchen",
        "team_id": "x",
    }


async def walk_histories(conn, order_ids: list[int]) -> dict[int, list[tuple]]:
    from sqlalchemy import text

    rows = await conn.execute(
        text(
            "SELECT order_id, id, action, from_status, to_status FROM order_events "
            "WHERE order_id = ANY(:o) ORDER BY order_id, id"
        ),
        {"o": order_ids},
    )
    out: dict[int, list[tuple]] = {o: [] for o in order_ids}
    for r in rows:
        out[r.order_id].append((r.id, r.action, r.from_status, r.to_status))
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), length=st.integers(1, 25), kind=st.sampled_from(["repair", "matter"]))
async def test_random_steps_by_random_people_keep_the_machine_and_the_whole_history(
    engine, walkers, data, length, kind
):
    """Whatever anyone tries, in the database: the status stays in the machine, a refused step
    writes nothing, an accepted one appends exactly one event, the history is never shortened nor
    reordered and always chains from → to, and the row's status is its last event's."""
    from sqlalchemy import text

    from server import clock
    from server.domain.intake import validate_intake
    from server.persistence import orders as orders_db

    now = clock.now()
    async with engine.connect() as conn:
        tx = await conn.begin()
        try:
            raw = {**NEW, "kind": kind, "category": "loss" if kind == "matter" else "plumbing"}
            reg = await orders_db.register(conn, validate_intake(raw, now=now), walkers["kefu"], now)
            current = reg.number
            WALK_STATS["examples"] += 1
            codes = {reg.number: reg.verification_code}
            ids = [reg.id]
            seen = await walk_histories(conn, ids)
            for i in range(length):
                row = await orders_db.get_by_number(conn, current)
                who = data.draw(st.sampled_from(WALKERS), label="who")
                # Half the time a step the buttons would offer this person (the rest: anything).
                offered = allowed_actions(orders_db.order_view(row), walkers[who].as_lifecycle_actor())
                if offered and data.draw(st.booleans(), label="offered"):
                    action = data.draw(st.sampled_from(offered), label="action")
                else:
                    action = data.draw(st.sampled_from(WALK_ACTIONS), label="action")
                inputs_kind = data.draw(st.sampled_from([0, 0, 0, 1, 2]), label="inputs")
                stale = data.draw(st.sampled_from([False, False, False, True]), label="stale")
                version = row["version"] - 1 if stale else row["version"]
                inputs = walk_inputs(inputs_kind, codes[current], walkers)
                at = now + timedelta(minutes=i + 1)
                try:
                    async with conn.begin_nested():
                        result = await orders_db.apply_action(
                            conn, current, action, version, walkers[who], inputs, at
                        )
                    accepted = True
                    WALK_STATS["accepted"] += 1
                except DomainError as e:
                    assert e.kind in ("conflict", "forbidden", "invalid", "not_found"), e
                    accepted = False
                after = await orders_db.get_by_number(conn, current)
                assert Status(after["status"]) in set(Status)
                WALK_STATS["statuses"].add(after["status"])
                if accepted:
                    assert not stale and action in ACTIONS and after["version"] == row["version"] + 1
                    assert result["status"] == after["status"]
                    if result.get("rework_number"):
                        ids.append(result["rework_id"])
                        rework = await orders_db.get_by_number(conn, result["rework_number"])
                        codes[rework["number"]] = rework["verification_code"]
                        current = rework["number"]
                else:
                    assert after["version"] == row["version"] and after["status"] == row["status"]
                for stamp in ("received_at", "dispatched_at", "accepted_at", "arrived_at", "started_at"):
                    if row[stamp] is not None:  # the paper form's times keep their first occurrence
                        assert after[stamp] == row[stamp], stamp
                if after["status"] in ("accepted", "on_site", "paused", "unfinished", "done", "closed") and (
                    after["kind"] == "repair"
                ):
                    assert after["assignee_id"] is not None or after["status"] == "closed"
                hist = await walk_histories(conn, ids)
                for oid, events in hist.items():
                    before = seen.get(oid, [])
                    assert events[: len(before)] == before, "an event was lost or reordered"
                    grew = len(events) - len(before)
                    if oid == row["id"]:
                        assert grew == (1 if accepted else 0)
                    for prev, nxt in pairwise(events):
                        assert prev[3] == nxt[2], f"history breaks between {prev} and {nxt}"
                seen = hist
                for oid in ids:
                    status = (
                        await conn.execute(text("SELECT status FROM orders WHERE id = :o"), {"o": oid})
                    ).scalar_one()
                    assert hist[oid][-1][3] == status
        finally:
            await tx.rollback()


def test_the_random_walks_really_ran_and_moved_orders():
    """Runs after the walk above (file order): the walks were awaited and steps got through."""
    assert WALK_STATS["examples"] >= 20 and WALK_STATS["accepted"] > 0, WALK_STATS
    assert len(WALK_STATS["statuses"]) >= 4, WALK_STATS
    print(WALK_STATS)


# ---- the contract of every endpoint and its refusals ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+86 138-0013-8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("86 138 0013 8000", "13800138000"),
        ("(010) 6552-9988", "01065529988"),
        ("138 0013 8000 ", "13800138000"),
    ],
)
async def test_phone_numbers_are_normalised(api, raw, normalised):
    body = await register(api, reporter_phone=raw)
    assert (await order_of(api, body["number"]))["reporter_phone"] == normalised


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"summary": "漏" * 101}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"content": "水" * 2001}, "content"),
        ({"reporter_name": "张" * 41}, "reporter_name"),
        ({"reporter_phone": "1380013800"}, "reporter_phone"),
        ({"reporter_phone": "+1 415 555 0100"}, "reporter_phone"),
        ({"room": "1-1"}, "room"),
        ({"category": "loss"}, "category"),
        ({"category": "pizza"}, "category"),
        ({"urgency": "asap"}, "urgency"),
        ({"channel": "pigeon"}, "channel"),
        ({"appointment_at": "2020-01-01T10:00:00+08:00"}, "appointment_at"),
        ({"appointment_at": "next tuesday"}, "appointment_at"),
        ({"catalog_item": "no-such-item"}, "catalog_item"),
        ({"designated_engineer_id": "abc"}, "designated_engineer_id"),
        ({"designated_engineer_id": 999999}, "designated_engineer_id"),
        ({"project": "NOPE"}, "project"),
        ({"summary": 12}, "summary"),
        ({"area": "garden"}, "area"),
    ],
)
async def test_every_bad_field_of_a_new_order_is_422_naming_it_and_nothing_is_saved(api, over, field):
    before = (await api("GET", "/api/v1/orders?project=DEMO&limit=1000", "kefu")).json()["orders"]
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, **over})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert field in (err.get("fields") or {}) or err.get("field") == field, err
    assert err["message"]
    after = (await api("GET", "/api/v1/orders?project=DEMO&limit=1000", "kefu")).json()["orders"]
    assert len(after) == len(before)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "null", ""])
async def test_a_body_that_is_no_order_is_4xx_not_500(client, tokens, body):
    r = await client.post(
        "/api/v1/orders",
        content=body,
        headers={"Authorization": f"Bearer {tokens['kefu']}", "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500 and r.json()["error"]["message"]


async def test_get_one_order_404_for_unknown_and_for_another_project(api):
    r = await api("GET", "/api/v1/orders/BX-19990101-0001", "kefu")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    body = await register(api)
    r = await api("GET", f"/api/v1/orders/{body['number']}", "other_shifu")
    assert r.status_code == 404
    order = await order_of(api, body["number"])
    assert {"number", "status", "version", "history", "materials", "reopened_from"} <= set(order)
    assert order["history"][0]["actor"] and order["history"][0]["at"]


async def test_the_list_filters_by_kind_and_project_and_refuses_bad_filters(api):
    matter = await register(api, kind="matter", category="enquiry", room="1-1-102")
    r = await api("GET", "/api/v1/orders?kind=matter&project=DEMO", "kefu")
    assert r.status_code == 200
    listed = r.json()["orders"]
    assert matter["number"] in [o["number"] for o in listed] and {o["kind"] for o in listed} == {"matter"}
    assert (await api("GET", "/api/v1/orders?project=OTHER", "kefu")).json()["orders"] == []
    for bad in ("status=flying", "kind=pizza", "limit=0", "limit=abc", "updated_since=2026-01-01T00:00:00"):
        r = await api("GET", f"/api/v1/orders?{bad}", "kefu")
        assert r.status_code in (400, 422), (bad, r.status_code)
        assert r.json()["error"]["message"]


async def test_the_list_since_a_time_has_only_what_changed_since(api):
    from server import clock

    body = await register(api)
    since = clock.now().isoformat()
    r = await api("GET", f"/api/v1/orders?updated_since={since.replace('+', '%2B')}", "kefu")
    assert body["number"] not in [o["number"] for o in r.json()["orders"]]
    await act(api, "shifu1", body["number"], "grab")
    r = await api("GET", f"/api/v1/orders?updated_since={since.replace('+', '%2B')}", "kefu")
    assert body["number"] in [o["number"] for o in r.json()["orders"]]


@pytest.mark.parametrize(
    ("user", "action", "inputs", "status", "field"),
    [
        ("shifu1", "cancel", {"reason": "不想修"}, 403, None),
        ("caiwu", "grab", {}, 403, None),
        ("other_shifu", "grab", {}, 404, None),
        ("kefu", "teleport", {}, 404, None),
        ("kefu", "assign", {"assignee_id": "abc"}, 422, "assignee_id"),
        ("kefu", "assign", {}, 422, "assignee_id"),
        ("kefu", "cancel", {"reason": "x" * 501}, 422, "reason"),
        ("kefu", "callback", {"method": "phone", "rating": "satisfied"}, 409, None),
    ],
)
async def test_an_action_refused_answers_the_right_status_and_writes_nothing(
    api, user, action, inputs, status, field
):
    body = await register(api)
    r = await act(api, user if user != "other_shifu" else "kefu", body["number"], "remark", remark="先看一眼")
    version = (await order_of(api, body["number"]))["version"]
    r = await api(
        "POST", f"/api/v1/orders/{body['number']}/actions/{action}", user, {"version": version, **inputs}
    )
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and (field is None or err["field"] == field)
    order = await order_of(api, body["number"])
    assert order["version"] == version and order["status"] == "pooled"


@pytest.mark.parametrize("body", [{}, {"version": "v1"}, {"version": True}, {"version": None}])
async def test_an_action_without_a_usable_version_is_422_naming_it(api, body):
    order = await register(api)
    r = await api("POST", f"/api/v1/orders/{order['number']}/actions/grab", "shifu1", body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "version"


async def test_an_action_on_an_unknown_order_is_404(api):
    r = await api("POST", "/api/v1/orders/BX-19990101-0001/actions/grab", "shifu1", {"version": 1})
    assert r.status_code == 404 and r.json()["error"]["message"]


async def test_spawn_repair_refusals(api):
    matter = await register(api, kind="matter", category="complaint", room="1-1-102")
    n = matter["number"]
    r = await api("POST", f"/api/v1/orders/{n}/spawn-repair", "shifu1", {"category": "plumbing"})
    assert r.status_code == 403
    r = await api("POST", f"/api/v1/orders/{n}/spawn-repair", "kefu", {"category": "pizza"})
    assert r.status_code == 422 and "category" in r.json()["error"]["fields"]
    r = await api("POST", f"/api/v1/orders/{n}/spawn-repair", "kefu", {"category": "loss"})
    assert r.status_code == 422 and "category" in (r.json()["error"].get("fields") or {})
    r = await api("POST", "/api/v1/orders/BS-19990101-0001/spawn-repair", "kefu", {"category": "plumbing"})
    assert r.status_code == 404
    r = await api("POST", f"/api/v1/orders/{n}/spawn-repair", "other_kefu", {"category": "plumbing"})
    assert r.status_code == 404
    assert [h["action"] for h in (await order_of(api, n))["history"]] == ["register"]


async def test_the_schema_documents_every_orders_endpoint(client):
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/orders",
        "/api/v1/orders/{number}",
        "/api/v1/orders/{number}/actions/{action}",
        "/api/v1/orders/{number}/spawn-repair",
    ):
        assert path in paths, sorted(paths)
    assert "post" in paths["/api/v1/orders"] and "get" in paths["/api/v1/orders"]


# ---- dispatch per project and category; team saturation ------------------------------------------


@pytest.fixture
async def dispatch_rules(engine):
    """network → 水电班's grab pool; building → 土建班, assigned at the desk."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        teams = dict((await conn.execute(text("SELECT name, id FROM teams"))).all())
        await conn.execute(
            text(
                "INSERT INTO dispatch_rules (project_id, category, team_id, mode) SELECT p.id, c, t, m FROM projects p, "
                "(VALUES ('network', CAST(:water AS int), 'grab'), ('building', CAST(:build AS int), 'assign')) v(c, t, m) "
                "WHERE p.code = 'DEMO'"
            ),
            {"water": teams["水电班"], "build": teams["土建班"]},
        )
    yield teams
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM dispatch_rules"))
        await conn.execute(text("UPDATE teams SET saturated_on = NULL"))


async def test_a_repair_goes_to_its_categorys_team_pool_or_to_the_desk(api, dispatch_rules):
    net = await register(api, category="network")
    assert net["status"] == "pooled"
    assert (await order_of(api, net["number"]))["team_id"] == dispatch_rules["水电班"]
    r = await act(api, "shifu3", net["number"], "grab")  # 土建班
    assert r.status_code == 403 and r.json()["error"]["message"] == "此工单在其他班组的抢单池中"
    assert (await act(api, "shifu1", net["number"], "grab")).status_code == 200
    door = await register(api, category="building")
    assert door["status"] == "new"  # waits for the desk to assign
    assert (await order_of(api, door["number"]))["team_id"] == dispatch_rules["土建班"]
    plumbing = await register(api, category="plumbing")  # no rule: the project's mode, no team
    assert plumbing["status"] == "pooled"
    assert (await order_of(api, plumbing["number"]))["team_id"] is None


async def test_a_saturated_team_offers_later_slots_for_its_categories_only(api, engine, dispatch_rules):
    from sqlalchemy import text

    from server import clock

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE teams SET saturated_on = (now() AT TIME ZONE 'Asia/Shanghai')::date WHERE id = :t"),
            {"t": dispatch_rules["水电班"]},
        )
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "category": "network"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "appointment_at" and "09:00" in err["message"] and "14:00" in err["message"]
    soon = clock.now() + timedelta(minutes=5)
    if (
        soon.astimezone(ZoneInfo("Asia/Shanghai")).date()
        == clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    ):
        r = await api(
            "POST",
            "/api/v1/orders",
            "kefu",
            {**NEW, "category": "network", "appointment_at": soon.isoformat()},
        )
        assert r.status_code == 422  # later today is not later enough
    later = (clock.now() + timedelta(days=2)).isoformat()
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "category": "network", "appointment_at": later})
    assert r.status_code == 201
    assert (await api("POST", "/api/v1/orders", "kefu", {**NEW, "category": "building"})).status_code == 201


async def test_twenty_concurrent_registrations_get_twenty_consecutive_numbers(new_client, tokens):
    async def one(i: int) -> str:
        async with new_client() as c:
            r = await c.post(
                "/api/v1/orders",
                json={**NEW, "summary": f"并发登记 {i}"},
                headers={"Authorization": f"Bearer {tokens['kefu' if i % 2 else 'jiankong']}"},
            )
            assert r.status_code == 201, r.text
            return r.json()["number"]

    numbers = await asyncio.gather(*(one(i) for i in range(20)))
    assert len(set(numbers)) == 20
    seq = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert seq == list(range(seq[0], seq[0] + 20))  # no gaps, no duplicates


async def test_the_customer_gets_the_verification_code_by_sms_and_the_desk_sees_it(api, engine):
    from sqlalchemy import text

    body = await register(api)
    async with engine.connect() as conn:
        sms = (
            await conn.execute(
                text(
                    "SELECT x.channel, x.payload FROM outbox x JOIN orders o ON o.id = x.order_id "
                    "WHERE o.number = :n AND x.topic = 'sms'"
                ),
                {"n": body["number"]},
            )
        ).one()
    assert sms.channel == "sms" and sms.payload["phone"] == "13800138000"
    assert body["verification_code"] in sms.payload["text"] and body["number"] in sms.payload["text"]


INPUT_KEYS = (
    "reason", "code", "assignee_id", "team_id", "department", "promised_at", "next_at", "appointment_at",
    "result", "labour_yuan", "man_hours", "materials", "material_name", "material_qty", "material_price_yuan",
    "material_provided_by", "material_verified", "method", "rating", "comment", "agreed_yuan", "prepaid",
    "phone_confirmed", "remark",
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from([ahead(1), "2020-01-01T10:00:00+08:00", "1", "0", "-1", "1e9", "ok", "parts", "phone", "satisfied"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["name", "quantity", "provided_by", "verified", "unit_price_yuan"]), inner, max_size=4),
    max_leaves=6,
)  # fmt: skip


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action=st.sampled_from(WALK_ACTIONS),
    user=st.sampled_from(["kefu", "zhuguan", "shifu1", "zhixu", "caiwu"]),
    inputs=st.dictionaries(st.sampled_from(INPUT_KEYS), JSON_VALUES, max_size=6),
    version=st.one_of(st.just("seen"), JSON_VALUES),
)
async def test_whatever_json_an_action_gets_it_answers_4xx_or_200_never_500(
    api, fuzz_state, action, user, inputs, version
):
    number = fuzz_state.get("number")
    if number is None or (await order_of(api, number))["status"] in ("closed", "cancelled"):
        number = fuzz_state["number"] = (await register(api))["number"]
    seen = (await order_of(api, number))["version"]
    body = {**inputs, "version": seen if version == "seen" else version}
    r = await api("POST", f"/api/v1/orders/{number}/actions/{action}", user, body)
    assert r.status_code in (200, 403, 404, 409, 422), (r.status_code, r.text)
    if r.status_code != 200:
        assert r.json()["error"]["message"]


@pytest.fixture(scope="module")
def fuzz_state() -> dict[str, Any]:
    return {}


@pytest.mark.parametrize(
    ("action", "inputs"),
    [
        ("assign", {"assignee_id": 2**63}),
        ("assign", {"assignee_id": 2**40}),
        ("transfer", {"reason": "r", "team_id": 2**40}),
        ("transfer", {"reason": "r", "team_id": 999999}),
        ("pool", {"team_id": 999999}),
        ("grab", {"version": 2**63}),
        ("grab", {"version": -1}),
        ("cancel", {"reason": "\x00"}),
    ],
)
async def test_out_of_range_ids_and_versions_are_4xx(api, action, inputs):
    body = await register(api)
    payload = {"version": 1, **inputs}
    r = await api(
        "POST",
        f"/api/v1/orders/{body['number']}/actions/{action}",
        "zhuguan" if action != "grab" else "shifu1",
        payload,
    )
    assert r.status_code in (409, 422), r.text
    assert r.json()["error"]["message"]


async def test_nul_characters_in_a_new_order_are_dropped_not_a_500(api):
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "summary": "漏\x00水", "content": "\x00"})
    assert r.status_code == 201, r.text
    assert (await order_of(api, r.json()["number"]))["summary"] == "漏水"
    r = await api("POST", "/api/v1/orders", "kefu", {**NEW, "summary": "\x00"})
    assert r.status_code == 422 and "summary" in r.json()["error"]["fields"]


async def test_a_designated_engineer_gets_the_order_assigned_and_only_he_accepts(api, engine):
    from tests.work_orders import staff_id

    shifu3 = await staff_id(engine, "shifu3")
    body = await register(api, designated_engineer_id=shifu3)
    assert body["status"] == "assigned"
    order = await order_of(api, body["number"])
    assert order["assignee_name"] == "陈师傅" and order["dispatched_at"] is not None
    assert (await act(api, "shifu1", body["number"], "accept")).status_code == 403
    assert (await act(api, "shifu3", body["number"], "accept")).status_code == 200


async def test_a_supervisor_overrides_the_person_rules(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    assert (await act(api, "shifu2", n, "arrive", code=body["verification_code"])).status_code == 403
    assert (await act(api, "zhuguan", n, "arrive", code=body["verification_code"])).status_code == 200
    r = await act(api, "zhuguan", n, "finish", result="主管代为完工")
    assert r.status_code == 200 and r.json()["status"] == "done"
    hist = (await order_of(api, n))["history"]
    assert [h["actor"] for h in hist][-2:] == ["王主管", "王主管"]  # on the record as who did it


async def test_the_desk_confirms_arrival_by_phone_when_the_customer_has_no_code(api):
    body = await register(api)
    n = body["number"]
    assert (await act(api, "shifu1", n, "grab")).status_code == 200
    assert (await act(api, "shifu1", n, "arrive", phone_confirmed=True)).status_code == 403
    r = await act(api, "kefu", n, "arrive", phone_confirmed=True)
    assert r.status_code == 200 and r.json()["status"] == "on_site"
    assert (await order_of(api, n))["history"][-1]["inputs"]["confirmed_by"] == "phone"


async def test_a_matter_goes_to_its_department_and_is_handled_there(api):
    body = await register(api, kind="matter", category="loss", room="1-1-102")
    n = body["number"]
    assert body["status"] == "assigned"
    assert (await act(api, "shifu1", n, "handle", result="x")).status_code == 403
    r = await act(api, "zhixu", n, "accept")
    assert r.status_code == 200 and r.json()["assignee_name"] == "孙队长"
    assert (await act(api, "zhixu", n, "handle", result="已调取监控并登记")).json()["status"] == "done"
    r = await act(api, "kefu", n, "callback", method="letter", rating="fairly")
    assert r.status_code == 200 and r.json()["status"] == "closed"


async def test_the_schema_documents_each_step_from_the_lifecycle_table(client):
    op = (await client.get("/schema/openapi.json")).json()["paths"][
        "/api/v1/orders/{number}/actions/{action}"
    ]["post"]
    for name, spec in ACTIONS.items():
        assert f"| `{name}` |" in op["description"]
        for inp in spec.required:
            assert inp in op["description"]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE order_events SET reason = 'rewritten' WHERE order_id = (SELECT id FROM orders WHERE number = :n)",
        "DELETE FROM order_events WHERE order_id = (SELECT id FROM orders WHERE number = :n)",
    ],
)
async def test_the_history_cannot_be_rewritten_nor_deleted_even_in_sql(api, engine, sql):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    body = await register(api)
    await act(api, "kefu", body["number"], "cancel", reason="业主取消")
    with pytest.raises(DBAPIError):
        async with engine.begin() as conn:
            await conn.execute(text(sql), {"n": body["number"]})
    order = await order_of(api, body["number"])
    assert [(h["action"], h["reason"]) for h in order["history"]] == [
        ("register", None),
        ("cancel", "业主取消"),
    ]
    assert order["status"] == "cancelled"  # cancelling keeps the order


async def test_a_supervisor_sets_the_dispatch_rule_of_a_category_and_new_repairs_follow_it(api, engine):
    from sqlalchemy import text

    async with engine.connect() as conn:
        build = (await conn.execute(text("SELECT id FROM teams WHERE name = '土建班'"))).scalar_one()
    try:
        r = await api(
            "PUT", "/api/v1/dispatch-rules/hvac?project=DEMO", "zhuguan", {"mode": "grab", "team_id": build}
        )
        assert r.status_code == 200, r.text
        assert r.json()["rules"] == [{"category": "hvac", "mode": "grab", "team_id": build, "team": "土建班"}]
        body = await register(api, category="hvac")
        assert body["status"] == "pooled" and (await order_of(api, body["number"]))["team_id"] == build
        assert (await act(api, "shifu1", body["number"], "grab")).status_code == 403
        r = await api("PUT", "/api/v1/dispatch-rules/hvac?project=DEMO", "zhuguan", {"mode": "assign"})
        assert r.status_code == 200
        assert (await register(api, category="hvac"))["status"] == "new"
        listed = (await api("GET", "/api/v1/dispatch-rules?project=DEMO", "kefu")).json()["rules"]
        assert [(x["category"], x["mode"], x["team_id"]) for x in listed] == [("hvac", "assign", None)]
        assert (await api("DELETE", "/api/v1/dispatch-rules/hvac?project=DEMO", "zhuguan")).status_code == 204
        assert (await api("GET", "/api/v1/dispatch-rules?project=DEMO", "kefu")).json()["rules"] == []
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM dispatch_rules"))


@pytest.mark.parametrize(
    ("user", "path", "body", "status", "field"),
    [
        ("kefu", "/api/v1/dispatch-rules/hvac?project=DEMO", {"mode": "grab"}, 403, None),
        ("shifu1", "/api/v1/dispatch-rules/hvac?project=DEMO", {"mode": "grab"}, 403, None),
        ("zhuguan", "/api/v1/dispatch-rules/loss?project=DEMO", {"mode": "grab"}, 422, "category"),
        ("zhuguan", "/api/v1/dispatch-rules/hvac?project=DEMO", {"mode": "lottery"}, 422, "mode"),
        (
            "zhuguan",
            "/api/v1/dispatch-rules/hvac?project=DEMO",
            {"mode": "grab", "team_id": 999999},
            422,
            "team_id",
        ),
        (
            "zhuguan",
            "/api/v1/dispatch-rules/hvac?project=DEMO",
            {"mode": "grab", "team_id": 2**40},
            422,
            "team_id",
        ),
        ("zhuguan", "/api/v1/dispatch-rules/hvac?project=OTHER", {"mode": "grab"}, 404, None),
        ("zhuguan", "/api/v1/dispatch-rules/hvac", {"mode": "grab"}, 422, None),
    ],
)
async def test_dispatch_rule_refusals(api, engine, user, path, body, status, field):
    from sqlalchemy import text

    r = await api("PUT", path, user, body)
    assert r.status_code in ((400, 422) if status == 422 and field is None else (status,)), r.text
    err = r.json()["error"]
    assert err["message"]
    if field:
        assert err.get("field") == field or field in (err.get("fields") or {}), err
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM dispatch_rules"))).scalar() == 0
    r = await api("DELETE", "/api/v1/dispatch-rules/hvac?project=DEMO", "zhuguan")
    assert r.status_code == 404
