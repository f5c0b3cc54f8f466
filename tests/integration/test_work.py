"""The engineer's tablet and the supervisor's triage screen through their handlers, by role."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import post_login
from tests.work_orders import new_order, retire, staff_id

HX = {"HX-Request": "true"}


async def order_row(engine: Any, number: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM orders WHERE number = :n"), {"n": number}))
            .mappings()
            .one()
        )
    return dict(row)


async def move_deadlines(engine: Any, number: str, delta: timedelta) -> None:
    """Shift the order's running clocks (as if received long ago); the breach worker is not run."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE order_clocks SET deadline = deadline + :d, started_at = started_at + :d "
                "WHERE order_id = (SELECT id FROM orders WHERE number = :n) AND state = 'running'"
            ),
            {"d": delta, "n": number},
        )
        await conn.execute(
            text(
                "UPDATE orders SET next_deadline = (SELECT min(deadline) FROM order_clocks c WHERE c.order_id = orders.id "
                "AND c.state = 'running') WHERE number = :n"
            ),
            {"n": number},
        )


def row_html(page: str, number: str) -> str:
    m = re.search(rf'<tr id="t-{number}".*?</tr>', page, re.S)
    assert m, f"{number} not in the list"
    return m.group(0)


def card_html(page: str, number: str, prefix: str = "o") -> str:
    m = re.search(rf'<article class="[^"]*" id="{prefix}-{number}".*?</article>', page, re.S)
    assert m, f"{prefix}-{number} not on the tablet"
    return m.group(0)


async def pin_login(c: Any, username: str) -> str:
    r = await post_login(c, {"username": username, "pin": "2580"}, "/login/pin")
    assert r.status_code == 303
    page = await c.get("/tablet")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


# ---- triage: the board's data ------------------------------------------------------------------


async def test_triage_shows_the_countdown_and_band_of_the_most_urgent_clock(client, login, engine):
    number = await new_order(engine, "6-2-101", "分诊倒计时")
    try:
        await login("zhuguan")
        row = row_html((await client.get("/triage/rows")).text, number)
        assert 'class="deadline band-green"' in row
        assert re.search(r'data-deadline-ms="\d{13}"', row)
        assert re.search(r'class="cd"[^>]*>\d\d:\d\d<', row)  # counting down, as on the wall
    finally:
        await retire(engine, number)


async def test_breached_only_compares_the_deadline_with_now_without_waiting_for_the_worker(
    client, login, engine
):
    late = await new_order(engine, "6-2-102", "已超时未记录")
    fresh = await new_order(engine, "6-2-201", "未超时")
    try:
        await move_deadlines(engine, late, timedelta(hours=-30))
        await login("zhuguan")
        page = (await client.get("/triage/rows", params={"breached": "1"})).text
        row = row_html(page, late)
        assert "band-breached" in row and "超时" in row
        assert f't-{fresh}"' not in page
        async with engine.connect() as conn:
            recorded = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM order_clocks WHERE breached_at IS NOT NULL AND order_id = "
                        "(SELECT id FROM orders WHERE number = :n)"
                    ),
                    {"n": late},
                )
            ).scalar()
        assert recorded == 0  # the worker has not seen it: triage does not wait for it
        # The wall board says the same of it.
        board = (await client.get("/board/fragment", params={"project": "DEMO"})).text
        card = re.search(rf'<li class="([^"]*)"[^>]*data-number="{late}"', board)
        assert card and "band-breached" in card.group(1)
    finally:
        await retire(engine, late)
        await retire(engine, fresh)


async def test_a_deadline_not_today_shows_its_date(client, login, engine):
    number = await new_order(engine, "6-2-202", "后天的期限", urgency="low")
    try:
        await move_deadlines(engine, number, timedelta(days=3))
        await login("zhuguan")
        row = row_html((await client.get("/triage/rows")).text, number)
        assert re.search(r'class="due">[^<]*\d\d-\d\d \d\d:\d\d<', row), row
    finally:
        await retire(engine, number)


# ---- triage: filters ---------------------------------------------------------------------------


async def test_triage_filters_refuse_unknown_values_in_place_and_count_the_results(client, login, engine):
    number = await new_order(engine, "6-2-301", "筛选计数", category="plumbing")
    try:
        await login("zhuguan")
        r = await client.get("/triage/rows", params={"team": "99999"}, headers=HX)
        assert r.status_code == 422 and "flash-error" in r.text
        r = await client.get("/triage/rows", params={"status": "closed"}, headers=HX)
        assert r.status_code == 422  # only open statuses are offered
        page = await client.get("/triage", params={"category": "pizza"})
        assert page.status_code == 200 and "pizza" in page.text  # the page says what it ignored
        assert 'value="closed"' not in page.text and 'value="cancelled"' not in page.text
        r = await client.get("/triage/rows", params={"category": "plumbing"})
        count = int(re.search(r'id="result-count">(\d+)', r.text).group(1))
        assert count == len(re.findall(r'<tr id="t-', r.text)) and count >= 1
        assert f"t-{number}" in r.text and "供电" not in re.sub(r"<option.*?</option>", "", r.text)
    finally:
        await retire(engine, number)


async def test_a_triage_action_re_renders_the_list_with_the_filters_it_came_with(client, login, engine):
    water = await new_order(engine, "6-2-302", "水管", category="plumbing")
    power = await new_order(engine, "6-2-401", "电路", category="electrical")
    try:
        token = await login("zhuguan")
        shifu3 = await staff_id(engine, "shifu3")
        # hx-include="#filters" puts the filters in the body, beside the action's own fields.
        r = await client.post(
            "/triage/do/assign",
            data={
                "number": water,
                "version": "1",
                "assignee_id": str(shifu3),
                "category": "plumbing",
                "kind": "repair",
                "status": "",
            },
            headers={"X-CSRF-Token": token, **HX},
        )
        assert r.status_code == 200, r.text
        assert f"t-{water}" in r.text and f"t-{power}" not in r.text
        assert (await order_row(engine, water))["status"] == "assigned"
    finally:
        await retire(engine, water)
        await retire(engine, power)


async def test_a_supervisors_assign_of_an_assigned_order_reassigns_it_with_the_reason(client, login, engine):
    number = await new_order(engine, "6-2-402", "改派")
    try:
        token = await login("zhuguan")
        shifu1, shifu4 = await staff_id(engine, "shifu1"), await staff_id(engine, "shifu4")
        h = {"X-CSRF-Token": token, **HX}
        r = await client.post(
            "/triage/do/assign",
            data={"number": number, "version": "1", "assignee_id": str(shifu1), "reason": "不该记"},
            headers=h,
        )
        assert r.status_code == 200
        r = await client.post(
            "/triage/do/assign",
            data={"number": number, "version": "2", "assignee_id": str(shifu4), "reason": "张师傅请假"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert "杨师傅" in row_html(r.text, number)
        async with engine.connect() as conn:
            events = (
                await conn.execute(
                    text(
                        "SELECT action, reason FROM order_events WHERE order_id = "
                        "(SELECT id FROM orders WHERE number = :n) ORDER BY id"
                    ),
                    {"n": number},
                )
            ).all()
        assert [(e.action, e.reason) for e in events][-2:] == [("assign", None), ("reassign", "张师傅请假")]
    finally:
        await retire(engine, number)


async def test_bulk_assign_and_bulk_transfer_act_on_every_selected_order(client, login, engine):
    a = await new_order(engine, "6-2-501", "批量一")
    b = await new_order(engine, "6-2-502", "批量二")
    try:
        token = await login("zhuguan")
        h = {"X-CSRF-Token": token, **HX}
        shifu3 = await staff_id(engine, "shifu3")
        r = await client.post(
            "/triage/do/assign", data={"selected": f"{a}@1,{b}@1", "assignee_id": str(shifu3)}, headers=h
        )
        assert r.status_code == 200 and "2" in re.search(r'id="triage-flash".*?</div>', r.text, re.S).group(0)
        async with engine.connect() as conn:
            team = (await conn.execute(text("SELECT id FROM teams WHERE name = '土建班'"))).scalar_one()
        r = await client.post(
            "/triage/do/transfer",
            data={"selected": f"{a}@2,{b}@2", "team_id": str(team), "reason": "土建问题"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        for n in (a, b):
            row = await order_row(engine, n)
            # to a team: into that team's grab pool
            assert (row["status"], row["team_id"], row["assignee_id"]) == ("pooled", team, None)
    finally:
        await retire(engine, a)
        await retire(engine, b)


async def test_a_stale_click_in_triage_answers_409_with_the_rows_showing_the_new_state(client, login, engine):
    number = await new_order(engine, "6-2-601", "并发冲突")
    try:
        token = await login("zhuguan")
        h = {"X-CSRF-Token": token, **HX}
        shifu1, shifu2 = await staff_id(engine, "shifu1"), await staff_id(engine, "shifu2")
        await client.post(
            "/triage/do/assign",
            data={"number": number, "version": "1", "assignee_id": str(shifu1)},
            headers=h,
        )
        r = await client.post(
            "/triage/do/escalate", data={"number": number, "version": "1", "reason": "晚了"}, headers=h
        )
        assert r.status_code == 409
        assert r.headers["hx-retarget"] == "#triage-rows"
        row = row_html(r.text, number)
        assert "张师傅" in row and "flash-error" in row  # the new state, with the reason, in the row
        # Bad input on one order stays in the dialog (422), the list untouched.
        r = await client.post(
            "/triage/do/reassign",
            data={"number": number, "version": "2", "assignee_id": str(shifu2), "reason": ""},
            headers={**h, "X-Error-Target": "#dlg-assign-err"},
        )
        assert r.status_code == 422 and r.headers["hx-retarget"] == "#dlg-assign-err"
    finally:
        await retire(engine, number)


async def test_the_shift_panel_lists_the_shift_lists_with_links(client, login):
    await login("zhuguan")
    r = await client.get("/triage/shift")
    assert r.status_code == 200
    for key in ("slips", "end_of_shift", "handover", "over_24h"):
        assert f'data-list="{key}"' in r.text
    assert 'href="/shift#end-of-shift"' in r.text


# ---- tablet ------------------------------------------------------------------------------------


async def test_each_tablet_card_shows_its_time_left_and_band(new_client, engine):
    number = await new_order(engine, "6-2-602", "平板倒计时")
    try:
        async with new_client() as c:
            await pin_login(c, "shifu1")
            card = card_html((await c.get("/tablet/list")).text, number, "p")
        assert 'class="deadline band-green"' in card and re.search(r'class="cd"[^>]*>\d\d:\d\d<', card)
        assert 'data-action="grab"' in card
    finally:
        await retire(engine, number)


async def test_the_tablet_shows_who_is_on_call_now(new_client):
    async with new_client() as c:
        await pin_login(c, "shifu1")
        page = (await c.get("/tablet/list")).text
    assert 'class="oncall-line"' in page


async def test_a_lost_grab_answers_the_list_with_who_won_in_place_of_the_card(new_client, engine):
    number = await new_order(engine, "6-2-701", "抢单冲突")
    try:
        async with new_client() as a, new_client() as b:
            ta, tb = await pin_login(a, "shifu1"), await pin_login(b, "shifu2")
            r = await a.post(
                f"/tablet/do/{number}/grab", data={"version": "1"}, headers={"X-CSRF-Token": ta, **HX}
            )
            assert r.status_code == 200 and f'id="o-{number}"' in r.text
            r = await b.post(
                f"/tablet/do/{number}/grab", data={"version": "1"}, headers={"X-CSRF-Token": tb, **HX}
            )
            assert r.status_code == 409 and r.headers["hx-retarget"] == "#tablet-list"
            gone = re.search(rf'id="g-{number}".*?</article>', r.text, re.S).group(0)
            assert "张师傅" in gone  # who won, where the card was; the pool no longer offers it
            assert f'id="p-{number}"' not in r.text
    finally:
        await retire(engine, number)


async def test_a_stale_tap_on_my_own_card_shows_the_message_inside_the_updated_card(new_client, engine):
    number = await new_order(engine, "6-2-702", "旧版本")
    try:
        async with new_client() as c:
            t = await pin_login(c, "shifu1")
            h = {"X-CSRF-Token": t, **HX}
            await c.post(f"/tablet/do/{number}/grab", data={"version": "1"}, headers=h)
            r = await c.post(f"/tablet/do/{number}/grab", data={"version": "1"}, headers=h)
            assert r.status_code == 409
            card = card_html(r.text, number)
            assert 'data-status="accepted"' in card and "flash-error" in card
    finally:
        await retire(engine, number)


async def test_finished_orders_show_as_done_today_on_the_tablet(new_client, engine):
    number = await new_order(engine, "6-2-801", "完工显示")
    try:
        async with new_client() as c:
            t = await pin_login(c, "shifu1")
            h = {"X-CSRF-Token": t, **HX}
            code = (await order_row(engine, number))["verification_code"]
            for action, body in (
                ("grab", {"version": "1"}),
                ("arrive", {"version": "2", "code": code}),
                ("finish", {"version": "3", "result": "换了开关", "labour_yuan": "30"}),
            ):
                r = await c.post(f"/tablet/do/{number}/{action}", data=body, headers=h)
                assert r.status_code == 200, (action, r.text)
            assert re.search(rf'id="d-{number}"[^>]*data-status="done"', r.text)
    finally:
        await retire(engine, number)


async def test_a_crowded_grab_pool_hides_neither_my_orders_nor_what_i_finished_today(new_client, engine):
    mine = await new_order(engine, "6-2-701", "我的单")
    finished = await new_order(engine, "6-2-702", "今日完工")
    crowd: list[str] = []
    try:
        async with new_client() as c:
            t = await pin_login(c, "shifu1")
            h = {"X-CSRF-Token": t, **HX}
            for number, steps in ((mine, ("grab",)), (finished, ("grab", "arrive", "finish"))):
                for action in steps:
                    row = await order_row(engine, number)
                    body = {
                        "version": str(row["version"]),
                        "code": row["verification_code"],
                        "result": "好了",
                    }
                    r = await c.post(f"/tablet/do/{number}/{action}", data=body, headers=h)
                    assert r.status_code == 200, (action, r.text)
            # 250 more orders in the pool, all due before mine.
            async with engine.begin() as conn:
                crowd = list(
                    (
                        await conn.execute(
                            text(
                                "INSERT INTO orders (number, project_id, kind, category, urgency, status, version, area, room_id, "
                                "location, reporter_name, reporter_phone, summary, channel, received_at, "
                                "verification_code, next_deadline) "
                                "SELECT 'BX-CROWD-' || g, project_id, kind, category, urgency, 'pooled', 1, area, room_id, "
                                "location, reporter_name, reporter_phone, '挤满', channel, now(), '1234', "
                                "now() + interval '1 minute' "
                                "FROM orders, generate_series(1, 250) g WHERE number = :n RETURNING number"
                            ),
                            {"n": mine},
                        )
                    ).scalars()
                )
            page = (await c.get("/tablet/list", headers=HX)).text
            assert f'id="o-{mine}"' in page
            assert re.search(rf'id="d-{finished}"[^>]*data-status="done"', page)
            assert page.count('id="p-') == 200  # the pool shows its most urgent two hundred
    finally:
        await retire(engine, mine, finished, *crowd)


@pytest.fixture
async def open_alert(engine: Any) -> Any:
    """An entrapment alert on the DEMO project (resolved afterwards)."""
    from server.persistence import alerts as alerts_db  # noqa: F401 (its registration hook opens the alert)

    number = await new_order(engine, "6-2-802", "困人告警", kind="entrapment", category="elevator")
    row = await order_row(engine, number)
    async with engine.connect() as conn:
        alert_id = (
            await conn.execute(
                text("SELECT id FROM alerts WHERE order_id = :o AND state = 'triggered'"), {"o": row["id"]}
            )
        ).scalar()
    assert alert_id, "registering an entrapment opens its alert"
    yield alert_id
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alerts SET state = 'resolved' WHERE id = :a"), {"a": alert_id})
    await retire(engine, number)


async def test_only_those_who_may_acknowledge_get_the_button(new_client, open_alert):
    async with new_client() as c:
        await pin_login(c, "zhixu")  # a department handler: sees the alert, may not acknowledge
        strip = (await c.get("/tablet/alerts")).text
        assert f'data-alert="{open_alert}"' in strip and "/acknowledge" not in strip
    async with new_client() as c:
        await pin_login(c, "shifu1")
        strip = (await c.get("/tablet/alerts")).text
        assert f'hx-post="/alerts/{open_alert}/acknowledge"' in strip


async def test_the_alert_strip_answers_204_while_nothing_changed(new_client, open_alert):
    async with new_client() as c:
        await pin_login(c, "shifu1")
        first = await c.get("/tablet/alerts", headers=HX)
        v = re.search(r'data-version="([^"]*)"', first.text).group(1)
        again = await c.get("/tablet/alerts", params={"v": v}, headers=HX)
        assert again.status_code == 204 and again.content == b""
        stale = await c.get("/tablet/alerts", params={"v": "a0.0"}, headers=HX)
        assert stale.status_code == 200 and stale.headers["hx-trigger"] == "tablet-refresh"


async def test_an_expired_session_on_the_tablet_goes_to_the_pin_login(new_client):
    async with new_client() as c:
        r = await c.get("/tablet")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?pin=1&")
        r = await c.get("/tablet/list", headers={**HX, "HX-Current-URL": "http://127.0.0.1:8000/tablet"})
        assert r.status_code == 401 and r.headers["hx-redirect"].startswith(
            "/login?pin=1&expired=1&next=/tablet"
        )


async def test_a_supervisor_of_several_projects_filters_by_project_and_sees_a_project_column(
    new_client, engine
):
    from server.persistence import staff as staff_db
    from server.security import hash_password

    async with engine.begin() as conn:
        pids = (
            (await conn.execute(text("SELECT id FROM projects WHERE code IN ('DEMO', 'OTHER')")))
            .scalars()
            .all()
        )
        if await staff_db.by_username(conn, "two_sites") is None:
            await staff_db.create_staff(
                conn,
                username="two_sites",
                display_name="两地主管",
                role="supervisor",
                password_hash=hash_password("demo1234"),
                project_ids=list(pids),
            )
    number = await new_order(engine, "6-2-901", "多项目")
    try:
        async with new_client() as c:
            r = await post_login(c, {"username": "two_sites", "password": "demo1234"})
            assert r.status_code == 303
            page = (await c.get("/triage")).text
            assert 'name="project"' in page and "全部项目" in page
            row = row_html(page, number)
            assert 'class="c-project">DEMO<' in row
            only_other = (await c.get("/triage/rows", params={"project": "OTHER"})).text
            assert f"t-{number}" not in only_other
            assert (await c.get("/triage/rows", params={"project": "NOPE"}, headers=HX)).status_code == 422
    finally:
        await retire(engine, number)


# ---- the order page: every field of the paper form, and the steps with their inputs -------------


async def test_the_order_page_transfers_back_to_the_pool_and_shows_the_work_record(client, login, engine):
    number = await new_order(engine, "6-2-701", "<b>页面</b>转派")
    try:
        token = await login("shifu1")
        h = {"X-CSRF-Token": token, **HX}
        r = await client.post(f"/orders/{number}/do/grab", data={"version": "1"}, headers=h)
        assert r.status_code == 200
        assert 'name="team_id"' in r.text and 'name="department"' in r.text  # transfer's targets
        r = await client.post(f"/orders/{number}/do/transfer", data={"version": "2", "reason": ""}, headers=h)
        assert r.status_code == 422  # the reason is required, said in place and naming the field
        assert 'data-field="reason"' in r.text and "原因" in r.text
        r = await client.post(
            f"/orders/{number}/do/transfer", data={"version": "2", "reason": "手头有急活"}, headers=h
        )
        assert r.status_code == 200
        row = await order_row(engine, number)
        assert (row["status"], row["assignee_id"]) == ("pooled", None)
        assert "&lt;b&gt;页面&lt;/b&gt;" in r.text and "<b>页面</b>" not in r.text  # escaped
        assert "手头有急活" in r.text  # on the timeline
    finally:
        await retire(engine, number)


async def test_the_order_page_shows_materials_fees_and_the_rework_link(client, login, engine):
    from server import clock
    from server.persistence import orders as orders_db
    from server.persistence import staff as staff_db
    from server.persistence.orders import ActorInfo

    number = await new_order(engine, "6-2-702", "材料与返修")
    async with engine.begin() as conn:
        s = await staff_db.by_username(conn, "shifu1")
        k = await staff_db.by_username(conn, "kefu")
        eng = ActorInfo(s.id, s.display_name, s.role, s.project_ids, s.team_ids)
        desk = ActorInfo(k.id, k.display_name, k.role, k.project_ids, k.team_ids)
        code = (
            await conn.execute(text("SELECT verification_code FROM orders WHERE number = :n"), {"n": number})
        ).scalar()
        steps = [
            (eng, "grab", {}),
            (eng, "arrive", {"code": code}),
            (
                eng,
                "finish",
                {
                    "result": "换了插座",
                    "labour_yuan": "30",
                    "man_hours": "0.5",
                    "materials": [
                        {"name": "五孔插座", "quantity": "2", "unit": "个", "unit_price_yuan": "12.5"},
                        {"name": "面板", "quantity": "1", "provided_by": "customer", "verified": "bad"},
                    ],
                },
            ),
            (desk, "callback", {"method": "phone", "rating": "unsatisfied"}),
            (desk, "reopen", {"reason": "还是跳闸"}),
        ]
        for who, action, inputs in steps:
            row = await orders_db.get_by_number(conn, number)
            result = await orders_db.apply_action(
                conn, number, action, row["version"], who, inputs, clock.now()
            )
    rework = result["rework_number"]
    try:
        await login("kefu")
        page = (await client.get(f"/orders/{number}")).text
        assert "五孔插座" in page and "面板" in page
        assert "¥55.00" in page  # 30 labour + 2 × 12.50
        assert f'href="/orders/{rework}"' in page
        assert "0.50" in page  # man-hours
        page = (await client.get(f"/orders/{rework}")).text
        assert f'href="/orders/{number}"' in page  # back to the original
        # reopened again from the page: the flash names the new rework order
        token = await login("zhuguan")
        row = await order_row(engine, number)
        r = await client.post(
            f"/orders/{number}/do/reopen",
            data={"version": str(row["version"]), "reason": "再次返修"},
            headers={"X-CSRF-Token": token, **HX},
        )
        assert r.status_code == 200, r.text
        flash = r.text.split('id="order-flash"', 1)[1].split("</div>", 2)[0]
        second = next(n for n in re.findall(r"BX-\d{8}-\d{4}", flash) if n != number)
        assert second != rework
        await retire(engine, second)
    finally:
        await retire(engine, number, rework)


async def test_html_typed_anywhere_is_shown_escaped_on_the_page_timeline_and_slip(client, login, engine):
    number = await new_order(
        engine, "6-2-301", "<script>alert('s')</script>", content="<img src=x onerror=alert(1)>"
    )
    try:
        token = await login("kefu")
        h = {"X-CSRF-Token": token, **HX}
        r = await client.post(
            f"/orders/{number}/do/remark",
            data={"version": "1", "remark": "<b onclick=alert(2)>备注</b>"},
            headers=h,
        )
        assert r.status_code == 200
        slip = (await client.get(f"/orders/{number}/slip")).text
        assert "&lt;b onclick=alert(2)&gt;备注&lt;/b&gt;" in slip  # remarks on the slip too
        for path in (f"/orders/{number}", f"/orders/{number}/slip"):
            page = (await client.get(path)).text
            for raw in (
                "<script>alert('s')</script>",
                "<img src=x onerror=alert(1)>",
                "<b onclick=alert(2)>",
            ):
                assert raw not in page, (path, raw)
            assert "&lt;script&gt;" in page
        assert "&lt;b onclick=alert(2)&gt;备注&lt;/b&gt;" in (await client.get(f"/orders/{number}")).text
    finally:
        await retire(engine, number)


async def test_the_callback_queue_is_oldest_first(client, login, engine):
    from server import clock
    from server.persistence import orders as orders_db
    from server.persistence import staff as staff_db
    from server.persistence.orders import ActorInfo

    numbers = [await new_order(engine, room, "回访排序") for room in ("6-2-302", "6-2-401")]
    async with engine.begin() as conn:
        s = await staff_db.by_username(conn, "shifu1")
        eng = ActorInfo(s.id, s.display_name, s.role, s.project_ids, s.team_ids)
        # the second order is finished first: it has waited longest for its callback
        for n, minutes in ((numbers[1], -90), (numbers[0], -30)):
            at = clock.now() + timedelta(minutes=minutes)
            code = (
                await conn.execute(text("SELECT verification_code FROM orders WHERE number = :n"), {"n": n})
            ).scalar()
            for action, inputs in (("grab", {}), ("arrive", {"code": code}), ("finish", {"result": "好"})):
                row = await orders_db.get_by_number(conn, n)
                await orders_db.apply_action(conn, n, action, row["version"], eng, inputs, at)
    try:
        await login("kefu")
        page = (await client.get("/callbacks")).text
        assert page.index(f'id="cb-{numbers[1]}"') < page.index(f'id="cb-{numbers[0]}"')
    finally:
        await retire(engine, *numbers)
