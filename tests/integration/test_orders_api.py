"""The orders API: contract, lifecycle through HTTP, refusals, the twenty-grab race."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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


async def test_a_revoked_token_stops_working(api, client, engine, tokens):
    assert (await api("GET", "/api/v1/orders", "caiwu")).status_code == 200
    async with engine.begin() as conn:
        from sqlalchemy import text

        tid = (
            await conn.execute(
                text("SELECT id FROM api_tokens WHERE token_hash = :h"), {"h": token_hash(tokens["caiwu"])}
            )
        ).scalar()
        await staff_db.revoke_api_token(conn, tid, __import__("server.clock", fromlist=["now"]).now())
    await asyncio.sleep(0.2)
    assert (await api("GET", "/api/v1/orders", "caiwu")).status_code == 401


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


async def test_twenty_concurrent_grabs_have_exactly_one_winner(api, new_client, tokens):
    body = await register(api)
    n = body["number"]
    engineers = ["shifu1", "shifu2"] * 10

    async def grab(user: str) -> tuple[int, dict[str, Any]]:
        async with new_client() as c:
            r = await c.post(
                f"/api/v1/orders/{n}/actions/grab",
                json={"version": 1},
                headers={"Authorization": f"Bearer {tokens[user]}"},
            )
            return r.status_code, r.json()

    results = await asyncio.gather(*(grab(u) for u in engineers))
    codes = sorted(code for code, _ in results)
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    refusals = [b["error"]["message"] for code, b in results if code == 409]
    assert all(m for m in refusals)
    order = (await api("GET", f"/api/v1/orders/{n}", "kefu")).json()
    assert [h["action"] for h in order["history"]].count("grab") == 1


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
