"""Teach it your images, in the browser (real Chromium, the real app, a real hub): a segmentation corrected
on a copy, a fine-tune on it with live curves, and the new version listed and run like any plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, expect

from browser import Recorded, app_hub, app_page, needs_chromium, open_sample, shot
from conftest import HubProcess

pytestmark = [needs_chromium]


@pytest.fixture(scope="module")
def tune_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with app_hub(tmp_path_factory.mktemp("web-finetune")) as running:
        yield running


@pytest.fixture
async def app(browser: Browser, tune_hub: HubProcess) -> AsyncIterator[Recorded]:
    async with app_page(browser, tune_hub) as recorded:
        yield recorded


@pytest.mark.timeout(600)
async def test_correct_fine_tune_and_run_the_new_version(app: Recorded, tune_hub: HubProcess) -> None:
    page = app.page
    await open_sample(page, "nuclei-2d")
    await open_sample(page, "nuclei-2d-labels")  # stands for the network's result the user corrects
    await page.get_by_test_id("labels-start").click()  # paint on a copy: the copy is the overlay
    await expect(page.get_by_test_id("label-tools")).to_be_visible()

    await page.get_by_test_id("plugin-nuclei-segmentation").click()
    form = page.get_by_test_id("op-finetune")
    labels_choice = await form.get_by_test_id("input-labels").evaluate("s => s.options[s.selectedIndex].text")
    assert "labels" in labels_choice  # the labels input follows the overlay: the painted copy
    for optional in ("image_2", "labels_2", "image_3", "labels_3"):  # left out unless the user picks them
        assert await form.get_by_test_id(f"input-{optional}").input_value() == ""
    await form.get_by_test_id("input-name").fill("mine")
    await form.get_by_test_id("input-max_steps").fill("8")
    await form.get_by_test_id("run-finetune").click()
    plot = page.get_by_test_id("plot").filter(has_text="fine-tune")
    await expect(plot).to_be_visible(timeout=240_000)  # the live curves, while it trains
    await expect(form.get_by_test_id("run-done")).to_be_visible(timeout=300_000)
    await expect(form).to_contain_text("125 annotated objects")  # the one image pair, not three copies
    await shot(page, "finetune-done")

    new = page.get_by_test_id("plugin-nuclei-segmentation-mine")
    await expect(new).to_be_visible(timeout=30_000)
    await new.click()
    await expect(page.get_by_test_id("plugin-panel")).to_contain_text("+ft.")  # a version one can tell apart
    before = await page.evaluate("window.__scopeflow.state().images.length")
    await page.get_by_test_id("op-segment").get_by_test_id("input-image").select_option(index=1)
    await page.get_by_test_id("run-segment").click()
    await expect(page.get_by_test_id("op-segment").get_by_test_id("run-done")).to_be_visible(timeout=180_000)
    await page.wait_for_function(f"() => window.__scopeflow.state().images.length > {before}")
    result = await page.evaluate(
        "(() => { const i = window.__scopeflow.state().images.at(-1);"
        " return [i.dtype, i.shape, i.data.reduce((a, b) => Math.max(a, b), 0)]; })()"
    )
    assert result[0] == "int32" and list(result[1]) == [512, 512] and result[2] > 50  # nuclei found
    await shot(page, "finetune-version")
    app.assert_offline()
