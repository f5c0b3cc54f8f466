"""The supervisor's triage screen and the engineer's tablet in headless Chromium."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from server import clock
from server.domain.vocab import Role
from server.persistence import orders as orders_db
from server.persistence import staff as staff_db
from server.persistence.orders import ActorInfo
from tests.browser.conftest import shot
from tests.work_orders import column, new_order, retire, staff_id

pytestmark = pytest.mark.browser

CST = ZoneInfo("Asia/Shanghai")
TABLET_SIZES = [("portrait", 800, 1280), ("landscape", 1280, 800), ("phone", 390, 844)]


# ---- helpers -----------------------------------------------------------------------------------


async def login(page: Any, base: str, user: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", "demo1234")
    await page.click("button.primary")
    await page.wait_for_load_state("networkidle")


async def pin_login(page: Any, base: str, user: str, pin: str = "2580") -> None:
    await page.goto(f"{base}/login?pin=1")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=pin]", pin)
    await page.click("button.primary")
    await page.wait_for_url("**/tablet")


async def act(engine: Any, number: str, action: str, username: str, **inputs: Any) -> dict[str, Any]:
    """A lifecycle step taken elsewhere (another screen, the API) while the page is open."""
    async with engine.begin() as conn:
        s = await staff_db.by_username(conn, username)
        assert s is not None
        row = await orders_db.get_by_number(conn, number)
        assert row is not None
        who = ActorInfo(s.id, s.display_name, Role(s.role), s.project_ids, s.team_ids, s.department_code)
        return await orders_db.apply_action(conn, number, action, row["version"], who, inputs, clock.now())


async def poll(page: Any, path: str, event: str) -> None:
    """One poll of a list, exactly as the timer fires it (same request, same morph)."""
    async with page.expect_response(lambda r: path in r.url and r.request.method == "GET"):
        await page.evaluate("e => htmx.trigger(document.body, e)", event)
    await page.wait_for_timeout(120)  # htmx settles


@pytest.fixture
async def tablet_page(browser: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context(viewport={"width": 800, "height": 1280}, locale="zh-CN", has_touch=True)
    yield await ctx.new_page()
    await ctx.close()


@pytest.fixture
async def triage_page(browser: Any, live_server: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = await ctx.new_page()
    await login(page, live_server.url, "zhuguan")
    yield page
    await ctx.close()


# ---- triage ------------------------------------------------------------------------------------


async def test_a_supervisors_click_reassigns_an_assigned_order_in_place(triage_page, live_server, engine):
    number = await new_order(engine, "6-1-101", "浏览器改派测试")
    try:
        await act(engine, number, "assign", "zhuguan", assignee_id=await staff_id(engine, "shifu1"))
        page = triage_page
        await page.goto(f"{live_server.url}/triage")
        row = page.locator(f"#t-{number}")
        await row.locator("td", has_text="张师傅").wait_for()
        await page.evaluate("window.__same_page = true")
        await row.locator("button[data-action=reassign]").click()
        dlg = page.locator("#dlg-assign")
        await dlg.wait_for()
        await dlg.locator("select[name=assignee_id]").select_option(label="陈师傅 · 维修工")
        await dlg.locator("input[name=reason]").fill("张师傅请假")
        await dlg.locator("button[data-confirm]").click()
        await row.locator("td", has_text="陈师傅").wait_for(timeout=5000)
        await dlg.wait_for(state="hidden")
        assert await page.evaluate("window.__same_page === true")  # updated in place, no reload
        await page.screenshot(path=str(shot("triage-1920x1080")))
    finally:
        await retire(engine, number)
    assert await column(engine, number, "assignee_id") == await staff_id(engine, "shifu3")


async def test_a_bulk_selection_survives_polls_and_is_assigned_at_once(triage_page, live_server, engine):
    numbers = [await new_order(engine, f"6-1-{f}01", f"批量选择 {f}") for f in (2, 3, 4)]
    try:
        page = triage_page
        await page.goto(f"{live_server.url}/triage")
        for n in numbers[:2]:
            await page.locator(f"#t-{n} input.sel").check()
        for _ in range(3):
            await poll(page, "/triage/rows", "triage-refresh")
        for n in numbers[:2]:
            assert await page.locator(f"#t-{n} input.sel").is_checked()
        assert not await page.locator(f"#t-{numbers[2]} input.sel").is_checked()
        assert "2" in await page.locator("#bulk-count").inner_text()
        await page.locator("[data-bulk=assign]").click()
        dlg = page.locator("#dlg-assign")
        await dlg.locator("select[name=assignee_id]").select_option(label="杨师傅 · 维修工")
        await dlg.locator("button[data-confirm]").click()
        for n in numbers[:2]:
            await page.locator(f"#t-{n} td", has_text="杨师傅").wait_for(timeout=5000)
        assert await page.locator("#bulk-bar").is_hidden()
        assert await page.locator("#triage-rows input.sel:checked").count() == 0
        # Select all, then transfer the lot to a team.
        await page.locator("input.sel-all").check()
        total = await page.locator("#triage-rows input.sel").count()
        assert str(total) in await page.locator("#bulk-count").inner_text()
        await page.locator("input.sel-all").uncheck()
        for n in numbers[:2]:
            await page.locator(f"#t-{n} input.sel").check()
        await page.locator("[data-bulk=transfer]").click()
        dlg = page.locator("#dlg-transfer")
        await dlg.locator("select[name=team_id]").select_option(label="土建班")
        await dlg.locator("input[name=reason]").fill("土建问题")
        await dlg.locator("button[data-confirm]").click()
        await dlg.wait_for(state="hidden")
        for n in numbers[:2]:
            await page.locator(f"#t-{n}[data-status=pooled]").wait_for(timeout=5000)  # the team's grab pool
    finally:
        await retire(engine, *numbers)


async def test_the_keyboard_drives_triage(triage_page, live_server, engine):
    number = await new_order(engine, "6-1-501", "键盘测试")
    try:
        page = triage_page
        await page.goto(f"{live_server.url}/triage")
        assert "j" in await page.locator("#keys-bar").inner_text()  # the keys are on screen
        await page.keyboard.press("j")
        first = await page.evaluate("document.activeElement.dataset.number")
        assert first
        await page.keyboard.press("j")
        await page.keyboard.press("k")
        assert await page.evaluate("document.activeElement.dataset.number") == first
        await page.locator(f"#t-{number}").focus()
        await page.keyboard.press("x")
        assert await page.locator(f"#t-{number} input.sel").is_checked()
        await page.keyboard.press("x")
        await page.keyboard.press("e")
        dlg = page.locator("#dlg-escalate")
        await dlg.wait_for()
        await page.keyboard.type("客户三次来电")
        await dlg.locator("button[data-confirm]").click()
        await dlg.wait_for(state="hidden")
        await page.locator("#triage-flash .flash-ok").wait_for(timeout=5000)
        await page.locator(f"#t-{number}").focus()
        await page.keyboard.press("a")
        dlg = page.locator("#dlg-assign")
        await dlg.wait_for()
        await dlg.locator("select[name=assignee_id]").select_option(label="刘师傅 · 维修工")
        await page.keyboard.press("Enter")
        await page.locator(f"#t-{number} td", has_text="刘师傅").wait_for(timeout=5000)
        await page.locator(f"#t-{number}").focus()
        await page.keyboard.press("t")
        await page.locator("#dlg-transfer").wait_for()
        await page.keyboard.press("Escape")
        await page.locator("#dlg-transfer").wait_for(state="hidden")
        await page.keyboard.press("?")
        await page.locator("#help-dialog").wait_for()
        await page.keyboard.press("Escape")
        await page.locator("#help-dialog").wait_for(state="hidden")
        await page.keyboard.press("/")
        await page.wait_for_function("!!document.activeElement.closest('#filters')", timeout=2000)
    finally:
        await retire(engine, number)
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                text(
                    "SELECT action FROM order_events WHERE order_id = (SELECT id FROM orders WHERE number = :n)"
                ),
                {"n": number},
            )
        ).scalars()
        assert {"escalate", "assign"} <= set(actions)


async def test_filters_stay_applied_after_an_action(triage_page, live_server, engine):
    water = await new_order(engine, "6-1-601", "筛选水管", category="plumbing")
    power = await new_order(engine, "6-1-602", "筛选电路", category="electrical")
    try:
        page = triage_page
        await page.goto(f"{live_server.url}/triage")
        async with page.expect_response(lambda r: "/triage/rows" in r.url):
            await page.locator("#filters select[name=category]").select_option("plumbing")
        await page.locator(f"#t-{water}").wait_for()
        assert await page.locator(f"#t-{power}").count() == 0
        assert "category=plumbing" in page.url  # the address keeps the filters
        await page.locator(f"#t-{water} button[data-action=assign]").click()
        await page.locator("#dlg-assign button[data-confirm]").click()
        await page.locator(f"#t-{water}[data-status=assigned]").wait_for(timeout=5000)
        assert await page.locator(f"#t-{power}").count() == 0
        await poll(page, "/triage/rows", "triage-refresh")
        assert await page.locator(f"#t-{power}").count() == 0
        count = await page.locator("#result-count").inner_text()
        assert count.split()[0].isdigit()
    finally:
        await retire(engine, water, power)


async def test_two_supervisors_click_at_once_and_the_second_is_told_in_place(browser, live_server, engine):
    number = await new_order(engine, "6-1-701", "两个主管")
    ctxs = [
        await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN") for _ in range(2)
    ]
    try:
        a, b = [await c.new_page() for c in ctxs]
        for p in (a, b):
            await login(p, live_server.url, "zhuguan")
            await p.goto(f"{live_server.url}/triage")
            await p.locator(f"#t-{number} button[data-action=assign]").click()
        await a.locator("#dlg-assign select[name=assignee_id]").select_option(label="张师傅 · 维修工")
        await a.locator("#dlg-assign button[data-confirm]").click()
        await a.locator(f"#t-{number} td", has_text="张师傅").wait_for(timeout=5000)
        await b.locator("#dlg-assign select[name=assignee_id]").select_option(label="刘师傅 · 维修工")
        await b.locator("#dlg-assign button[data-confirm]").click()
        msg = b.locator(f"#m-{number} .flash-error")
        await msg.wait_for(timeout=5000)
        await b.locator(f"#t-{number} td", has_text="张师傅").wait_for()  # the new state, at once
        await poll(b, "/triage/rows", "triage-refresh")
        assert await msg.is_visible()  # the next poll does not erase the message
    finally:
        for c in ctxs:
            await c.close()
        await retire(engine, number)


# ---- tablet ------------------------------------------------------------------------------------


async def test_a_half_typed_finish_form_and_an_open_dialog_survive_polls(tablet_page, live_server, engine):
    number = await new_order(engine, "6-1-801", "表单不丢")
    try:
        await act(engine, number, "grab", "shifu1")
        code = await column(engine, number, "verification_code")
        await act(engine, number, "arrive", "shifu1", code=code)
        page = tablet_page
        await pin_login(page, live_server.url, "shifu1")
        card = page.locator(f"#o-{number}")
        await card.locator("summary", has_text="完工").click()
        await card.locator("input[name=result]").fill("更换了空开")
        await card.locator("input[name=labour_yuan]").fill("35")
        await card.locator("input[name=material_name]").type("空气开")  # still typing, focused
        other = await new_order(engine, "6-1-802", "轮询期间新单")
        for _ in range(3):
            await poll(page, "/tablet/list", "tablet-refresh")
        await page.locator(f"#p-{other}").wait_for()  # the poll did update the list…
        assert await card.locator("details[open] input[name=result]").input_value() == "更换了空开"
        assert await card.locator("input[name=labour_yuan]").input_value() == "35"
        assert await card.locator("input[name=material_name]").input_value() == "空气开"
        await card.scroll_into_view_if_needed()
        await page.screenshot(path=str(shot("tablet-finish-800x1280")))
        await card.locator("input[name=material_name]").type("关")
        await card.locator("input[name=material_qty]").fill("1")
        await card.locator("input[name=material_price_yuan]").fill("25")
        await card.locator("button[data-action=finish]").click()
        await page.locator(f"#d-{number}[data-status=done]").wait_for(timeout=5000)
        await retire(engine, other)
    finally:
        await retire(engine, number)
    assert await column(engine, number, "total_fen") == 6000


async def test_the_engineer_promises_a_time_and_finishes_with_the_customer_s_checked_material(
    tablet_page, live_server, engine
):
    number = await new_order(engine, "6-1-701", "承诺与自备材料")
    try:
        await act(engine, number, "grab", "shifu1")
        await act(engine, number, "arrive", "shifu1", code=await column(engine, number, "verification_code"))
        page = tablet_page
        await pin_login(page, live_server.url, "shifu1")
        card = page.locator(f"#o-{number}")
        await card.locator("summary", has_text="承诺").click()
        promised = (clock.now() + timedelta(hours=3)).astimezone(CST).strftime("%Y-%m-%dT%H:%M")
        await card.locator("details[open] input[name=promised_at]").fill(promised)
        await card.locator("button[data-action=promise]").click()
        await page.locator("#tablet-list .flash-ok").wait_for(timeout=5000)
        assert await column(engine, number, "promised_at") is not None
        card = page.locator(f"#o-{number}")
        await card.locator("summary", has_text="完工").click()
        await card.locator("input[name=result]").fill("用业主自购龙头更换")
        await card.locator("input[name=material_name]").fill("水龙头")
        await card.locator("select[name=material_provided_by]").select_option("customer")
        await card.locator("button[data-action=finish]").click()
        # A customer's material needs its check: said on the card, nothing saved.
        await card.locator(".field-error, .flash-error").first.wait_for(timeout=5000)
        assert await column(engine, number, "status") == "on_site"
        await card.locator("select[name=material_verified]").select_option("ok")
        await card.locator("button[data-action=finish]").click()
        await page.locator(f"#d-{number}[data-status=done]").wait_for(timeout=5000)
        assert await column(engine, number, "total_fen") == 0  # the customer's own material costs nothing
    finally:
        await retire(engine, number)


async def test_the_engineer_grabs_arrives_with_the_code_and_finishes_on_a_tablet(
    tablet_page, live_server, engine
):
    number = await new_order(engine, "6-1-901", "平板抢单测试")
    code = await column(engine, number, "verification_code")
    page = tablet_page
    try:
        await pin_login(page, live_server.url, "shifu1")
        card = page.locator(f"#p-{number}")
        await card.wait_for()
        assert await card.locator(".deadline .cd").inner_text()  # time left on the card
        await card.locator("button[data-action=grab]").tap()
        mine = page.locator(f"#o-{number}")
        await mine.wait_for(timeout=5000)
        # 退单 is a dialog: its reason is hidden until asked for, an empty confirm returns nothing.
        assert await mine.locator("input[name=reason]").is_hidden()
        await mine.locator("summary", has_text="退单").tap()
        await mine.locator("button[data-action=return]").tap()
        assert await mine.locator("input[name=reason]").evaluate("el => !el.validity.valid")
        await mine.locator("summary", has_text="退单").tap()
        await mine.locator("input[name=code]").fill("000000")
        await mine.locator("button[data-action=arrive]").tap()
        err = page.locator(f"#err-o-{number} .flash-error")
        await err.wait_for(timeout=5000)  # wrong code: said on the card itself
        assert "验证码" in await err.inner_text()
        await poll(page, "/tablet/list", "tablet-refresh")
        assert await err.is_visible()  # …and still there after a poll
        assert await mine.locator("input[name=code]").input_value() == "000000"
        await mine.locator("input[name=code]").fill(code)
        await mine.locator("button[data-action=arrive]").tap()
        await page.locator(f"#o-{number}[data-status=on_site]").wait_for(timeout=5000)
        await mine.locator("summary", has_text="完工").tap()
        await mine.locator("input[name=result]").fill("线路接头松动，已紧固")
        await mine.locator("input[name=labour_yuan]").fill("20")
        await mine.locator("input[name=material_name]").fill("电工胶布")
        await mine.locator("input[name=material_qty]").fill("2")
        await mine.locator("input[name=material_price_yuan]").fill("3.5")
        await mine.locator("button[data-action=finish]").tap()
        done = page.locator(f"#d-{number}[data-status=done]")
        await done.wait_for(timeout=5000)
        assert await page.locator(f"#o-{number}").count() == 0
    finally:
        await retire(engine, number)
    assert await column(engine, number, "total_fen") == 2700
    async with engine.connect() as conn:
        materials = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM order_materials WHERE order_id = (SELECT id FROM orders WHERE number = :n)"
                ),
                {"n": number},
            )
        ).scalar()
    assert materials == 1


async def test_two_engineers_grab_at_once_and_the_loser_is_told_in_place(browser, live_server, engine):
    number = await new_order(engine, "6-1-1001", "两人抢单")
    ctxs = [
        await browser.new_context(viewport={"width": 800, "height": 1280}, locale="zh-CN", has_touch=True)
        for _ in range(2)
    ]
    try:
        a, b = [await c.new_page() for c in ctxs]
        await pin_login(a, live_server.url, "shifu1")
        await pin_login(b, live_server.url, "shifu2")
        for p in (a, b):
            await p.locator(f"#p-{number} button[data-action=grab]").wait_for()
        # Both thumbs at once: exactly one wins.
        await asyncio.gather(*(p.locator(f"#p-{number} button[data-action=grab]").tap() for p in (a, b)))
        winner = None
        for _ in range(50):  # a tap returns when it is sent, not when its request is answered
            if (winner := await column(engine, number, "assignee_id")) is not None:
                break
            await asyncio.sleep(0.1)
        won, lost, name = (a, b, "张师傅") if winner == await staff_id(engine, "shifu1") else (b, a, "刘师傅")
        await won.locator(f"#o-{number}").wait_for(timeout=5000)
        gone = lost.locator(f"#g-{number} .flash-error")
        await gone.wait_for(timeout=5000)
        assert name in await gone.inner_text()  # who won, where the card was
        assert await lost.locator(f"#p-{number}").count() == 0  # the pool shows the new state at once
        await poll(lost, "/tablet/list", "tablet-refresh")
        assert await gone.is_visible()  # the next poll does not erase the message
    finally:
        for c in ctxs:
            await c.close()
        await retire(engine, number)


async def test_every_tablet_action_is_a_thumb_sized_button_in_portrait_landscape_and_on_a_phone(
    browser, live_server, engine
):
    """Cards in every state an engineer meets; each button visible, ≥ 48 px, inside the screen."""
    shifu1 = await staff_id(engine, "shifu1")
    pooled = await new_order(engine, "6-1-1101", "尺寸：待抢")
    assigned = await new_order(engine, "6-1-1102", "尺寸：已派")
    on_site = await new_order(
        engine, "6-1-1201", "尺寸：在场，一段很长的描述用来检查换行是否把按钮挤出屏幕之外"
    )
    paused = await new_order(engine, "6-1-1202", "尺寸：挂起")
    unfinished = await new_order(engine, "6-1-1301", "尺寸：未完成")
    numbers = [pooled, assigned, on_site, paused, unfinished]
    try:
        await act(engine, assigned, "assign", "zhuguan", assignee_id=shifu1)
        for n in (on_site, paused, unfinished):
            await act(engine, n, "grab", "shifu1")
            await act(engine, n, "arrive", "shifu1", code=await column(engine, n, "verification_code"))
        await act(engine, paused, "pause", "shifu1", reason="parts", promised_at="2030-01-01T10:00")
        await act(engine, unfinished, "unfinished", "shifu1", reason="缺配件", next_at="2030-01-02T10:00")
        for name, w, h in TABLET_SIZES:
            ctx = await browser.new_context(
                viewport={"width": w, "height": h}, locale="zh-CN", has_touch=True
            )
            try:
                page = await ctx.new_page()
                await pin_login(page, live_server.url, "shifu1")
                await page.locator(f"#o-{unfinished} .unfinished-note").wait_for()
                await page.evaluate("window.scrollTo(0, 0)")
                await page.screenshot(path=str(shot(f"tablet-{w}x{h}")))
                assert await page.evaluate("document.documentElement.scrollWidth") <= w, name
                targets = page.locator(
                    ", ".join(
                        f"#{p}-{n} .taps button:visible, #{p}-{n} .taps summary, #{p}-{n} .tel-btn"
                        for p, n in [("p", pooled)] + [("o", n) for n in numbers[1:]]
                    )
                )
                count = await targets.count()
                assert count >= 9, (name, count)
                for i in range(count):
                    t = targets.nth(i)
                    await t.scroll_into_view_if_needed()
                    assert await t.is_visible()
                    box = await t.bounding_box()
                    label = (name, await t.inner_text())
                    assert box and box["height"] >= 48 and box["width"] >= 48, label
                    assert box["x"] >= 0 and box["x"] + box["width"] <= w, label
                unfinished_card = await page.locator(f"#o-{unfinished}").inner_text()
                assert "重新预约" in unfinished_card
            finally:
                await ctx.close()
    finally:
        await retire(engine, *numbers)


async def test_an_entrapment_reaches_the_tablet_within_two_seconds_rings_and_is_acknowledged_in_place(
    browser: Any, live_server: Any, engine: Any
) -> None:
    """Registered through the API as the desk does; the wall rings; the engineer taps 确认 at 800×1280.

    In the second project (no demo alerts there), so the ringing is ours alone and must stop.
    """
    import httpx

    from server.security import new_token, token_hash

    token = new_token("bx")
    kiosk = new_token("kiosk")
    async with engine.begin() as conn:
        desk = await staff_db.by_username(conn, "other_kefu")
        await staff_db.create_api_token(conn, desk.id, token_hash(token), "browser")
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'OTHER'"))).scalar_one()
        await staff_db.create_kiosk_token(conn, token_hash(kiosk), [pid], "wall")
        await conn.execute(
            text("INSERT INTO public_areas (project_id, name) VALUES (:p, '会所') ON CONFLICT DO NOTHING"),
            {"p": pid},
        )
    wall_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    tablet_ctx = await browser.new_context(
        viewport={"width": 800, "height": 1280}, locale="zh-CN", has_touch=True
    )
    number = None
    try:
        wall = await wall_ctx.new_page()
        await wall.goto(f"{live_server.url}/board?kiosk={kiosk}")
        tablet = await tablet_ctx.new_page()
        await pin_login(tablet, live_server.url, "other_shifu", "1357")
        await tablet.locator("#sound-btn").tap()  # the one-time "enable sound" tap
        await tablet.evaluate("window.__same_page = true")
        async with httpx.AsyncClient(base_url=live_server.url) as c:
            r = await c.post(
                "/api/v1/orders",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "project": "OTHER",
                    "kind": "entrapment",
                    "area": "public",
                    "public_area": "会所",
                    "reporter_name": "值班",
                    "reporter_phone": "13800000000",
                    "summary": "会所电梯困人 1 人",
                },
            )
            assert r.status_code == 201, r.text
            number = r.json()["number"]
        posted = time.monotonic()
        row = tablet.locator(".alert-row", has_text=number)
        await row.wait_for(timeout=2500)
        assert time.monotonic() - posted < 2.5  # issue 6: on the tablet within 2 s (and the browser's lag)
        banner = wall.locator(".alerts .balert", has_text=number)
        await banner.wait_for(timeout=4000)
        await wall.screenshot(path=str(shot("board-entrapment-1920x1080")))
        rings = "parseInt(document.getElementById('tablet-alerts').dataset.rings || '0', 10)"
        await tablet.wait_for_function(f"() => {rings} >= 2", timeout=6000)  # it keeps ringing
        await tablet.evaluate("window.scrollTo(0, 0)")
        await tablet.screenshot(path=str(shot("tablet-alert-800x1280")))
        await row.locator("button.ack").tap()
        await row.wait_for(state="detached", timeout=3000)
        assert await tablet.evaluate("window.__same_page === true")  # acknowledged in place, no reload
        after = await tablet.evaluate(rings)
        await tablet.wait_for_timeout(2500)
        assert await tablet.evaluate(rings) == after  # silent once acknowledged
        await banner.wait_for(state="detached", timeout=4000)  # the wall stops ringing by itself
    finally:
        await wall_ctx.close()
        await tablet_ctx.close()
        if number:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE alerts SET state = 'resolved' WHERE order_id = (SELECT id FROM orders WHERE number = :n)"
                    ),
                    {"n": number},
                )
            await retire(engine, number)
