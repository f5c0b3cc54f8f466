"""Alert configuration and its effects: chains per project and kind, channels, elevators and
contractors, the desk's elevator choice, on-screen delivery, resolving by hand, the rota's
exact gaps, the API's refusals, and the demo's open entrapment.
"""

# ruff: noqa: F811 - the api and tokens fixtures come from test_alerts

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from server import clock
from server.persistence import alert_setup, alerts, oncall
from server.persistence import staff as staff_db
from tests.integration.test_alerts import (  # noqa: F401 - fixtures and autouse _tidy
    CREATED,
    _tidy,
    actor,
    alert_of,
    api,
    deliveries,
    events,
    register,
    step,
    timeline,
    tokens,
)


async def pid_of(engine, code: str) -> int:
    async with engine.connect() as conn:
        return await staff_db.project_id_by_code(conn, code)


async def staff_id(engine, username: str) -> int:
    async with engine.connect() as conn:
        row = await staff_db.by_username(conn, username)
    assert row is not None
    return row.id


@pytest.fixture
async def chains(engine) -> Any:
    """Remove the chains a test configured (the demo's own entrapment chain stays)."""
    yield
    async with engine.begin() as conn:
        other = await staff_db.project_id_by_code(conn, "OTHER")
        await conn.execute(
            text("DELETE FROM escalation_chains WHERE project_id IS NULL OR project_id = :p"), {"p": other}
        )


# ---- chains --------------------------------------------------------------------------------


async def test_each_project_and_alert_kind_freezes_its_own_chain(engine, chains):
    other, shifu = await pid_of(engine, "OTHER"), await staff_id(engine, "other_shifu")
    async with engine.begin() as conn:
        await alert_setup.save_chain(
            conn,
            other,
            "entrapment",
            [
                {"target": "supervisor", "wait_after_minutes": 2},
                {"target": f"staff:{shifu}", "wait_after_minutes": 3},
            ],
            10,
            None,
        )
        # The all-projects chain of emergencies: every project without its own uses it.
        await conn.execute(
            text(
                "INSERT INTO escalation_chains (project_id, alert_kind, steps) VALUES (NULL, 'emergency', "
                "CAST(:s AS jsonb))"
            ),
            {"s": json.dumps([{"target": "supervisor", "wait_after_minutes": 4}])},
        )
    t0 = clock.now()
    theirs = await alert_of(engine, (await register(engine, t0, by="other_kefu", project="OTHER")).id)
    assert [s["target"] for s in theirs["chain"]["steps"]] == ["supervisor", f"staff:{shifu}"]
    assert [r["name"] for s in theirs["chain"]["steps"] for r in s["recipients"]] == [
        "other_zhuguan",
        "other_shifu",
    ]
    assert (
        theirs["next_step_at"] == t0 + timedelta(minutes=2) and theirs["chain"]["remind_after_minutes"] == 10
    )
    ours = await alert_of(engine, (await register(engine, t0)).id)
    assert [s["target"] for s in ours["chain"]["steps"]] == [
        "oncall_primary",
        "oncall_backup",
        "supervisor",
        "manager",
    ]
    emergency = await register(
        engine,
        t0,
        kind="repair",
        category="plumbing",
        urgency="emergency",
        public_area="1号地库",
        summary="爆管",
    )
    e = await alert_of(engine, emergency.id, "emergency")
    assert [(s["target"], s["wait_after_minutes"]) for s in e["chain"]["steps"]] == [("supervisor", 4)]
    assert e["chain"]["steps"][0]["recipients"][0]["name"] == "王主管"


async def test_a_broken_chain_row_falls_back_to_the_default_and_registration_still_succeeds(
    engine, chains, caplog
):
    other = await pid_of(engine, "OTHER")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO escalation_chains (project_id, alert_kind, steps) VALUES (:p, 'entrapment', CAST(:s AS jsonb))"
            ),
            {"p": other, "s": json.dumps([{"target": "supervisor", "wait_after_minutes": 0}, {"who": "x"}])},
        )
    with caplog.at_level(logging.WARNING, logger="baoxiu.alerts.setup"):
        reg = await register(engine, clock.now(), by="other_kefu", project="OTHER")
    a = await alert_of(engine, reg.id)
    assert len(a["chain"]["steps"]) == 4 and a["state"] == "triggered"
    assert "invalid" in caplog.text


async def test_a_supervisor_edits_a_chain_on_the_admin_page_and_bad_rows_are_refused_in_place(
    client, login, engine, chains
):
    token = await login("other_zhuguan")
    r = await client.get("/admin/chains")
    assert r.status_code == 200 and 'id="chain-entrapment"' in r.text and 'data-source="default"' in r.text
    bad = {
        "_csrf": token,
        "target_0": "supervisor",
        "wait_0": "0",
        "target_1": "",
        "remind_after_minutes": "30",
    }
    r = await client.post("/admin/chains/entrapment", data=bad)
    assert r.status_code == 422 and 'data-field="wait_0"' in r.text and 'value="0"' in r.text
    r = await client.post("/admin/chains/entrapment", data={**bad, "target_0": "nobody", "wait_0": "2"})
    assert r.status_code == 422 and 'data-field="target_0"' in r.text
    good = {
        **bad,
        "target_0": "",
        "target_1": "supervisor",
        "wait_1": "2",
        "target_2": "oncall_primary",
        "wait_2": "5",
    }
    r = await client.post("/admin/chains/entrapment", data=good, follow_redirects=False)
    assert r.status_code == 303
    async with engine.connect() as conn:
        config = await alert_setup.chain_for(conn, await pid_of(engine, "OTHER"), "entrapment")
    assert [(s.target, s.wait_after_minutes) for s in config.steps] == [
        ("supervisor", 2),
        ("oncall_primary", 5),
    ]
    r = await client.get(r.headers["location"])
    assert 'id="chain-entrapment" data-kind="entrapment" data-source="project"' in r.text
    r = await client.post("/admin/chains/entrapment/reset", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert (await client.post("/admin/chains/bogus", data=good)).status_code == 404
    async with engine.connect() as conn:
        audit = (
            await conn.execute(text("SELECT count(*) FROM admin_events WHERE subject = 'escalation_chain'"))
        ).scalar()
    assert audit >= 2


async def test_an_engineer_cannot_edit_chains(client, login):
    await login("shifu1")
    assert (await client.get("/admin/chains")).status_code == 403


async def test_the_chain_api_sets_a_kinds_chain_and_refuses_bad_ones(api, client, engine, chains):
    body = {"steps": [{"target": "supervisor", "wait_after_minutes": 3}], "remind_after_minutes": 45}
    r = await api("PUT", "/api/v1/escalation-chains/breach?project=OTHER", "other_zhuguan", body)
    assert r.status_code == 200, r.text
    assert r.json() == {**body, "kind": "breach", "source": "project"}
    r = await api(
        "PUT",
        "/api/v1/escalation-chains/breach?project=OTHER",
        "other_zhuguan",
        {"steps": [{"target": "supervisor", "wait_after_minutes": 0}]},
    )
    assert r.status_code == 422 and r.json()["error"]["fields"] == {
        "steps.0.wait": r.json()["error"]["message"]
    }
    assert (
        await api("PUT", "/api/v1/escalation-chains/bogus?project=OTHER", "other_zhuguan", body)
    ).status_code == 404
    assert (
        await api("PUT", "/api/v1/escalation-chains/breach?project=DEMO", "other_zhuguan", body)
    ).status_code == 404
    assert (
        await api("PUT", "/api/v1/escalation-chains/breach?project=DEMO", "shifu1", body)
    ).status_code == 403
    assert (await client.put("/api/v1/escalation-chains/breach?project=DEMO", json=body)).status_code == 401
    r = await api("GET", "/api/v1/escalation-chains?project=OTHER", "other_zhuguan")
    kinds = {c["kind"]: c for c in r.json()["chains"]}
    assert kinds["breach"]["source"] == "project" and kinds["entrapment"]["source"] == "default"


# ---- channels, contractors, elevators ------------------------------------------------------


async def test_an_admin_configures_channels_and_secrets_stay_hidden(client, login, engine):
    token = await login("admin")
    r = await client.post(
        "/admin/channels", data={"_csrf": token, "channel": "webhook", "url": "ftp://x", "name": "x"}
    )
    assert r.status_code == 422 and 'data-field="url"' in r.text
    key = "k3y-secret-4567"
    robot = {
        "_csrf": token,
        "channel": "wecom",
        "url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}",
        "name": "工程群",
        "active": "0",
    }
    r = await client.post("/admin/channels", data=robot, follow_redirects=False)
    assert r.status_code == 303
    gateway = {
        "_csrf": token,
        "channel": "sms",
        "url": "https://sms.example/send",
        "token": "tok-987",
        "active": "0",
    }
    assert (await client.post("/admin/channels", data=gateway, follow_redirects=False)).status_code == 303
    page = (await client.get("/admin/channels")).text
    assert "工程群" in page and key not in page and "tok-987" not in page and "…4567" in page
    robot_id = re.search(r'data-channel="(\d+)" data-kind="wecom"', page).group(1)  # type: ignore[union-attr]
    edit = (await client.get(f"/admin/channels?edit={robot_id}")).text
    assert 'value="工程群"' in edit and "tok-987" not in edit
    async with engine.connect() as conn:
        rows = await alert_setup.channels_of(conn, await pid_of(engine, "DEMO"))
        audit = [
            r[0]
            for r in await conn.execute(
                text("SELECT details::text FROM admin_events WHERE subject = 'alert_channel'")
            )
        ]
    assert {(c["channel"], c["active"]) for c in rows} >= {("wecom", False), ("sms", False)}
    assert not any("tok-987" in d for d in audit)
    # Two active SMS gateways for one project are refused.
    sms_id = next(c["id"] for c in rows if c["channel"] == "sms")
    async with engine.begin() as conn:
        pid = await pid_of(engine, "DEMO")
        await alert_setup.save_channel(conn, pid, {**gateway, "active": "1"}, None, sms_id)
    try:
        r = await client.post(
            "/admin/channels", data={**gateway, "url": "https://sms2.example/send", "active": "1"}
        )
        assert r.status_code == 422 and 'data-field="channel"' in r.text
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alert_channels SET active = false WHERE id = :i"), {"i": sms_id})


async def test_only_admins_see_the_channels_page(client, login):
    await login("zhuguan")
    assert (await client.get("/admin/channels")).status_code == 403


async def test_a_supervisor_adds_contractors_and_elevators_with_checks(client, login, engine):
    token = await login("other_zhuguan")
    r = await client.post("/admin/contractors", data={"_csrf": token, "name": "奥的斯维保"})
    assert r.status_code == 422 and 'data-field="phone"' in r.text  # unreachable: refused
    r = await client.post(
        "/admin/contractors",
        data={"_csrf": token, "name": "奥的斯维保", "phone": "13700001111"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    async with engine.connect() as conn:
        other = await pid_of(engine, "OTHER")
        contractor = next(
            c for c in await alert_setup.contractors_of(conn, other) if c["name"] == "奥的斯维保"
        )
    elevator = {"_csrf": token, "code": "OTHER-E1", "name": "1号梯", "contractor_id": str(contractor["id"])}
    r = await client.post("/admin/elevators", data=elevator, follow_redirects=False)
    assert r.status_code == 303
    r = await client.post("/admin/elevators", data=elevator)
    assert r.status_code == 422 and 'data-field="code"' in r.text
    r = await client.post(
        "/admin/elevators", data={**elevator, "code": "OTHER-E2", "contractor_id": "999999"}
    )
    assert r.status_code == 422 and 'data-field="contractor_id"' in r.text
    page = (await client.get("/admin/elevators")).text
    assert 'data-elevator="OTHER-E1"' in page and "奥的斯维保" in page and "DEMO-E01" not in page
    async with engine.connect() as conn:
        e1 = await alert_setup.elevator_by_code(conn, "OTHER-E1")
    page = (await client.get(f"/admin/elevators?edit={e1['id']}&contractor={contractor['id']}")).text
    assert 'value="OTHER-E1"' in page and 'value="13700001111"' in page
    assert (await client.get("/admin/elevators?edit=999999")).status_code == 404
    demo_elevator = (await client.get("/admin/elevators?project=DEMO")).status_code
    assert demo_elevator == 404  # another project's page: not found


# ---- who hears of an entrapment ------------------------------------------------------------


async def _contractor_rows(engine, alert_id: int) -> list[dict[str, Any]]:
    return [r for r in await deliveries(engine, alert_id) if r["payload"].get("purpose") == "contractor"]


async def test_the_desk_names_the_elevator_and_its_contractor_is_notified(client, login, engine):
    token = await login("kefu")
    page = (await client.get("/desk")).text
    assert 'name="elevator"' in page and "/alerts/elevator-options" in page
    options = (await client.get("/alerts/elevator-options")).text
    assert 'value="DEMO-E01"' in options and 'value="DEMO-E02"' in options
    form = {
        "_csrf": token,
        "project": "DEMO",
        "kind": "entrapment",
        "area": "public",
        "reporter_phone": "13900005555",
        "reporter_name": "赵女士",
        "summary": "1号梯困人",
        "channel": "phone",
    }
    r = await client.post("/desk/orders", data={**form, "elevator": "NOPE-1"})
    assert r.status_code == 422 and 'data-field="elevator"' in r.text
    r = await client.post("/desk/orders", data={**form, "elevator": "DEMO-E01"})
    assert r.status_code == 200, r.text
    number = re.search(r'class="number">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    async with engine.connect() as conn:
        o = (
            (
                await conn.execute(
                    text(
                        "SELECT o.id, o.location, e.code FROM orders o JOIN elevators e ON e.id = o.elevator_id "
                        "WHERE o.number = :n"
                    ),
                    {"n": number},
                )
            )
            .mappings()
            .one()
        )
        refused = (
            await conn.execute(text("SELECT count(*) FROM orders WHERE summary = '1号梯困人'"))
        ).scalar()
    CREATED.append(o["id"])
    assert (
        o["code"] == "DEMO-E01" and o["location"] == "1栋1号梯" and refused == 1
    )  # the refused one was not saved
    a = await alert_of(engine, o["id"])
    rows = await _contractor_rows(engine, a["id"])
    assert [(r["channel"], r["payload"]["recipient"]) for r in rows] == [("sms", "迅达电梯维保")]


async def test_the_api_refuses_an_elevator_of_another_project(api, engine):
    body = {
        "project": "DEMO",
        "kind": "entrapment",
        "reporter_name": "李女士",
        "reporter_phone": "13900002222",
        "summary": "电梯困人",
        "elevator": "OTHER-E9",
    }
    async with engine.begin() as conn:
        other = await pid_of(engine, "OTHER")
        await alert_setup.save_elevator(conn, other, {"code": "OTHER-E9", "name": "9号梯"}, None)
    r = await api("POST", "/api/v1/orders", "kefu", body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "elevator"
    r = await api("POST", "/api/v1/orders", "kefu", {**body, "elevator": "DEMO-E02"})
    assert r.status_code == 201, r.text


async def test_with_no_elevator_known_every_contractor_of_the_project_hears(engine):
    other = await pid_of(engine, "OTHER")
    async with engine.begin() as conn:
        for name, phone, hook in (
            ("康力维保", "13600001111", ""),
            ("日立维保", "", "https://hitachi.example/hook"),
        ):
            if not any(c["name"] == name for c in await alert_setup.contractors_of(conn, other)):
                await alert_setup.save_contractor(
                    conn, other, {"name": name, "phone": phone, "webhook": hook}, None
                )
        expected = {c["name"] for c in await alert_setup.contractors_of(conn, other, active_only=True)}
    a = await alert_of(engine, (await register(engine, clock.now(), by="other_kefu", project="OTHER")).id)
    rows = await _contractor_rows(engine, a["id"])
    assert {r["payload"]["recipient"] for r in rows} == expected >= {"康力维保", "日立维保"}
    assert {r["channel"] for r in rows if r["payload"]["recipient"] == "日立维保"} == {"webhook"}


async def test_an_elevator_with_no_contractor_is_recorded_and_flagged_to_the_supervisor(engine):
    other = await pid_of(engine, "OTHER")
    async with engine.begin() as conn:
        if await alert_setup.elevator_by_code(conn, "OTHER-E8") is None:
            await alert_setup.save_elevator(conn, other, {"code": "OTHER-E8", "name": "8号梯"}, None)
    reg = await register(engine, clock.now(), by="other_kefu", project="OTHER", elevator="OTHER-E8")
    a = await alert_of(engine, reg.id)
    assert await _contractor_rows(engine, a["id"]) == []
    assert "no_contractor" in await timeline(engine, reg.id)
    assert [e["details"]["elevator"] for e in await events(engine, a["id"], "no_contractor")] == ["OTHER-E8"]
    flagged = [r for r in await deliveries(engine, a["id"]) if r["payload"].get("purpose") == "no_contractor"]
    assert {r["recipient_id"] for r in flagged} == {await staff_id(engine, "other_zhuguan")}
    assert (
        "call the maintenance company" in flagged[0]["payload"]["text"]
        or "维保" in flagged[0]["payload"]["text"]
    )


# ---- on-screen delivery --------------------------------------------------------------------


async def test_a_screen_delivery_is_delivered_when_the_recipients_screen_fetches_the_alert(
    client, login, engine
):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    primary = a["chain"]["steps"][0]["recipients"][0]["id"]
    screens = [r for r in await deliveries(engine, a["id"]) if r["channel"] == "screen"]
    assert [r["state"] for r in screens] == ["pending"] and screens[0]["available_at"] == t0 + timedelta(
        seconds=60
    )
    engineer = await actor(engine, "shifu1" if primary == await staff_id(engine, "shifu1") else "shifu2")
    shown = await alerts.screen_alerts(
        engine, engineer.staff_id, engineer.project_ids, t0 + timedelta(seconds=3)
    )
    mine = next(x for x in shown if x["id"] == a["id"])
    assert mine["paged_me"] and mine["position"].step == 0 and mine["position"].round == 1
    screens = [r for r in await deliveries(engine, a["id"]) if r["channel"] == "screen"]
    assert [r["state"] for r in screens] == ["sent"]
    # The supervisor is paged at step 2; their /alerts page is their screen.
    for at in (t0 + timedelta(seconds=61), t0 + timedelta(minutes=3, seconds=1)):
        await step(engine, a, at)
    boss = await staff_id(engine, "zhuguan")
    assert {
        r["state"]
        for r in await deliveries(engine, a["id"])
        if r["recipient_id"] == boss and r["channel"] == "screen"
    } == {"pending"}
    await login("zhuguan")
    assert (await client.get("/alerts")).status_code == 200
    assert {
        r["state"]
        for r in await deliveries(engine, a["id"])
        if r["recipient_id"] == boss and r["channel"] == "screen"
    } == {"sent"}


async def test_a_screen_row_the_worker_has_taken_is_left_to_the_worker(engine):
    t0 = clock.now()
    reg = await register(engine, t0)
    a = await alert_of(engine, reg.id)
    primary = a["chain"]["steps"][0]["recipients"][0]["id"]
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE outbox SET attempts = 1 WHERE alert_id = :a AND channel = 'screen'"), {"a": a["id"]}
        )
        assert await alerts.mark_seen(conn, primary, [a["id"]], t0 + timedelta(seconds=70)) == 0


# ---- resolving by hand ---------------------------------------------------------------------


async def test_a_supervisor_resolves_an_alert_by_hand_with_a_reason(api, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    url = f"/api/v1/alerts/{a['id']}/resolve"
    assert (await api("POST", url, "zhuguan", {"reason": "  "})).status_code == 422
    assert (await api("POST", url, "shifu1", {"reason": "误报"})).status_code == 403
    assert (await api("POST", url, "other_zhuguan", {"reason": "误报"})).status_code == 404
    r = await api("POST", url, "zhuguan", {"reason": "误报，监控确认轿厢无人"})
    assert r.status_code == 200 and r.json()["state"] == "resolved" and r.json()["changed"]
    assert r.json()["resolved_by"] == "王主管"
    again = await api("POST", url, "zhuguan", {"reason": "再次"})
    assert again.status_code == 200 and not again.json()["changed"]
    resolved = await events(engine, a["id"], "resolved")
    assert len(resolved) == 1 and resolved[0]["details"]["reason"] == "误报，监控确认轿厢无人"
    assert "resolve" in await timeline(engine, reg.id)
    assert (
        await alerts.run_step(engine, a["id"], 1, a["step_token"], clock.now() + timedelta(minutes=5)) is None
    )


async def test_the_alerts_page_resolves_with_a_reason(client, login, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    token = await login("zhuguan")
    page = (await client.get("/alerts")).text
    assert f'action="/alerts/{a["id"]}/resolve"' in page
    r = await client.post(f"/alerts/{a['id']}/resolve", data={"_csrf": token, "reason": ""})
    assert r.status_code == 422
    r = await client.post(
        f"/alerts/{a['id']}/resolve",
        data={"_csrf": token, "reason": "已电话确认救出"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and (await alert_of(engine, reg.id))["state"] == "resolved"


# ---- the API's refusals --------------------------------------------------------------------


async def test_the_alert_api_refuses_without_a_token_or_the_role(api, client, engine):
    assert (await client.get("/api/v1/alerts")).status_code == 401
    assert (await client.post("/api/v1/alerts/1/acknowledge")).status_code == 401
    assert (await client.post("/api/v1/alerts/1/resolve", json={"reason": "x"})).status_code == 401
    assert (await api("GET", "/api/v1/alerts", "caiwu")).status_code == 403
    assert (await api("GET", "/api/v1/alerts?project=OTHER", "zhuguan")).status_code == 404
    assert (await api("POST", "/api/v1/alerts/999999/resolve", "zhuguan", {"reason": "x"})).status_code == 404
    assert (await api("GET", "/api/v1/alerts?state=open", "shifu1")).status_code == 200


# ---- the rota's exact gaps -----------------------------------------------------------------


async def test_a_ten_minute_hole_in_the_rota_is_flagged_when_saved(client, login, engine):
    token = await login("other_zhuguan")
    shifu = await staff_id(engine, "other_shifu")
    base = {"_csrf": token, "primary_id": str(shifu)}
    try:
        for kind, starts, ends in (
            ("day", "09:00", "17:20"),
            ("weekend", "09:00", "09:00"),
            ("holiday", "09:00", "09:00"),
            ("night", "17:30", "09:00"),
        ):
            r = await client.post(
                "/admin/rota",
                data={**base, "kind": kind, "starts": starts, "ends": ends},
                follow_redirects=False,
            )
            assert r.status_code == 303
        assert r.headers["location"].endswith("saved=gaps")
        async with engine.connect() as conn:
            day = next(
                x for x in await oncall.list_shifts(conn, await pid_of(engine, "OTHER")) if x["kind"] == "day"
            )
        assert 'value="17:20"' in (await client.get(f"/admin/rota?edit={day['id']}")).text
        page = (await client.get(r.headers["location"])).text
        assert 'data-flagged-on-save="true"' in page
        gaps = re.findall(r'data-gap="([^"]+)"', page)
        assert gaps and all(
            g.split("/")[0][11:16] == "17:20" and g.split("/")[1][11:16] == "17:30" for g in gaps[1:]
        )
        async with engine.connect() as conn:
            summary = await oncall.duty_summary(conn, await pid_of(engine, "OTHER"), clock.now())
        assert summary["gaps"] and all(b - a <= timedelta(minutes=10) for a, b in summary["gaps"])
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM oncall_shifts WHERE project_id = :p"), {"p": await pid_of(engine, "OTHER")}
            )


# ---- the demo ------------------------------------------------------------------------------


async def test_the_demo_opens_an_entrapment_on_an_elevator_that_the_wall_board_shows(client, login, engine):
    async with engine.begin() as conn:
        pid = await staff_db.project_id_by_code(conn, "DEMO")
        await alerts.seed_demo_entrapment(conn, pid)
        oid = (
            await conn.execute(
                text("SELECT max(id) FROM orders WHERE kind = 'entrapment' AND elevator_id IS NOT NULL")
            )
        ).scalar_one()
        configured = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM escalation_chains WHERE project_id = :p AND alert_kind = 'entrapment'"
                ),
                {"p": pid},
            )
        ).scalar()
        gaps = await oncall.rota_gaps(conn, pid, clock.now())
    CREATED.append(oid)
    a = await alert_of(engine, oid)
    assert a["state"] == "triggered" and configured == 1 and gaps == []
    assert await _contractor_rows(engine, a["id"])
    await login("jiankong")
    board = (await client.get("/board")).text
    assert f'data-alert-id="{a["id"]}"' in board


async def test_the_engineers_tablet_showing_the_alert_delivers_their_screen_page(client, login, engine):
    reg = await register(engine, clock.now())
    a = await alert_of(engine, reg.id)
    primary = a["chain"]["steps"][0]["recipients"][0]["id"]
    username = "shifu1" if primary == await staff_id(engine, "shifu1") else "shifu2"
    await login(username)
    r = await client.get("/tablet")
    assert r.status_code == 200 and f'data-alert="{a["id"]}"' in r.text
    screens = [r for r in await deliveries(engine, a["id"]) if r["channel"] == "screen"]
    assert [(r["recipient_id"], r["state"]) for r in screens] == [(primary, "sent")]
