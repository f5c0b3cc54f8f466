"""The desk in headless Chromium: keyboard intake, the code read out, the callback and the rework."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import shot
from tests.browser.test_work_browser import act, login
from tests.work_orders import retire, staff_id

pytestmark = pytest.mark.browser


async def test_the_desk_registers_by_keyboard_and_calls_back_in_the_browser(
    browser: Any, live_server: Any, engine: Any
) -> None:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    numbers: list[str] = []
    try:
        page = await ctx.new_page()
        await login(page, live_server.url, "kefu")
        await page.goto(f"{live_server.url}/desk")
        form = page.locator("#intake-form")
        # The elevator choice loads its options into itself, never over the form.
        await page.wait_for_function(
            "document.querySelectorAll('#intake-form select[name=elevator] option').length > 1"
        )
        assert await form.locator("input[name=summary]").is_visible()
        # Keyboard only: the phone field has the focus; Tab walks to room and name.
        assert await page.evaluate("document.activeElement.name") == "reporter_phone"
        await page.keyboard.type("138 1234 5678")
        await page.keyboard.press("Tab")
        await page.keyboard.type("1-1-101")
        await page.keyboard.press("Tab")
        await page.keyboard.type("<b>钱</b>先生")
        await form.locator("input[name=summary]").focus()
        await page.keyboard.type("厨房水龙头漏水")
        await page.keyboard.press("Enter")
        created = page.locator("#intake .created")
        await created.wait_for(timeout=5000)
        number = (await created.locator(".number").inner_text()).strip()
        code = (await created.locator(".vcode").inner_text()).strip()
        numbers.append(number)
        assert re.fullmatch(r"BX-\d{8}-\d{4}", number), number
        assert re.fullmatch(r"\d{4,6}", code), code
        await page.screenshot(path=shot("desk-registered-1440x900"))

        await page.goto(f"{live_server.url}/orders/{number}")
        body = await page.locator("main").inner_text()
        assert "13812345678" in body  # normalised
        assert "<b>钱</b>先生" in body  # escaped, shown as typed
        assert await page.locator("main b", has_text="钱").count() == 0

        # The engineer's steps, as the tablet takes them.
        await act(engine, number, "assign", "zhuguan", assignee_id=await staff_id(engine, "shifu1"))
        await act(engine, number, "accept", "shifu1")
        await act(engine, number, "arrive", "shifu1", code=code)
        await act(engine, number, "finish", "shifu1", result="更换阀芯")

        await page.goto(f"{live_server.url}/callbacks")
        row = page.locator(f"#cb-{number}")
        await row.locator("select[name=method]").select_option("phone")
        await row.locator("select[name=rating]").select_option("unsatisfied")
        await row.locator("input[name=comment]").fill("还在滴水")
        await row.locator("button[data-action=callback]").click()
        await row.wait_for(state="detached", timeout=5000)
        reopen = page.locator(f"tr:has(a:text-is('{number}')) form[hx-post$='/reopen']")
        await reopen.locator("input[name=reason]").fill("客户反映仍漏水")
        await reopen.locator("button[data-action=reopen]").click()
        # The flash names the rework order it opened (not only ours, as the callback's did).
        said = await page.wait_for_function(
            """n => { const f = document.querySelector('#cb-flash .flash-ok');
                      const m = f && f.textContent.replaceAll(n, '').match(/BX-\\d{8}-\\d{4}/);
                      return m && m[0]; }""",
            arg=number,
            timeout=5000,
        )
        numbers.append(await said.json_value())
        await page.goto(f"{live_server.url}/orders/{number}")
        timeline = await page.locator("main").inner_text()
        for step in ("已受理", "已到场", "已完工", "回访"):
            assert step in timeline, step
    finally:
        await ctx.close()
        await retire(engine, *numbers)
