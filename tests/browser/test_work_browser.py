"""The supervisor's triage screen and the engineer's tablet in headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from server import clock
from server.domain.intake import validate_intake
from server.persistence import orders as orders_db
from server.persistence.orders import ActorInfo
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser


async def login(page: Any, base: str, user: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", "demo1234")
    await page.click("button.primary")
    await page.wait_for_load_state("networkidle")


async def pooled_order(engine: Any, room: str, summary: str) -> str:
    async with engine.begin() as conn:
        intake = validate_intake(
            {
                "project": "DEMO",
                "kind": "repair",
                "category": "electrical",
                "room": room,
                "reporter_name": "浏览器",
                "reporter_phone": "13500000000",
                "summary": summary,
            },
            now=clock.now(),
        )
        reg = await orders_db.register(conn, intake, ActorInfo(None, "测试", None), clock.now())
    return reg.number


async def test_a_supervisors_click_assigns_in_place(browser: Any, live_server: Any, engine: Any) -> None:
    number = await pooled_order(engine, "6-1-101", "浏览器派单测试")
    context = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = await context.new_page()
    try:
        await login(page, live_server.url, "zhuguan")
        await page.goto(f"{live_server.url}/triage")
        row = page.locator(f"#t-{number}")
        await row.wait_for()
        await row.locator("select[name=assignee_id]").select_option(label="陈师傅")
        await row.locator("button[data-action=assign]").click()
        await page.locator(f"#t-{number} td:nth-child(7)", has_text="陈师傅").wait_for(timeout=5000)
        await page.screenshot(path=str(shot("triage-1920x1080")))
        assert "http" in page.url and "/triage" in page.url  # no navigation: updated in place
    finally:
        await context.close()
    async with engine.connect() as conn:
        status = (
            await conn.execute(text("SELECT status FROM orders WHERE number = :n"), {"n": number})
        ).scalar()
    assert status == "assigned"


async def test_the_engineer_grabs_and_arrives_on_a_tablet(
    browser: Any, live_server: Any, engine: Any
) -> None:
    number = await pooled_order(engine, "6-1-102", "平板抢单测试")
    async with engine.connect() as conn:
        code = (
            await conn.execute(text("SELECT verification_code FROM orders WHERE number = :n"), {"n": number})
        ).scalar()
    context = await browser.new_context(
        viewport={"width": 800, "height": 1280}, locale="zh-CN", has_touch=True
    )
    page = await context.new_page()
    try:
        await page.goto(f"{live_server.url}/login?pin=1")
        await page.fill("input[name=username]", "shifu1")
        await page.fill("input[name=pin]", "2580")
        await page.click("button.primary")
        await page.wait_for_url("**/tablet")
        card = page.locator(f"#p-{number}")
        await card.wait_for()
        box = await card.locator("button[data-action=grab]").bounding_box()
        assert box and box["height"] >= 48 and box["width"] >= 48  # a thumb's target
        await card.locator("button[data-action=grab]").click()
        mine = page.locator(f"#o-{number}")
        await mine.wait_for(timeout=5000)
        await mine.locator("input[name=code]").fill("000000")
        await mine.locator("button[data-action=arrive]").click()
        err = page.locator(f"#err-o-{number} .flash-error")
        await err.wait_for(timeout=5000)  # wrong code: said on the card itself
        assert "验证码" in await err.inner_text()
        await page.screenshot(path=str(shot("tablet-800x1280")))
        await page.locator(f"#o-{number} input[name=code]").fill(code)
        await page.locator(f"#o-{number} button[data-action=arrive]").click()
        await page.locator(f"#o-{number}[data-status=on_site]").wait_for(timeout=5000)
    finally:
        await context.close()


async def test_an_entrapment_rings_on_the_wall_until_an_engineer_acknowledges_on_the_tablet(
    browser: Any, live_server: Any, engine: Any
) -> None:
    """Registered through the API as the desk does; the wall rings; the engineer taps 确认 at 800×1280."""
    import httpx

    from server.persistence import staff as staff_db
    from server.security import new_token, token_hash

    token = new_token("bx")
    kiosk = new_token("kiosk")
    async with engine.begin() as conn:
        kefu = await staff_db.by_username(conn, "kefu")
        await staff_db.create_api_token(conn, kefu.id, token_hash(token), "browser")
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()
        await staff_db.create_kiosk_token(conn, token_hash(kiosk), [pid], "wall")
    wall_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    tablet_ctx = await browser.new_context(
        viewport={"width": 800, "height": 1280}, locale="zh-CN", has_touch=True
    )
    number = None
    try:
        wall = await wall_ctx.new_page()
        await wall.goto(f"{live_server.url}/board?kiosk={kiosk}")
        async with httpx.AsyncClient(base_url=live_server.url) as c:
            r = await c.post(
                "/api/v1/orders",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "project": "DEMO",
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
        banner = wall.locator(".alerts .alert", has_text=number)
        await banner.wait_for(timeout=4000)
        await wall.screenshot(path=str(shot("board-entrapment-1920x1080")))
        tablet = await tablet_ctx.new_page()
        await tablet.goto(f"{live_server.url}/login?pin=1")
        await tablet.fill("input[name=username]", "shifu1")
        await tablet.fill("input[name=pin]", "2580")
        await tablet.click("button.primary")
        await tablet.wait_for_url("**/tablet")
        row = tablet.locator(".alert-row", has_text=number)
        await row.wait_for(timeout=5000)
        await tablet.screenshot(path=str(shot("tablet-alert-800x1280")))
        await row.locator("button.ack").click()
        await row.wait_for(state="detached", timeout=5000)
        await banner.wait_for(state="detached", timeout=4000)  # the wall stops ringing by itself
    finally:
        await wall_ctx.close()
        await tablet_ctx.close()
        if number:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE alerts SET state = 'resolved' WHERE order_id = "
                        "(SELECT id FROM orders WHERE number = :n)"
                    ),
                    {"n": number},
                )
