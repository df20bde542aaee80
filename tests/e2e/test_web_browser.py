"""A real browser (Debian's headless Chromium driven by Playwright) opens `/`, follows the links
down to a kecamatan and reads the shown totals: they equal `dphp report`.

DPHP_WEB_SCREENSHOTS=DIR also saves the drill-down page and the print form as PNG there
(how docs/img/ was made, from the demo's data)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.services import dphp_json
from tests.support.web import start_web_stack, stop_web_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FIELDS = ("male", "female", "total", "tps_count", "tps_loksus_count", "new_voters", "under_age")


@pytest_asyncio.fixture(scope="module")
async def web(stack, tmp_path_factory):
    started = await start_web_stack(stack, tmp_path_factory.mktemp("web-browser-logs"), seed=15)
    try:
        yield started
    finally:
        stop_web_stack(started)


def number(text: str) -> int:
    return int(text.strip().replace(".", ""))


async def test_drill_down_to_a_kecamatan_shows_the_report(web):
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make print-deps` (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 412, "height": 900})  # a phone's width
            await page.goto(web.url + "/")
            assert await page.locator("h1").inner_text() == "Indonesia ID"
            for name, code in (("Jawa Tengah", "33"), ("Kabupaten Blora", "33.16"), ("Jati", "33.16.01")):
                await page.locator(f'#children tr[data-region="{code}"] a').click()
                await page.wait_for_url(f"**/region/{code}")
                assert name in await page.locator("h1").inner_text()
                assert await page.locator("nav.crumbs a").count() == code.count(".") + 1  # Indonesia, ...

            own = dphp_json(web.settings, "report", "--region", "33.16.01", "--level", "kecamatan")[0]
            for f in FIELDS:
                assert number(await page.locator(f'#summary [data-field="{f}"]').inner_text()) == own[f], f
            rows = dphp_json(web.settings, "report", "--region", "33.16.01")
            shown = page.locator("#children tbody tr")
            assert await shown.count() == len(rows)
            for r in rows:
                row = page.locator(f'#children tr[data-region="{r["region_code"]}"]')
                for f in FIELDS:
                    assert number(await row.locator(f'[data-field="{f}"]').inner_text()) == r[f], (r["region_code"], f)
            # Up again through the breadcrumbs.
            await page.locator("nav.crumbs a", has_text="Kabupaten Blora").click()
            await page.wait_for_url("**/region/33.16")
            await save_screenshots(browser, web.url)
        finally:
            await browser.close()


async def save_screenshots(browser, url: str) -> None:
    target = os.environ.get("DPHP_WEB_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await page.goto(url + "/region/33.16")
    await page.screenshot(path=f"{target}/web-region.png", full_page=True)
    phone = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    await phone.goto(url + "/region/33.16")
    await phone.screenshot(path=f"{target}/web-region-phone.png")
    form = await browser.new_page(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
    await form.goto(url + "/region/33.16/print")
    await form.screenshot(path=f"{target}/print-form.png", full_page=True)
