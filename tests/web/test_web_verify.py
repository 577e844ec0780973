"""*Verify* in the plugin panel, in real headless Chromium on a real hub: a plugin's test cases run in its
kernel and the panel shows pass or fail per case with the largest difference."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from browser import Recorded, app_hub, app_page, needs_chromium, shot
from conftest import HubProcess

pytestmark = [needs_chromium]

FAILING = '''"""Adds, one too many."""
from scopeflow import op

PLUGIN = {"id": "off-by-one", "name": "Off by one", "tests": [
    {"name": "two and two", "op": "add", "inputs": {"a": 2, "b": 2}, "expected": {"result": 4}}]}


@op()
def add(a: float = 0, b: float = 0) -> float:
    return a + b + 1
'''


@pytest.fixture(scope="module")
def verify_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("verify")
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / "off_by_one.py").write_text(FAILING)
    with app_hub(tmp, "--plugins-dir", str(tmp / "plugins")) as running:
        yield running


@pytest.fixture
async def app(browser: Browser, verify_hub: HubProcess) -> AsyncIterator[Recorded]:
    async with app_page(browser, verify_hub) as recorded:
        yield recorded


async def test_verify_shows_pass_and_fail_with_the_difference(app: Recorded, tmp_path: Path) -> None:
    page = app.page
    await page.get_by_test_id("plugin-otsu-watershed").click()
    await page.get_by_test_id("plugin-verify").click()
    report = page.get_by_test_id("verify-report")
    await expect(report.get_by_test_id("verify-verdict")).to_contain_text("✓ Verified", timeout=120_000)
    row = report.get_by_test_id("verify-case")
    await expect(row).to_have_attribute("data-passed", "true")
    await expect(row.get_by_test_id("verify-summary")).to_contain_text("F1 at IoU 0.5: 0.7")
    await shot(page, "verify-pass")

    await page.get_by_test_id("plugin-off-by-one").click()
    await expect(page.get_by_test_id("verify-report")).to_have_count(0)  # not the other plugin's report
    await page.get_by_test_id("plugin-verify").click()
    report = page.get_by_test_id("verify-report")
    await expect(report.get_by_test_id("verify-verdict")).to_contain_text("failed", timeout=60_000)
    row = report.get_by_test_id("verify-case")
    await expect(row).to_have_attribute("data-passed", "false")
    await expect(row).to_have_attribute("data-difference", "1")  # the largest difference: 5 against 4
    await expect(row.get_by_test_id("verify-summary")).to_contain_text("largest difference: 1")
    await shot(page, "verify-fail")
    app.assert_offline()
