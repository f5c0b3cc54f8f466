"""The monthly report in headless Chromium, on screen and on paper (print media, a PDF)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS, shot
from tests.browser.test_work_browser import login

pytestmark = pytest.mark.browser


async def test_manager_prints_last_months_report_with_charts_and_definitions(live_server, page):
    await login(page, live_server.url, "jingli")
    await page.goto(f"{live_server.url}/reports")  # last month of the demo
    assert (await page.locator(".kpi[data-rate=timeliness] .v").inner_text()).endswith("%")
    assert await page.locator("#definitions").is_visible()
    await page.screenshot(path=str(shot("report-screen")), full_page=True)

    await page.emulate_media(media="print")
    # On paper: no menus or filters; every chart and the definitions, in full.
    assert not await page.locator(".report-filter").is_visible()
    assert not await page.locator(".topbar").is_visible()
    for chart in ("overview", "team-timeliness", "engineer-completion", "category-satisfaction", "histogram"):
        figure = page.locator(f'figure[data-chart="{chart}"]')
        assert await figure.locator("svg").is_visible(), chart
        box = await figure.bounding_box()
        assert box and box["width"] > 150 and box["height"] > 40, (chart, box)
    definitions = page.locator("#definitions")
    assert await definitions.is_visible()
    assert "待定" in await definitions.inner_text()  # the timeliness rule, as computed
    await page.screenshot(path=str(shot("report-print")), full_page=True)
    await page.set_viewport_size({"width": 1123, "height": 794})  # A4 landscape at 96 dpi: the paper's width
    await page.screenshot(path=str(shot("report-print-a4")), full_page=True)
    pdf = await page.pdf(format="A4", landscape=True, print_background=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


async def test_choosing_a_team_narrows_the_whole_report(live_server, page):
    await login(page, live_server.url, "jingli")
    await page.goto(f"{live_server.url}/reports")
    everyone = await page.locator(".kpi[data-rate=completion] .n").inner_text()
    await page.select_option("select[name=focus]", label="水电班")
    await page.click(".report-filter button.primary")
    await page.wait_for_load_state("networkidle")
    assert "focus=team" in page.url
    assert "水电班" in await page.locator("h1").inner_text()
    assert await page.locator(".kpi[data-rate=completion] .n").inner_text() != everyone
