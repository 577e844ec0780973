"""A bioimage.io model package installed from the app, in real headless Chromium on a real hub: picked as a
.zip, previewed with its architecture code and axes, installed only on *Install and trust*, then run on a
sample with its maps shown in the viewer, and verified against its own test tensors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from browser import Recorded, app_hub, app_page, needs_chromium, open_sample, shot
from conftest import HubProcess
from scopeflow.cli.export_model import export_model

pytestmark = [needs_chromium]
PLUGIN = "bioimageio-scopeflow-nuclei-segmentation"


@pytest.fixture(scope="module")
def models_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with app_hub(tmp_path_factory.mktemp("web-models")) as running:
        yield running


@pytest.fixture
async def app(browser: Browser, models_hub: HubProcess) -> AsyncIterator[Recorded]:
    async with app_page(browser, models_hub) as recorded:
        yield recorded


async def test_a_model_package_installs_after_its_preview_and_runs(app: Recorded, tmp_path: Path) -> None:
    package = tmp_path / "nuclei.zip"
    export_model("nuclei-segmentation", package)
    page = app.page
    await page.get_by_test_id("install-open").click()
    await page.get_by_test_id("install-model-file").set_input_files(str(package))
    card = page.get_by_test_id("model-preview-card")
    await expect(card).to_contain_text("scopeflow nuclei segmentation", timeout=30_000)
    await expect(card).to_contain_text("raw (yx)")
    await expect(card).to_contain_text("maps (cyx: foreground_logit, distance)")
    await card.get_by_test_id("model-code").locator("summary").click()
    await expect(card.get_by_test_id("model-code")).to_contain_text("class UNet")
    await expect(page.get_by_test_id(f"plugin-{PLUGIN}")).to_have_count(0)  # nothing installed yet
    await shot(page, "model-preview")
    await page.get_by_test_id("install-confirm").click()
    await expect(page.get_by_test_id(f"plugin-{PLUGIN}")).to_be_visible(timeout=30_000)

    await open_sample(page, "nuclei-2d")
    before = await page.evaluate("window.__scopeflow.state().images.length")
    await page.get_by_test_id(f"plugin-{PLUGIN}").click()
    await page.get_by_test_id("run-predict").click()
    await expect(page.get_by_test_id("op-predict").get_by_test_id("run-done")).to_be_visible(timeout=180_000)
    await page.wait_for_function(f"() => window.__scopeflow.state().images.length > {before}")
    shape = await page.evaluate("window.__scopeflow.state().images.at(-1).shape")
    assert list(shape) == [2, 512, 512]  # two maps of the sample's size

    await page.get_by_test_id("plugin-verify").click()
    await expect(page.get_by_test_id("verify-verdict")).to_contain_text("✓ Verified", timeout=120_000)
    await shot(page, "model-installed")
    docs = page.locator(".sf-docs")
    await docs.locator("summary").click()
    await expect(docs.locator("img.sf-md-img")).to_have_count(1)  # the package's cover, from a data: URI
    await expect(docs).to_contain_text("Licence: MIT")
    await docs.scroll_into_view_if_needed()
    await shot(page, "model-docs")
    app.assert_offline()
