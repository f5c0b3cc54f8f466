"""The admin pages as an admin, a supervisor, a dispatcher, an engineer and an outsider use them."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import csrf_of, post_login

HX = {"HX-Request": "true"}


async def _id(engine: Any, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def _login(c: Any, username: str) -> str:
    r = await post_login(c, {"username": username, "password": "demo1234"})
    assert r.status_code == 303, r.text
    return await csrf_of(c)


async def _events(engine: Any, subject: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT action FROM admin_events WHERE subject = :s ORDER BY id"), {"s": subject}
        )
        return [r[0] for r in rows]


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


# ---- who may open what ------------------------------------------------------------------------

ADMIN_ONLY = [
    "/admin/staff",
    "/admin/tokens",
    "/admin/catalog",
    "/admin/suppliers",
    "/admin/projects",
    "/admin/projects/{demo}",
    "/admin/projects/{demo}/teams",
]
ADMIN_AND_SUPERVISOR = ["/admin", "/admin/sla", "/admin/workload"]
USERS = ["admin", "zhuguan", "kefu", "shifu1"]


@pytest.mark.parametrize("username", USERS)
async def test_each_role_opens_only_its_admin_pages(new_client, engine, username):
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    async with new_client() as c:
        await _login(c, username)
        for path in ADMIN_ONLY + ADMIN_AND_SUPERVISOR:
            r = await c.get(path.format(demo=demo))
            allowed = username == "admin" or (username == "zhuguan" and path in ADMIN_AND_SUPERVISOR)
            assert r.status_code == (200 if allowed else 403), (username, path, r.status_code)


@pytest.mark.parametrize("username", ["zhuguan", "kefu", "shifu1"])
async def test_non_admins_cannot_write_admin_forms(new_client, engine, username):
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    async with new_client() as c:
        token = await _login(c, username)
        for path in (
            "/admin/staff",
            "/admin/kiosks",
            "/admin/catalog",
            "/admin/suppliers",
            "/admin/projects",
            f"/admin/projects/{demo}/buildings",
            f"/admin/projects/{demo}/teams",
        ):
            r = await c.post(path, data={"_csrf": token, "name": "x"})
            assert r.status_code == 403, (username, path)


async def test_anonymous_is_sent_to_login(client):
    r = await client.get("/admin/staff")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_another_projects_pages_do_not_exist_for_the_admin(client, login, engine):
    await login("admin")
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    for path in (f"/admin/projects/{other}", f"/admin/projects/{other}/teams"):
        assert (await client.get(path)).status_code == 404
    other_kefu = await _id(engine, "SELECT id FROM staff WHERE username = 'other_kefu'")
    assert (await client.get(f"/admin/staff/{other_kefu}")).status_code == 404
    assert "other_kefu" not in (await client.get("/admin/staff")).text


async def test_the_admin_cannot_write_another_projects_data(client, login, engine):
    """Every admin write naming another project's row is a 404, and nothing changes there."""
    token = await login("admin")
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    other_kefu = await _id(engine, "SELECT id FROM staff WHERE username = 'other_kefu'")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")

    async def snapshot() -> tuple[Any, ...]:
        async with engine.connect() as conn:
            return tuple(
                (
                    await conn.execute(
                        text(
                            "SELECT (SELECT count(*) FROM buildings WHERE project_id = :p),"
                            " (SELECT count(*) FROM rooms r JOIN buildings b ON b.id = r.building_id"
                            "   WHERE b.project_id = :p),"
                            " (SELECT count(*) FROM public_areas WHERE project_id = :p),"
                            " (SELECT count(*) FROM teams WHERE project_id = :p),"
                            " (SELECT name FROM projects WHERE id = :p),"
                            " (SELECT row(active, password_hash, role, display_name)::text FROM staff WHERE id = :s)"
                        ),
                        {"p": other, "s": other_kefu},
                    )
                ).one()
            )

    before = await snapshot()
    writes = [
        (f"/admin/projects/{other}", {"name": "改名", "tz": "Asia/Shanghai"}),
        (f"/admin/projects/{other}/buildings", {"b_code": "9", "b_name": "9栋"}),
        (f"/admin/projects/{other}/rooms", {"building": "1", "room": "101"}),
        (
            f"/admin/projects/{other}/rooms/bulk",
            {"building": "1", "floors": "2", "units": "1", "per_floor": "2"},
        ),
        (f"/admin/projects/{other}/areas", {"area_name": "大堂"}),
        (f"/admin/projects/{other}/teams", {"name": "抢来的班", "department": "engineering"}),
        (f"/admin/staff/{other_kefu}", {"display_name": "改了", "role": "admin", "projects": str(demo)}),
        (f"/admin/staff/{other_kefu}/active", {"active": "0"}),
        (f"/admin/staff/{other_kefu}/password", {"password": "longenough9"}),
    ]
    for path, data in writes:
        r = await client.post(path, headers=HX, data={"_csrf": token, **data})
        assert r.status_code == 404, (path, r.status_code)
    # Nor can the admin put a new person into a project they do not serve.
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": _unique("intruder"),
            "display_name": "外人",
            "role": "dispatcher",
            "password": "longenough1",
            "projects": str(other),
        },
    )
    assert r.status_code in (404, 422)
    assert await _id(engine, "SELECT count(*) FROM staff WHERE display_name = '外人'") == 0
    assert await snapshot() == before


# ---- staff ------------------------------------------------------------------------------------


async def test_a_new_staff_member_can_log_in_until_disabled(client, login, new_client, engine):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    username = _unique("desk")
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": username,
            "display_name": "新客服",
            "role": "dispatcher",
            "department": "customer_service",
            "projects": [str(demo)],
            "password": "longenough1",
        },
    )
    assert r.status_code == 200, r.text
    assert username in r.text
    sid = await _id(engine, "SELECT id FROM staff WHERE username = :u", u=username)
    assert await _id(engine, "SELECT count(*) FROM staff_projects WHERE staff_id = :s", s=sid) == 1

    async with new_client() as person:
        r = await post_login(person, {"username": username, "password": "longenough1"})
        assert r.status_code == 303
        assert (await person.get("/account")).status_code == 200
        r = await client.post(f"/admin/staff/{sid}/active", headers=HX, data={"_csrf": token, "active": "0"})
        assert r.status_code == 200
        # The very next request of the disabled person: back to the login page.
        r = await person.get("/account")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = await post_login(person, {"username": username, "password": "longenough1"})
        assert r.status_code != 303
    assert await _id(engine, "SELECT active FROM staff WHERE id = :s", s=sid) is False
    assert await _events(engine, f"staff:{sid}") == ["create", "disable"]


async def test_staff_form_errors_are_shown_beside_their_fields(client, login, engine):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    before = await _id(engine, "SELECT count(*) FROM staff")
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": "Bad Name!",
            "display_name": "",
            "role": "dispatcher",
            "projects": [str(demo)],
            "password": "short",
            "pin": "1234",
        },
    )
    assert r.status_code == 422
    for field in ("username", "display_name", "password", "pin"):
        assert f'data-field="{field}"' in r.text, field
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": "kefu",
            "display_name": "重名",
            "role": "dispatcher",
            "projects": [str(demo)],
            "password": "longenough1",
        },
    )
    assert r.status_code == 422 and 'data-field="username"' in r.text
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": _unique("x"),
            "display_name": "越权",
            "role": "engineer",
            "projects": [str(other)],
            "password": "longenough1",
        },
    )
    assert r.status_code == 422 and 'data-field="projects"' in r.text
    assert await _id(engine, "SELECT count(*) FROM staff") == before


async def test_the_admin_edits_role_projects_and_resets_the_password(client, login, new_client, engine):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    team = await _id(engine, "SELECT id FROM teams WHERE name = '秩序一队'")
    username = _unique("order")
    await client.post(
        "/admin/staff",
        data={
            "_csrf": token,
            "username": username,
            "display_name": "新队员",
            "role": "dispatcher",
            "projects": [str(demo)],
            "password": "longenough1",
        },
    )
    sid = await _id(engine, "SELECT id FROM staff WHERE username = :u", u=username)
    r = await client.post(
        f"/admin/staff/{sid}",
        headers=HX,
        data={
            "_csrf": token,
            "display_name": "新队员",
            "role": "handler",
            "department": "order",
            "projects": [str(demo)],
            "teams": [str(team)],
        },
    )
    assert r.status_code == 200, r.text
    assert await _id(engine, "SELECT role FROM staff WHERE id = :s", s=sid) == "handler"
    assert await _id(engine, "SELECT team_id FROM staff_teams WHERE staff_id = :s", s=sid) == team
    r = await client.post(
        f"/admin/staff/{sid}/password",
        headers=HX,
        data={"_csrf": token, "password": "anotherpass2", "pin": "4321"},
    )
    assert r.status_code == 200
    async with new_client() as person:
        r = await post_login(person, {"username": username, "pin": "4321"}, "/login/pin")
        assert r.status_code == 303
    assert await _events(engine, f"staff:{sid}") == ["create", "update", "reset_password"]
    # Leaving the rest of the suite's staff lists as they were.
    await client.post(f"/admin/staff/{sid}/active", data={"_csrf": token, "active": "0"})


async def test_the_admin_cannot_disable_themselves(client, login, engine):
    token = await login("admin")
    me = await _id(engine, "SELECT id FROM staff WHERE username = 'admin'")
    r = await client.post(f"/admin/staff/{me}/active", headers=HX, data={"_csrf": token, "active": "0"})
    assert r.status_code == 422 and 'data-field="active"' in r.text
    assert await _id(engine, "SELECT active FROM staff WHERE id = :s", s=me) is True


# ---- tokens -----------------------------------------------------------------------------------


async def test_a_kiosk_token_is_shown_once_and_stops_working_when_revoked(client, login, engine, app):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    name = _unique("门岗屏")
    r = await client.post(
        "/admin/kiosks", headers=HX, data={"_csrf": token, "name": name, "projects": [str(demo)]}
    )
    assert r.status_code == 200
    kiosk = re.search(r"/board\?kiosk=([A-Za-z0-9_\-]+)", r.text).group(1)
    kid = await _id(engine, "SELECT id FROM kiosk_tokens WHERE name = :n", n=name)
    assert await _id(engine, "SELECT project_id FROM kiosk_token_projects WHERE kiosk_id = :k", k=kid) == demo
    sessions = app.state.runtime.sessions
    principal = await sessions.from_kiosk_token(kiosk)
    assert principal is not None and principal.project_ids == frozenset({demo})
    # Shown once: the list page never carries it again.
    assert kiosk not in (await client.get("/admin/tokens")).text

    r = await client.post(f"/admin/kiosks/{kid}/revoke", headers=HX, data={"_csrf": token})
    assert r.status_code == 200
    assert await sessions.from_kiosk_token(kiosk) is None
    assert await _events(engine, f"kiosk:{kid}") == ["create", "revoke"]


async def test_kiosk_needs_a_project_of_the_admin(client, login, engine):
    token = await login("admin")
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    r = await client.post(
        "/admin/kiosks", headers=HX, data={"_csrf": token, "name": "x", "projects": [str(other)]}
    )
    assert r.status_code == 422 and 'data-field="projects"' in r.text
    r = await client.post("/admin/kiosks", headers=HX, data={"_csrf": token, "name": "x"})
    assert r.status_code == 422 and 'data-field="projects"' in r.text


async def test_the_admin_lists_and_revokes_a_users_api_token(client, login, new_client, engine):
    async with new_client() as person:
        t = await _login(person, "jingli")
        r = await person.post("/account/tokens", data={"_csrf": t, "name": "月报脚本"})
        api = re.search(r'class="token">([^<]+)<', r.text).group(1)
    assert (await client.get("/api/v1/orders", headers={"Authorization": f"Bearer {api}"})).status_code == 200
    token = await login("admin")
    page = await client.get("/admin/tokens")
    assert "月报脚本" in page.text and "周经理" in page.text
    tid = await _id(engine, "SELECT id FROM api_tokens WHERE name = '月报脚本' ORDER BY id DESC LIMIT 1")
    r = await client.post(f"/admin/api-tokens/{tid}/revoke", headers=HX, data={"_csrf": token})
    assert r.status_code == 200
    assert (await client.get("/api/v1/orders", headers={"Authorization": f"Bearer {api}"})).status_code == 401
    assert await _events(engine, f"api_token:{tid}") == ["revoke"]


# ---- catalog and suppliers --------------------------------------------------------------------


@pytest.mark.parametrize(("price", "fen"), [("12.5", 1250), ("0.29", 29), ("¥15", 1500), ("0", 0)])
async def test_catalog_prices_are_read_as_exact_yuan(client, login, engine, price, fen):
    token = await login("admin")
    code = _unique("T").upper()
    r = await client.post(
        "/admin/catalog",
        headers=HX,
        data={
            "_csrf": token,
            "category": "plumbing",
            "code": code,
            "name": "更换角阀",
            "minutes": "20",
            "price": price,
        },
    )
    assert r.status_code == 200, r.text
    item = await _id(engine, "SELECT id FROM catalog_items WHERE code = :c", c=code)
    assert await _id(engine, "SELECT price_fen FROM catalog_items WHERE id = :i", i=item) == fen
    assert await _events(engine, f"catalog_item:{item}") == ["create"]
    r = await client.post(f"/admin/catalog/{item}/active", headers=HX, data={"_csrf": token, "active": "0"})
    assert r.status_code == 200
    assert await _id(engine, "SELECT active FROM catalog_items WHERE id = :i", i=item) is False


@pytest.mark.parametrize("price", ["abc", "-1", "1e3", "12.345", "NaN", ""])
async def test_a_bad_price_is_refused_beside_the_field(client, login, engine, price):
    token = await login("admin")
    code = _unique("T").upper()
    r = await client.post(
        "/admin/catalog",
        headers=HX,
        data={
            "_csrf": token,
            "category": "plumbing",
            "code": code,
            "name": "更换角阀",
            "minutes": "20",
            "price": price,
        },
    )
    assert r.status_code == 422
    assert 'data-field="price"' in r.text
    assert await _id(engine, "SELECT count(*) FROM catalog_items WHERE code = :c", c=code) == 0


async def test_catalog_edit_and_duplicate_code(client, login, engine):
    token = await login("admin")
    item = await _id(engine, "SELECT id FROM catalog_items WHERE code = 'P01'")
    r = await client.get(f"/admin/catalog/{item}")
    assert r.status_code == 200 and 'value="15.00"' in r.text
    r = await client.post(
        f"/admin/catalog/{item}",
        headers=HX,
        data={
            "_csrf": token,
            "category": "plumbing",
            "code": "P02",
            "name": "更换普通水龙头",
            "minutes": "15",
            "price": "15",
            "active": "1",
        },
    )
    assert r.status_code == 422 and 'data-field="code"' in r.text
    r = await client.post(
        f"/admin/catalog/{item}",
        headers=HX,
        data={
            "_csrf": token,
            "category": "plumbing",
            "code": "P01",
            "name": "更换普通水龙头",
            "minutes": "15",
            "price": "18.80",
            "price_note": "含人工",
            "active": "1",
        },
    )
    assert r.status_code == 200
    assert await _id(engine, "SELECT price_fen FROM catalog_items WHERE id = :i", i=item) == 1880
    await client.post(
        f"/admin/catalog/{item}",
        data={
            "_csrf": token,
            "category": "plumbing",
            "code": "P01",
            "name": "更换普通水龙头",
            "minutes": "15",
            "price": "15",
            "active": "1",
        },
    )


async def test_suppliers_are_added_edited_and_deactivated(client, login, engine):
    token = await login("admin")
    name = _unique("格力售后")
    r = await client.post(
        "/admin/suppliers",
        headers=HX,
        data={
            "_csrf": token,
            "name": name,
            "service": "维修空调",
            "contact": "陈工",
            "phone": "400-800-1234",
        },
    )
    assert r.status_code == 200 and name in r.text
    sid = await _id(engine, "SELECT id FROM suppliers WHERE name = :n", n=name)
    r = await client.post(
        f"/admin/suppliers/{sid}",
        headers=HX,
        data={"_csrf": token, "name": name, "service": "", "phone": "call me"},
    )
    assert r.status_code == 422 and 'data-field="service"' in r.text and 'data-field="phone"' in r.text
    r = await client.post(f"/admin/suppliers/{sid}/active", headers=HX, data={"_csrf": token, "active": "0"})
    assert r.status_code == 200
    assert await _id(engine, "SELECT active FROM suppliers WHERE id = :i", i=sid) is False
    assert await _events(engine, f"supplier:{sid}") == ["create", "disable"]


# ---- SLA policy -------------------------------------------------------------------------------


async def _rule_form(engine: Any, token: str, **over: str) -> dict[str, str]:
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    return {
        "_csrf": token,
        "project": str(demo),
        "kind": "",
        "category": "hvac",
        "urgency": "low",
        "clock": "arrival",
        "minutes": "45",
        "priority": "0",
        **over,
    }


async def test_sla_rules_are_validated_over_the_whole_policy(client, login, engine):
    token = await login("admin")
    count = "SELECT count(*) FROM sla_rules"
    before = await _id(engine, count)
    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token, minutes="0"))
    assert r.status_code == 422 and 'data-field="minutes"' in r.text
    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token, minutes="soon"))
    assert r.status_code == 422 and 'data-field="minutes"' in r.text
    r = await client.post(
        "/admin/sla",
        headers=HX,
        data=await _rule_form(engine, token, urgency="emergency", business_hours="1"),
    )
    assert r.status_code == 422 and 'data-field="business_hours"' in r.text
    assert await _id(engine, count) == before

    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token))
    assert r.status_code == 200, r.text
    assert "此后开始的计时" in r.text  # the page says a change applies to new clocks only
    rule = await _id(engine, "SELECT max(id) FROM sla_rules")
    try:
        # Same clock, same priority, equally specific and able to match the same order: ambiguous.
        r = await client.post(
            "/admin/sla", headers=HX, data=await _rule_form(engine, token, category="", kind="repair")
        )
        assert r.status_code == 422 and 'data-field="priority"' in r.text
        r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token))
        assert r.status_code == 422 and 'data-field="priority"' in r.text
        assert await _id(engine, count) == before + 1
        # Editing retires the rule and adds its successor; running clocks keep their deadline.
        r = await client.post(
            f"/admin/sla/{rule}", headers=HX, data=await _rule_form(engine, token, minutes="50")
        )
        assert r.status_code == 200, r.text
        new = await _id(engine, "SELECT max(id) FROM sla_rules")
        assert new != rule
        assert await _id(engine, "SELECT active FROM sla_rules WHERE id = :i", i=rule) is False
        assert await _id(engine, "SELECT minutes FROM sla_rules WHERE id = :i", i=new) == 50
        assert await _events(engine, f"sla_rule:{rule}") == ["create", "replace"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE sla_rules SET active = false WHERE id >= :i"), {"i": rule})


async def test_a_supervisor_sets_rules_of_their_project_but_not_global_ones(client, login, engine):
    token = await login("zhuguan")
    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token, project=""))
    assert r.status_code == 422 and 'data-field="project"' in r.text
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token, project=str(other)))
    assert r.status_code == 422 and 'data-field="project"' in r.text
    r = await client.post("/admin/sla", headers=HX, data=await _rule_form(engine, token, category="network"))
    assert r.status_code == 200, r.text
    rule = await _id(engine, "SELECT max(id) FROM sla_rules")
    r = await client.post(f"/admin/sla/{rule}/active", headers=HX, data={"_csrf": token, "active": "0"})
    assert r.status_code == 200
    assert await _events(engine, f"sla_rule:{rule}") == ["create", "disable"]


# ---- projects, places, teams ------------------------------------------------------------------


async def test_project_settings_are_validated(client, login, engine):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    good = {
        "_csrf": token,
        "name": "阳光花园",
        "tz": "Asia/Shanghai",
        "desk_opens": "09:00",
        "desk_closes": "17:30",
        "business_hours": "",
        "dispatch_mode": "grab",
        "count_fairly_satisfied": "1",
    }
    r = await client.post(
        f"/admin/projects/{demo}",
        headers=HX,
        data={
            **good,
            "tz": "Mars/Olympus",
            "business_hours": "9-5",
            "desk_closes": "08:00",
            "dispatch_mode": "auction",
        },
    )
    assert r.status_code == 422
    for field in ("tz", "business_hours", "desk_closes", "dispatch_mode"):
        assert f'data-field="{field}"' in r.text, field
    r = await client.post(
        f"/admin/projects/{demo}", headers=HX, data={**good, "business_hours": "08:30 至 18:00"}
    )
    assert r.status_code == 200
    assert await _id(engine, "SELECT business_hours FROM projects WHERE id = :p", p=demo) == "08:30-18:00"
    await client.post(f"/admin/projects/{demo}", data=good)
    assert await _id(engine, "SELECT business_hours FROM projects WHERE id = :p", p=demo) is None
    assert (await _events(engine, f"project:{demo}"))[-2:] == ["update", "update"]


async def test_a_new_project_gets_buildings_rooms_in_bulk_and_public_areas(client, login, engine):
    token = await login("admin")
    code = _unique("T").upper()[:8]
    r = await client.post(
        "/admin/projects",
        headers=HX,
        data={
            "_csrf": token,
            "code": code,
            "name": "测试小区",
            "tz": "Asia/Urumqi",
            "desk_opens": "10:00",
            "desk_closes": "18:00",
            "business_hours": "10:00-18:00",
            "dispatch_mode": "assign",
        },
    )
    assert r.status_code == 200, r.text
    pid = await _id(engine, "SELECT id FROM projects WHERE code = :c", c=code)
    assert await _id(engine, "SELECT count_fairly_satisfied FROM projects WHERE id = :p", p=pid) is False
    # The creator serves the new project at once.
    assert (await client.get(f"/admin/projects/{pid}")).status_code == 200
    r = await client.post(
        "/admin/projects",
        headers=HX,
        data={
            "_csrf": token,
            "code": code,
            "name": "重复",
            "tz": "Asia/Shanghai",
            "desk_opens": "09:00",
            "desk_closes": "17:30",
            "dispatch_mode": "grab",
        },
    )
    assert r.status_code == 422 and 'data-field="code"' in r.text

    r = await client.post(
        f"/admin/projects/{pid}/buildings", headers=HX, data={"_csrf": token, "b_code": "1"}
    )
    assert r.status_code == 200
    r = await client.post(
        f"/admin/projects/{pid}/buildings", headers=HX, data={"_csrf": token, "b_code": "1"}
    )
    assert r.status_code == 422 and 'data-field="b_code"' in r.text
    bid = await _id(engine, "SELECT id FROM buildings WHERE project_id = :p", p=pid)

    bulk = {
        "_csrf": token,
        "bulk_building": str(bid),
        "bulk_units": "2",
        "bulk_floors": "13",
        "bulk_doors": "2",
    }
    r = await client.post(f"/admin/projects/{pid}/rooms/bulk", headers=HX, data=bulk)
    assert r.status_code == 200
    assert await _id(engine, "SELECT count(*) FROM rooms WHERE building_id = :b", b=bid) == 2 * 13 * 2
    numbers = "SELECT array_agg(number ORDER BY number::int) FROM rooms WHERE building_id = :b AND unit = '1'"
    got = await _id(engine, numbers, b=bid)
    assert got[:2] == ["101", "102"] and got[-1] == "1302"
    r = await client.post(
        f"/admin/projects/{pid}/rooms/bulk", headers=HX, data={**bulk, "bulk_floors": "12-14"}
    )
    assert r.status_code == 200
    assert await _id(engine, "SELECT count(*) FROM rooms WHERE building_id = :b", b=bid) == 2 * 14 * 2
    for bad in (
        {"bulk_floors": "0"},
        {"bulk_doors": "100"},
        {"bulk_units": ""},
        {"bulk_floors": "1-200", "bulk_doors": "99"},
    ):
        r = await client.post(f"/admin/projects/{pid}/rooms/bulk", headers=HX, data={**bulk, **bad})
        assert r.status_code == 422, bad
    assert await _events(engine, f"building:{bid}") == ["create", "add_rooms", "add_rooms"]

    r = await client.post(
        f"/admin/projects/{pid}/rooms",
        headers=HX,
        data={
            "_csrf": token,
            "room_building": str(bid),
            "room_unit": "3",
            "room_number": "101",
            "owner_name": "钱七",
            "owner_phone": "+86 139-0000-2222",
        },
    )
    assert r.status_code == 200, r.text
    assert (
        await _id(engine, "SELECT owner_phone FROM rooms WHERE building_id = :b AND unit = '3'", b=bid)
        == "13900002222"
    )
    r = await client.post(
        f"/admin/projects/{pid}/rooms",
        headers=HX,
        data={
            "_csrf": token,
            "room_building": str(bid),
            "room_unit": "3",
            "room_number": "101",
            "owner_phone": "12",
        },
    )
    assert (
        r.status_code == 422
        and 'data-field="owner_phone"' in r.text
        and 'data-field="room_number"' not in r.text
    )
    r = await client.post(
        f"/admin/projects/{pid}/rooms",
        headers=HX,
        data={"_csrf": token, "room_building": str(bid), "room_unit": "3", "room_number": "101"},
    )
    assert r.status_code == 422 and 'data-field="room_number"' in r.text

    r = await client.post(
        f"/admin/projects/{pid}/areas", headers=HX, data={"_csrf": token, "area_name": "3号地库"}
    )
    assert r.status_code == 200 and "3号地库" in r.text
    r = await client.post(
        f"/admin/projects/{pid}/areas", headers=HX, data={"_csrf": token, "area_name": "3号地库"}
    )
    assert r.status_code == 422 and 'data-field="area_name"' in r.text
    assert await _events(engine, f"project:{pid}") == ["create"]


async def test_teams_are_created_with_a_lead(client, login, engine):
    token = await login("admin")
    # A project of its own, so the demo's teams stay as the rest of the suite expects them.
    code = _unique("TM").upper()[:8]
    await client.post(
        "/admin/projects",
        data={
            "_csrf": token,
            "code": code,
            "name": "班组测试",
            "tz": "Asia/Shanghai",
            "desk_opens": "09:00",
            "desk_closes": "17:30",
            "dispatch_mode": "grab",
        },
    )
    pid = await _id(engine, "SELECT id FROM projects WHERE code = :c", c=code)
    lead = await _id(engine, "SELECT id FROM staff WHERE username = 'admin'")
    r = await client.post(
        f"/admin/projects/{pid}/teams",
        headers=HX,
        data={"_csrf": token, "name": "空调班", "department": "engineering", "lead": str(lead)},
    )
    assert r.status_code == 200, r.text
    tid = await _id(engine, "SELECT id FROM teams WHERE project_id = :p", p=pid)
    assert await _id(engine, "SELECT lead_id FROM teams WHERE id = :t", t=tid) == lead
    assert (
        await _id(
            engine, "SELECT count(*) FROM staff_teams WHERE team_id = :t AND staff_id = :s", t=tid, s=lead
        )
        == 1
    )
    other_shifu = await _id(engine, "SELECT id FROM staff WHERE username = 'other_shifu'")
    r = await client.post(
        f"/admin/teams/{tid}/lead", headers=HX, data={"_csrf": token, "lead": str(other_shifu)}
    )
    assert r.status_code == 422 and 'data-field="lead"' in r.text
    r = await client.post(f"/admin/teams/{tid}/lead", headers=HX, data={"_csrf": token, "lead": ""})
    assert r.status_code == 200
    assert await _id(engine, "SELECT lead_id FROM teams WHERE id = :t", t=tid) is None
    r = await client.post(
        f"/admin/projects/{pid}/teams",
        headers=HX,
        data={"_csrf": token, "name": "空调班", "department": "engineering"},
    )
    assert r.status_code == 422 and 'data-field="name"' in r.text
    r = await client.post(
        f"/admin/projects/{pid}/teams",
        headers=HX,
        data={"_csrf": token, "name": "绿化组", "department": "forestry"},
    )
    assert r.status_code == 422 and 'data-field="department"' in r.text
    assert await _events(engine, f"team:{tid}") == ["create", "set_lead"]


async def test_the_lead_or_a_supervisor_marks_the_team_saturated_for_today(new_client, engine):
    from server import clock
    from server.persistence import admin as admin_db

    team = await _id(engine, "SELECT id FROM teams WHERE name = '水电班'")
    other_team = await _id(
        engine,
        "SELECT t.id FROM teams t JOIN projects p ON p.id = t.project_id WHERE p.code = 'OTHER' LIMIT 1",
    )
    today = admin_db.local_day("Asia/Shanghai", clock.now())
    try:
        async with new_client() as c:
            token = await _login(c, "shifu1")  # a member, not the lead
            r = await c.post(
                f"/admin/teams/{team}/saturation", headers=HX, data={"_csrf": token, "saturated": "1"}
            )
            assert r.status_code == 403
        async with new_client() as c:
            token = await _login(c, "zhuguan")  # the lead of 水电班, and a supervisor
            assert "水电班" in (await c.get("/admin/workload")).text
            r = await c.post(
                f"/admin/teams/{team}/saturation", headers=HX, data={"_csrf": token, "saturated": "1"}
            )
            assert r.status_code == 200
            async with engine.connect() as conn:
                assert await admin_db.team_saturated(conn, team, today) is True
            r = await c.post(
                f"/admin/teams/{team}/saturation", headers=HX, data={"_csrf": token, "saturated": "0"}
            )
            assert r.status_code == 200
            async with engine.connect() as conn:
                assert await admin_db.team_saturated(conn, team, today) is False
            if other_team:
                r = await c.post(
                    f"/admin/teams/{other_team}/saturation",
                    headers=HX,
                    data={"_csrf": token, "saturated": "1"},
                )
                assert r.status_code == 404
        assert (await _events(engine, f"team:{team}"))[-2:] == ["saturated", "unsaturated"]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE teams SET saturated_on = NULL WHERE id = :t"), {"t": team})


async def test_the_index_shows_recent_changes_to_the_admin(client, login):
    await login("admin")
    r = await client.get("/admin")
    assert r.status_code == 200 and "/admin/staff" in r.text


async def test_odd_input_is_refused_not_a_server_error(client, login, engine):
    token = await login("admin")
    demo = await _id(engine, "SELECT id FROM projects WHERE code = 'DEMO'")
    assert (await client.get("/admin/staff/99999999999")).status_code == 404
    assert (await client.get("/admin/catalog/2147483648")).status_code == 404
    r = await client.post(
        "/admin/staff",
        headers=HX,
        data={
            "_csrf": token,
            "username": _unique("odd"),
            "display_name": "x",
            "role": "dispatcher",
            "projects": [str(demo)],
            "teams": ["99999999999"],
            "password": "longenough1",
        },
    )
    assert r.status_code == 422 and 'data-field="teams"' in r.text
    r = await client.post(
        f"/admin/projects/{demo}/rooms/bulk",
        headers=HX,
        data={"_csrf": token, "bulk_building": "²", "bulk_units": "²", "bulk_floors": "1", "bulk_doors": "1"},
    )
    assert r.status_code == 422 and 'data-field="bulk_building"' in r.text
    name = _unique("空\x00调")
    r = await client.post(
        "/admin/suppliers", headers=HX, data={"_csrf": token, "name": name, "service": "维修"}
    )
    assert r.status_code == 200
    sid = await _id(engine, "SELECT id FROM suppliers WHERE name = :n", n=name.replace("\x00", ""))
    await client.post(f"/admin/suppliers/{sid}/active", data={"_csrf": token, "active": "0"})


async def test_teams_are_renamed_and_moved_but_not_across_projects(client, login, new_client, engine):
    token = await login("admin")
    code = _unique("TE").upper()[:8]
    await client.post(
        "/admin/projects",
        data={
            "_csrf": token,
            "code": code,
            "name": "班组改名",
            "tz": "Asia/Shanghai",
            "desk_opens": "09:00",
            "desk_closes": "17:30",
            "dispatch_mode": "grab",
        },
    )
    pid = await _id(engine, "SELECT id FROM projects WHERE code = :c", c=code)
    for name in ("水电班", "保洁一组"):
        r = await client.post(
            f"/admin/projects/{pid}/teams",
            headers=HX,
            data={"_csrf": token, "name": name, "department": "engineering"},
        )
        assert r.status_code == 200, r.text
    tid = await _id(engine, "SELECT id FROM teams WHERE project_id = :p AND name = '保洁一组'", p=pid)
    r = await client.post(
        f"/admin/teams/{tid}", headers=HX, data={"_csrf": token, "name": "保洁二组", "department": "cleaning"}
    )
    assert r.status_code == 200 and "保洁二组" in r.text
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT name, department_code FROM teams WHERE id = :t"), {"t": tid})
        ).one()
    assert tuple(row) == ("保洁二组", "cleaning")
    r = await client.post(
        f"/admin/teams/{tid}", headers=HX, data={"_csrf": token, "name": "水电班", "department": "cleaning"}
    )
    assert r.status_code == 422 and 'data-field="name"' in r.text  # the other team's name
    r = await client.post(
        f"/admin/teams/{tid}", headers=HX, data={"_csrf": token, "name": "保洁二组", "department": "forestry"}
    )
    assert r.status_code == 422 and 'data-field="department"' in r.text
    assert await _id(engine, "SELECT name FROM teams WHERE id = :t", t=tid) == "保洁二组"
    assert await _events(engine, f"team:{tid}") == ["create", "update"]
    # Another project's team does not exist for this admin; a supervisor may not edit teams.
    other = await _id(engine, "SELECT id FROM projects WHERE code = 'OTHER'")
    async with engine.begin() as conn:
        other_team = (
            await conn.execute(
                text(
                    "INSERT INTO teams (project_id, department_code, name) VALUES (:p, 'engineering', :n)"
                    " RETURNING id"
                ),
                {"p": other, "n": _unique("别人的班组")},
            )
        ).scalar_one()
    r = await client.post(
        f"/admin/teams/{other_team}",
        headers=HX,
        data={"_csrf": token, "name": "抢来的", "department": "cleaning"},
    )
    assert r.status_code == 404
    assert await _id(engine, "SELECT department_code FROM teams WHERE id = :t", t=other_team) == "engineering"
    async with new_client() as c:
        sup = await _login(c, "zhuguan")
        r = await c.post(
            f"/admin/teams/{tid}",
            headers=HX,
            data={"_csrf": sup, "name": "主管改的", "department": "cleaning"},
        )
        assert r.status_code == 403


async def test_departments_are_listed_and_renamed_only_by_an_admin_of_every_project(
    client, login, new_client, engine
):
    token = await login("admin")
    r = await client.get("/admin/departments")
    assert r.status_code == 200
    for name in ("工程部", "秩序部", "客服部", "保洁", "绿化"):
        assert name in r.text
    # The demo admin serves DEMO only: departments are shared with OTHER, so no renaming.
    assert 'action="/admin/departments/order"' not in r.text
    r = await client.post("/admin/departments/order", headers=HX, data={"_csrf": token, "name": "安保部"})
    assert r.status_code == 403
    assert await _id(engine, "SELECT name FROM departments WHERE code = 'order'") == "秩序部"
    # An administrator of every project may.
    async with engine.begin() as conn:
        admin_id = (await conn.execute(text("SELECT id FROM staff WHERE username = 'admin'"))).scalar_one()
        served = (
            (
                await conn.execute(
                    text("SELECT project_id FROM staff_projects WHERE staff_id = :s"), {"s": admin_id}
                )
            )
            .scalars()
            .all()
        )
        await conn.execute(
            text(
                "INSERT INTO staff_projects (staff_id, project_id) SELECT :s, id FROM projects"
                " ON CONFLICT DO NOTHING"
            ),
            {"s": admin_id},
        )
        await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"staff:{admin_id}"})
    try:
        async with new_client() as c:
            tok = await _login(c, "admin")
            r = await c.get("/admin/departments")
            assert 'action="/admin/departments/order"' in r.text
            r = await c.post("/admin/departments/order", headers=HX, data={"_csrf": tok, "name": ""})
            assert r.status_code == 422 and 'data-field="name"' in r.text
            r = await c.post("/admin/departments/nonesuch", headers=HX, data={"_csrf": tok, "name": "x"})
            assert r.status_code == 404
            r = await c.post("/admin/departments/order", headers=HX, data={"_csrf": tok, "name": "安保部"})
            assert r.status_code == 200 and "安保部" in r.text
            assert await _id(engine, "SELECT name FROM departments WHERE code = 'order'") == "安保部"
            assert (await _events(engine, "department:order"))[-1] == "rename"
            r = await c.post("/admin/departments/order", headers=HX, data={"_csrf": tok, "name": "安" * 21})
            assert r.status_code == 422 and 'data-field="name"' in r.text
        from sqlalchemy.exc import IntegrityError

        with pytest.raises(IntegrityError):  # the schema holds the same rule for other writers
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE departments SET name = '  ' WHERE code = 'order'"))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE departments SET name = '秩序部' WHERE code = 'order'"))
            await conn.execute(
                text("DELETE FROM staff_projects WHERE staff_id = :s AND NOT (project_id = ANY(:keep))"),
                {"s": admin_id, "keep": list(served)},
            )
            await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"staff:{admin_id}"})
