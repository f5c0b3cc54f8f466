"""The wall board in headless Chromium against the real server: live updates, colours, alerts, outages."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from server.persistence import staff as staff_db
from server.security import new_token, token_hash
from tests.browser.conftest import LiveServer, _free_port, shot
from tests.integration.test_board import _project_id, alert_for, close_orders, frozen_chain, make_order


async def context_login(context: Any, base: str, username: str) -> Any:
    """Log a browser context in over HTTP: open the form (its CSRF cookie and field), post it."""
    page = await context.request.get(f"{base}/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', await page.text()).group(1)
    return await context.request.post(
        f"{base}/login", form={"username": username, "password": "demo1234", "_csrf": token}, max_redirects=0
    )


pytestmark = pytest.mark.browser

POLL = 2.0  # BOARD_POLL_SECONDS default


async def new_kiosk(engine: Any) -> str:
    token = new_token("kiosk")
    async with engine.begin() as conn:
        await staff_db.create_kiosk_token(
            conn, token_hash(token), [await _project_id(engine, "DEMO")], "wall"
        )
    return token


@pytest.fixture
async def kiosk_url(live_server: Any, engine: Any) -> str:
    return f"{live_server.url}/board?kiosk={await new_kiosk(engine)}"


@pytest.fixture(scope="session")
async def desk_token(engine: Any) -> str:
    """A personal API token of the dispatcher (kefu)."""
    token = new_token("bx")
    async with engine.begin() as conn:
        kefu = await staff_db.by_username(conn, "kefu")
        await staff_db.create_api_token(conn, kefu.id, token_hash(token), "board browser tests")
    return token


@pytest.fixture
def post_order(desk_token: Any, engine: Any, orders: list[dict[str, Any]]) -> Any:
    """Register an order the way the desk's software does: POST /api/v1/orders."""

    async def post(base_url: str, **over: Any) -> dict[str, Any]:
        body = {
            "project": "DEMO",
            "kind": "repair",
            "category": "security_systems",
            "urgency": "normal",
            "public_area": "东门岗亭",
            "reporter_name": "李娜",
            "reporter_phone": "13812345678",
            "summary": "门禁读卡器失灵",
            "channel": "phone",
            **over,
        }
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as c:
            r = await c.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {desk_token}"})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        async with engine.connect() as conn:
            oid = (
                await conn.execute(text("SELECT id FROM orders WHERE number = :n"), {"n": number})
            ).scalar_one()
        orders.append({"id": oid, "number": number})
        return orders[-1]

    return post


@pytest.fixture
async def slow_poll_server() -> AsyncIterator[LiveServer]:
    """A second server whose boards poll only every 30 s: whatever appears sooner came by push."""
    server = LiveServer(_free_port())
    saved = os.environ.get("BOARD_POLL_SECONDS")
    os.environ["BOARD_POLL_SECONDS"] = "30"
    try:
        await server.start()
    finally:
        if saved is None:
            os.environ.pop("BOARD_POLL_SECONDS", None)
        else:
            os.environ["BOARD_POLL_SECONDS"] = saved
    yield server
    await server.stop()


def in_dom(number: str) -> str:
    return f'[data-number="{number}"]'


@pytest.fixture
async def orders(engine: Any) -> AsyncIterator[list[dict[str, Any]]]:
    made: list[dict[str, Any]] = []
    yield made
    if made:
        await close_orders(engine, *made)


@pytest.fixture
async def test_clock(live_server: Any) -> AsyncIterator[Any]:
    async with httpx.AsyncClient(base_url=live_server.url) as c:

        async def move(seconds: float) -> None:
            r = await c.post("/_test/clock", json={"offset_seconds": seconds})
            assert r.status_code == 200, r.text

        yield move
        await move(0)


# A believable evening on the wall: every stage, every colour.
SCENE = [
    dict(
        status="pooled",
        minutes=5,
        started_ago=1,
        category="electrical",
        location="5栋-1单元-1202",
        summary="客厅跳闸，全屋停电",
        name="刘建国",
        phone="13911112222",
    ),
    dict(
        status="new",
        minutes=15,
        started_ago=9,
        category="plumbing",
        urgency="emergency",
        location="2号地库 B区",
        summary="消防水管爆裂，地面积水",
        name="巡检",
        phone="13800001111",
    ),
    dict(
        status="pooled",
        minutes=5,
        started_ago=7,
        category="building",
        location="8栋-2单元-301",
        summary="入户门锁打不开",
        name="陈美玲",
        phone="13722223333",
    ),
    dict(
        status="assigned",
        minutes=15,
        started_ago=4,
        category="hvac",
        location="1栋-1单元-902",
        clock_kind="arrival",
        summary="空调不制冷",
        name="王小明",
        phone="13633334444",
        assignee="shifu1",
    ),
    dict(
        status="accepted",
        minutes=15,
        started_ago=13,
        category="network",
        location="会所",
        clock_kind="arrival",
        summary="前台电话无信号",
        name="物业前台",
        phone="02166667777",
        assignee="shifu2",
    ),
    dict(
        status="on_site",
        minutes=480,
        started_ago=60,
        category="elevator",
        location="3栋 2号电梯",
        clock_kind="completion",
        summary="电梯门关不严",
        name="赵敏",
        phone="13544445555",
        assignee="shifu3",
    ),
    dict(
        status="on_site",
        minutes=1440,
        started_ago=1500,
        category="fire",
        location="中心花园",
        clock_kind="completion",
        summary="消火栓箱门损坏",
        name="巡检",
        phone="13800001111",
        assignee="shifu4",
    ),
    dict(
        status="paused",
        minutes=1440,
        started_ago=300,
        category="plumbing",
        location="6栋-2单元-1101",
        clock_kind="completion",
        summary="等待配件：马桶进水阀",
        name="孙丽",
        phone="13355556666",
        assignee="shifu1",
        paused=True,
    ),
    dict(
        status="callback",
        minutes=1440,
        started_ago=120,
        category="greening",
        location="南门",
        clock_kind="callback",
        summary="草坪喷灌已修复，待回访",
        name="周杰",
        phone="13266667777",
        assignee="shifu2",
    ),
]


async def test_the_board_shows_the_evening_and_an_order_posted_through_the_api_within_one_poll(
    page, kiosk_url, live_server, engine, orders, post_order
):
    for spec in SCENE:
        orders.append(await make_order(engine, **spec))
    await page.goto(kiosk_url)
    await page.wait_for_selector(in_dom(orders[0]["number"]), state="attached")
    new = await post_order(live_server.url)
    loop = asyncio.get_running_loop()
    t0 = loop.time()  # the order is saved: from here on it is the board's job
    await page.wait_for_selector(in_dom(new["number"]), state="attached", timeout=(POLL + 1.5) * 1000)
    assert loop.time() - t0 <= POLL + 1.5
    card = page.locator(in_dom(new["number"]))
    assert "李** · 138****5678" in await card.text_content()
    assert (
        await page.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(11, 15, 20)"
    )
    await page.wait_for_timeout(1200)  # countdowns and the clock have ticked
    await page.screenshot(path=shot("board-1920x1080"))
    await page.set_viewport_size({"width": 3840, "height": 2160})
    await page.wait_for_timeout(300)  # the cards are fitted again after a resize
    await page.screenshot(path=shot("board-3840x2160"))
    await page.set_viewport_size({"width": 800, "height": 1280})
    await page.wait_for_timeout(300)
    await page.screenshot(path=shot("board-800x1280"), full_page=False)


async def test_a_pushed_order_appears_well_before_the_poll(
    browser, slow_poll_server, engine, orders, post_order
):
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(f"{slow_poll_server.url}/board?kiosk={await new_kiosk(engine)}")
        assert await page.locator("#board-live").get_attribute("hx-trigger") == "every 30000ms, board-refresh"
        await page.wait_for_timeout(500)  # the event stream is open
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        new = await post_order(slow_poll_server.url, summary="推送测试")
        await page.wait_for_selector(in_dom(new["number"]), state="attached", timeout=10_000)
        assert loop.time() - t0 < 10  # the next poll is up to 30 s away (usually well under 1 s)
    finally:
        await context.close()


async def test_with_the_stream_dropped_polling_alone_keeps_the_board_right(
    browser, live_server, engine, orders, post_order
):
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        page = await context.new_page()
        streams: list[str] = []

        async def drop(route: Any) -> None:
            streams.append(route.request.url)
            await route.abort()

        await page.route("**/board/events*", drop)
        await page.goto(f"{live_server.url}/board?kiosk={await new_kiosk(engine)}")
        await page.wait_for_selector(".board-body")
        new = await post_order(live_server.url, summary="无推送测试")
        await page.wait_for_selector(in_dom(new["number"]), state="attached", timeout=(POLL + 3) * 1000)
        assert streams  # the page tried the stream and lives without it
        await page.wait_for_timeout(POLL * 1000 + 500)
        assert not await page.locator("body.stale").count()
    finally:
        await context.close()


async def test_a_card_changes_colour_as_the_clock_runs_and_flashes_when_breached(
    page, kiosk_url, engine, orders, test_clock
):
    orders.append(await make_order(engine, minutes=10, location="9栋-1单元-601", summary="卫生间漏水"))
    card = page.locator(in_dom(orders[0]["number"]))
    await page.goto(kiosk_url)
    await card.wait_for(state="attached")
    assert await card.get_attribute("data-band") == "green"
    for offset, band in ((6 * 60, "amber"), (9 * 60, "red"), (11 * 60, "breached")):
        await test_clock(offset)
        await page.wait_for_selector(
            f'{in_dom(orders[0]["number"])}[data-band="{band}"]',
            state="attached",
            timeout=(POLL + 3) * 1000,
        )
    assert "band-breached" in (await card.get_attribute("class") or "")
    assert await card.evaluate("el => getComputedStyle(el).animationName") == "board-flash"
    await page.wait_for_timeout(1100)
    text_now = await card.locator(".cd").text_content()
    assert re.fullmatch(r"\+01:[0-5]\d", text_now), (
        text_now
    )  # counting up the time overdue, on the server's clock
    assert "超时" in await card.locator(".cd-label").text_content()
    await page.screenshot(path=shot("board-breached"))


# What a column shows: cards sent, laid out, wholly inside the list, and the "+N" line.
CARD_FACTS_JS = """col => {
        const list = col.querySelector('.cards');
        const box = list.getBoundingClientRect();
        const cards = [...list.children];
        const visible = cards.filter(c => getComputedStyle(c).display !== 'none');
        return {
          total: +col.dataset.total, sent: cards.length, visible: visible.length,
          inside: visible.every(c => c.getBoundingClientRect().bottom <= box.bottom + 0.5),
          prefix: visible.every((c, i) => c === cards[i]),
          more: col.querySelector('.more').textContent.trim(),
          locLines: visible.map(c => { const l = c.querySelector('.loc');
            return Math.round(l.getBoundingClientRect().height / parseFloat(getComputedStyle(l).lineHeight)); }),
          meta: parseFloat(getComputedStyle(visible[0].querySelector('.meta')).fontSize),
        };
}
"""


async def test_only_whole_cards_are_shown_and_the_rest_are_counted(browser, live_server, engine, orders):
    for n in range(24):
        orders.append(
            await make_order(engine, minutes=30 + n, location=f"10栋-2单元-{1301 + n}", summary=f"测试 {n}")
        )
    url = f"{live_server.url}/board?kiosk={await new_kiosk(engine)}"
    shown: dict[str, int] = {}
    for width, height in ((1920, 1080), (3840, 2160)):
        context = await browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
        try:
            page = await context.new_page()
            await page.goto(url)
            await page.wait_for_selector(in_dom(orders[-1]["number"]), state="attached")
            # The stats panel arrives by its own request and takes height from the columns.
            await page.wait_for_function("document.querySelector('#board-stats').childElementCount > 0")
            await page.wait_for_timeout(300)
            col = page.locator("#col-dispatch")
            facts = await col.evaluate(CARD_FACTS_JS)
            assert facts["inside"] and facts["prefix"], facts
            assert 0 < facts["visible"] < facts["total"]
            assert facts["more"] == f"+{facts['total'] - facts['visible']} 张", facts
            assert set(facts["locLines"]) == {1}, facts  # "10栋-2单元-1301" is never broken
            assert facts["meta"] >= 19 * width / 1920, facts  # the number and customer are legible at 5 m
            shown[f"{width}"] = facts["visible"]
            await page.screenshot(path=shot(f"board-full-{width}x{height}"))
            if width == 1920:  # the same page, taller, shows more whole cards; back, fewer again
                await page.set_viewport_size({"width": 1920, "height": 1600})
                await page.wait_for_timeout(400)
                grown = await col.evaluate(CARD_FACTS_JS)
                assert grown["inside"] and grown["prefix"] and grown["visible"] > facts["visible"], grown
                await page.set_viewport_size({"width": 1920, "height": 1080})
                await page.wait_for_timeout(400)
                again = await col.evaluate(CARD_FACTS_JS)
                assert again["inside"] and again["visible"] == facts["visible"], again
        finally:
            await context.close()
    assert shown["3840"] >= shown["1920"]


async def test_an_entrapment_alert_rings_until_a_supervisor_acknowledges_it(
    browser, live_server, engine, orders
):
    async with engine.begin() as conn:  # other tests' (and the demo's) alerts would keep the wall ringing
        await conn.execute(
            text("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE state <> 'resolved'")
        )
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        r = await context_login(context, live_server.url, "zhuguan")
        assert r.status == 303
        page = await context.new_page()
        await page.goto(f"{live_server.url}/board?project=DEMO")
        await page.click("#sound-btn")  # the one-time "enable sound" of the kiosk set-up
        assert await page.evaluate("localStorage.getItem('bx-board-sound')") == "on"
        orders.append(
            await make_order(
                engine,
                kind="entrapment",
                category="elevator",
                clock_kind="ack",
                minutes=1,
                urgency="emergency",
                location="3栋 2号电梯",
                summary="电梯困人，2人被困",
                name="赵敏",
                phone="13544445555",
            )
        )
        chain = frozen_chain([("oncall_primary", "张师傅"), ("supervisor", "王主管")])
        alert_id = await alert_for(engine, orders[0], chain)
        banner = page.locator(f'[data-alert-id="{alert_id}"]')
        await banner.wait_for(timeout=(POLL + 1.5) * 1000)
        line = await banner.inner_text()
        assert "张师傅" in line and line.count("3栋 2号电梯") == 1 and "第 1/2 级" in line
        height = await banner.evaluate("el => el.getBoundingClientRect().height")
        assert height < 4 * 18, height  # one line
        card = page.locator(in_dom(orders[0]["number"]))
        assert "pinned" in (await card.get_attribute("class") or "")
        beeps = int(await page.locator("#board-app").get_attribute("data-beeps") or 0)
        await page.wait_for_timeout(3000)
        assert int(await page.locator("#board-app").get_attribute("data-beeps") or 0) > beeps  # still ringing
        assert re.fullmatch(r"00:0\d", await banner.locator(".elapsed").inner_text())
        await page.screenshot(path=shot("board-alert"))
        await banner.locator("button.ack").click()
        await banner.wait_for(state="detached", timeout=3000)
        async with engine.connect() as conn:
            state = (
                await conn.execute(text("SELECT state FROM alerts WHERE id = :a"), {"a": alert_id})
            ).scalar_one()
        assert state == "acknowledged"
        beeps = int(await page.locator("#board-app").get_attribute("data-beeps") or 0)
        await page.wait_for_timeout(3000)
        assert int(await page.locator("#board-app").get_attribute("data-beeps") or 0) == beeps  # silent now
    finally:
        await context.close()


async def test_the_event_stream_announces_a_change_at_once(live_server, kiosk_url, engine, orders):
    token = kiosk_url.split("kiosk=")[1]
    url = f"{live_server.url}/board/events?project=DEMO&kiosk={token}"
    async with httpx.AsyncClient(timeout=10) as c, c.stream("GET", url) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()

        async def next_event() -> str:
            event = None
            async for line in lines:
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "board":
                    return line.split(":", 1)[1].strip()
            raise AssertionError("stream ended")

        first = await asyncio.wait_for(next_event(), 3)
        orders.append(await make_order(engine))
        second = await asyncio.wait_for(next_event(), 1.5)  # well before the next poll
        assert second != first


async def test_a_stopped_server_greys_the_board_and_its_return_restores_it(page, kiosk_url, live_server):
    await page.goto(kiosk_url)
    await page.wait_for_selector(".board-body")
    assert not await page.locator("body.stale").count()
    await live_server.stop()
    await page.wait_for_selector("body.stale", timeout=12000)
    assert await page.locator("#board-stale").is_visible()
    assert await page.locator(".board-body").evaluate("el => getComputedStyle(el).filter") != "none"
    await page.screenshot(path=shot("board-offline"))
    await live_server.start()
    await page.wait_for_selector("body:not(.stale)", timeout=12000)
    assert not await page.locator("#board-stale").is_visible()
    assert re.search(r"\d", await page.locator("#board-fresh").inner_text())


async def test_an_expired_session_on_the_wall_shows_the_login_prompt(browser, live_server, engine, redis):
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    try:
        r = await context_login(context, live_server.url, "jiankong")
        assert r.status == 303
        page = await context.new_page()
        await page.goto(f"{live_server.url}/board?project=DEMO")
        await page.wait_for_selector(".board-body")
        sid = next(c["value"] for c in await context.cookies() if c["name"] == "bx_session")
        await redis.delete(f"sess:{sid}")  # what the idle timeout does
        async with engine.begin() as conn:  # and every process forgets it (as a logout tells them)
            await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"session:{sid}"})
        await page.wait_for_url("**/login?expired=1**", timeout=(POLL + 3) * 1000)
        assert await page.locator("input[name=password]").is_visible()
        assert "next=/board" in page.url
        assert not await page.locator(".board-body").count()  # a prompt, not a broken fragment
        await page.screenshot(path=shot("board-session-expired"))
    finally:
        await context.close()


async def test_the_board_page_has_no_full_page_reloads(page, kiosk_url, engine, orders):
    await page.goto(kiosk_url)
    await page.evaluate("window.__marker = 42")
    orders.append(await make_order(engine))
    await page.wait_for_selector(in_dom(orders[0]["number"]), state="attached", timeout=(POLL + 1.5) * 1000)
    assert await page.evaluate("window.__marker") == 42
    assert (
        json.loads(await page.evaluate("JSON.stringify(performance.getEntriesByType('navigation').length)"))
        == 1
    )


async def test_memory_stays_bounded_over_many_polls(page, kiosk_url, engine, orders):
    """Hours of polling in a minute: every poll a full fragment and a morph swap, heap and listeners flat."""
    for spec in SCENE:
        orders.append(await make_order(engine, **spec))
    await page.goto(kiosk_url)
    await page.wait_for_selector(".board-body")
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")

    async def polls(n: int) -> None:
        # Each round makes the page's version stale, so the poll answers 200 with the whole board.
        await page.evaluate(
            """n => new Promise(done => {
                const live = document.getElementById('board-live');
                let left = n;
                function next() {
                  if (left-- <= 0) { document.body.removeEventListener('htmx:afterSettle', onSettle); return done(); }
                  live.querySelector('.board-body').setAttribute('data-version', 'seen-long-ago');
                  htmx.trigger(live, 'board-refresh');
                }
                function onSettle(e) { if (e.target === live) setTimeout(next, 0); }
                document.body.addEventListener('htmx:afterSettle', onSettle);
                next();
            })""",
            n,
        )

    async def measure() -> dict[str, float]:
        await cdp.send("HeapProfiler.collectGarbage")
        heap = (await cdp.send("Runtime.getHeapUsage"))["usedSize"]
        metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
        return {"heap": heap, "nodes": metrics["Nodes"], "listeners": metrics["JSEventListeners"]}

    await polls(20)  # warm up: caches, JIT, the first stats panel
    first = await measure()
    await polls(100)
    second = await measure()
    await polls(100)
    third = await measure()
    assert third["heap"] - first["heap"] < 1_000_000, (first, second, third)
    assert third["nodes"] <= first["nodes"] * 1.05, (first, second, third)
    # No listener per swap (a leak would add one or more every poll); a few come and go with
    # the statistics strip and pending requests.
    assert third["listeners"] - first["listeners"] < 20, (first, second, third)
