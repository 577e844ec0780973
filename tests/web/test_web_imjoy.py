"""ImJoy plugins written by others, in the web app (real headless Chromium on a real hub): web-worker plugins
in a real Web Worker, ImJoy's built-in window types, and plugins that would load files from the internet.

The plugins are in tests/web_imjoy_plugins/, written as ImJoy plugins are.
Screenshots: artifacts/web-imjoy-*.png.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from browser import Recorded, needs_chromium, open_app, shot
from conftest import ARTIFACTS, ROOT, HubProcess, start_hub, stop_hub

PLUGINS = Path(__file__).parents[1] / "web_imjoy_plugins"

pytestmark = [pytest.mark.browser, needs_chromium]

WORKER_FRAME = "iframe.sf-worker-frame"
OFFLINE = "from the internet, which scopeflow does not do: ship the file with the plugin"


@pytest.fixture(scope="module")
def imjoy_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    if not (ROOT / "web" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run bash scripts/setup")
    running = start_hub(tmp_path_factory.mktemp("web-imjoy"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(running.log_path, ARTIFACTS / "web-imjoy-hub.log")


@pytest.fixture(scope="module")
def workers_allowed(imjoy_hub: HubProcess) -> None:
    """Web workers start from a blob: URL inside the window frame: its policy must allow that."""
    with urlopen(f"{imjoy_hub.url}/window.html", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
    if "worker-src blob:" not in policy:
        pytest.fail(
            "the window frame's policy (WINDOW_POLICY in server/scopeflow/hub/handlers.py) lacks "
            '"worker-src blob:", so web-worker plugins cannot start a Web Worker'
        )


@pytest.fixture
async def app(browser: Browser, imjoy_hub: HubProcess) -> AsyncIterator[Recorded]:
    context, recorded = await open_app(browser, imjoy_hub)
    yield recorded
    await context.close()


def assert_stayed_home(app: Recorded) -> None:
    outside = [
        u
        for u in app.urls
        if urlsplit(u).scheme not in ("data", "blob", "about") and urlsplit(u).hostname != "127.0.0.1"
    ]
    assert not outside, f"requests left 127.0.0.1: {outside}"


async def call(page: Page, plugin: str, method: str, *args: object) -> object:
    """``api.getPlugin(plugin)[method](...args)`` as the app (and plugins) do it."""
    return await page.evaluate(
        "async ([plugin, method, args]) => (await window.__scopeflow.getPlugin(plugin))[method](...args)",
        [plugin, method, list(args)],
    )


def status(page: Page, plugin: str):
    return page.get_by_test_id("plugin-panel").get_by_test_id(f"status-{plugin}")


async def start_worker(page: Page, plugin: str) -> None:
    await page.get_by_test_id(f"plugin-{plugin}").click()
    await page.get_by_test_id("plugin-start").click()


async def test_a_web_worker_plugin_runs_in_a_real_worker_without_the_page(
    app: Recorded, imjoy_hub: HubProcess, workers_allowed: None
):
    page = app.page
    await start_worker(page, "worker-calc")
    await expect(status(page, "worker-calc")).to_have_text("ready", timeout=30_000)
    # its api.log reached the app, from a place without a document
    await expect(page.get_by_test_id("log")).to_contain_text("Worker Calc initialized, document is undefined")
    frame = page.locator(WORKER_FRAME)
    await expect(frame).to_have_attribute("sandbox", "allow-scripts")
    await expect(frame).to_be_hidden()
    where = await call(page, "Worker Calc", "where")
    assert where["worker"] is True, where
    assert where["document"] == "undefined" and where["window"] == "undefined", where
    assert where["origin"] == "null", where  # opaque: nothing of the app's origin (storage, token, hub)
    assert where["network"] == "refused", where
    assert where["storage"] in ("none", "blocked"), where
    # the frame the worker lives in never saw the token
    inner = next(f for f in page.frames if f != page.main_frame)
    assert urlsplit(inner.url).path == "/window.html"
    assert imjoy_hub.token not in await inner.evaluate("document.documentElement.outerHTML")
    # its exports are ops in the app like a kernel's: run one from its form
    await page.get_by_test_id("input-a").fill("40")
    await page.get_by_test_id("input-b").fill("2")
    await page.get_by_test_id("run-add").click()
    done = page.get_by_test_id("op-add").get_by_test_id("run-done")
    await expect(done).to_be_visible(timeout=30_000)
    await expect(page.get_by_test_id("op-add")).to_contain_text("42")
    # it calls a Python plugin through the hub, and its UI calls reach the app
    assert await call(page, "worker-calc", "greet", "worker") == "Hello, worker!"
    await expect(page.get_by_test_id("toast").filter(has_text="Worker Calc: Hello, worker!")).to_be_visible()
    await shot(page, "imjoy-worker")
    # Stop ends the worker with its frame; the next call starts a new one
    await page.get_by_test_id("plugin-stop").click()
    await expect(page.locator(WORKER_FRAME)).to_have_count(0)
    await expect(status(page, "worker-calc")).to_have_text("not started")
    assert await call(page, "Worker Calc", "add", 1, 2) == 3
    await expect(page.locator(WORKER_FRAME)).to_have_count(1)
    assert_stayed_home(app)


async def test_a_window_plugin_calls_a_web_worker_plugin(app: Recorded, workers_allowed: None):
    page = app.page
    await page.get_by_test_id("plugin-calc-window").click()
    await page.get_by_test_id("open-window").click()
    window = page.frame_locator("iframe.sf-window-frame")
    await expect(window.locator("#sum")).to_have_text("5", timeout=60_000)
    await expect(window.locator("#greeting")).to_have_text("Hello, calc window!", timeout=30_000)
    # the worker was started on first use, once
    await expect(page.locator(WORKER_FRAME)).to_have_count(1)
    await page.get_by_test_id("plugin-worker-calc").click()
    await expect(status(page, "worker-calc")).to_have_text("ready")
    await shot(page, "imjoy-window-calls-worker")
    app.assert_offline()


async def test_a_web_worker_plugin_that_touches_the_document_gets_a_clear_error(
    app: Recorded, workers_allowed: None
):
    page = app.page
    await start_worker(page, "worker-with-dom")
    await expect(status(page, "worker-with-dom")).to_have_text("crashed", timeout=30_000)
    message = "Worker With DOM is a web-worker plugin: it runs in a Web Worker, which has no document"
    await expect(page.get_by_test_id("log")).to_contain_text(message)
    await expect(page.get_by_test_id("plugin-crash")).to_contain_text("document is not defined")
    await expect(page.get_by_test_id("plugin-crash")).to_contain_text("type: window")
    await expect(page.locator(WORKER_FRAME)).to_have_count(0)
    await shot(page, "imjoy-worker-document")
    assert_stayed_home(app)


async def test_imjoy_image_and_markdown_windows_show_in_the_app(app: Recorded, workers_allowed: None):
    page = app.page
    shown = await call(page, "Worker Calc", "showPicture")
    assert shown["id"]
    image = await page.evaluate(
        """() => {
            const s = window.__scopeflow.state();
            const img = s.images.find((i) => i.id === s.activeImage);
            return {name: img.name, shape: img.shape, dtype: img.dtype, axes: img.axes, source: img.source,
                    data: Array.from(img.data)};
        }"""
    )
    assert image["name"] == "Worker picture" and image["source"] == "worker-calc"
    assert image["dtype"] == "uint8" and sorted(image["shape"]) == [3, 24, 32], image["shape"]
    pixels = np.array(image["data"], np.uint8).reshape(image["shape"])
    if image["shape"][0] == 3:  # channels first
        pixels = np.moveaxis(pixels, 0, -1)
    assert pixels[0, 0, 0] == 0 and pixels[0, 31, 0] == 255  # the red ramp
    assert pixels[12, 16, 1] == 200 and pixels[2, 2, 1] == 0  # the green rectangle
    await expect(page.get_by_test_id("tab-viewer")).to_have_class("sf-tab sf-selected")
    await shot(page, "imjoy-image")
    await call(page, "Worker Calc", "showNotes")
    markdown = page.get_by_test_id("window-box-markdown")
    await expect(markdown.get_by_role("heading", name="Notes from a worker")).to_be_visible()
    await expect(markdown).to_contain_text("2 + 3 = 5")
    await shot(page, "imjoy-markdown")
    app.assert_offline()


async def test_an_external_page_or_image_says_it_needs_the_internet(app: Recorded, workers_allowed: None):
    page = app.page
    result = await call(page, "Worker Calc", "showRemote")
    assert OFFLINE in result["error"]
    for url in ("https://imjoy.io/static/img/imjoy-icon.png", "https://kaibu.org/#/app"):
        await expect(page.get_by_test_id("log")).to_contain_text(f"loads {url} {OFFLINE}")
    note = page.get_by_test_id("window-box-note").locator(":visible").get_by_test_id("window-note")
    await expect(note).to_contain_text("https://kaibu.org/#/app")
    await expect(note).to_contain_text("This window cannot open.")
    await shot(page, "imjoy-external-window")
    app.assert_offline()


async def test_a_window_plugin_loading_from_a_cdn_says_so_and_still_opens(app: Recorded):
    page = app.page
    await page.get_by_test_id("plugin-cdn-window").click()
    await page.get_by_test_id("open-window").click()
    window = page.frame_locator("iframe.sf-window-frame")
    await expect(window.locator("#out")).to_have_text("no Plotly here", timeout=60_000)
    note = page.get_by_test_id("window-note")
    for url in (
        "https://cdn.plot.ly/plotly-2.27.0.min.js",
        "https://cdnjs.cloudflare.com/ajax/libs/bulma/0.9.4/css/bulma.min.css",
        "https://cdn.jsdelivr.net/npm/vega@5",
    ):
        await expect(page.get_by_test_id("log")).to_contain_text(url)
    await expect(note).to_contain_text("CDN Window loads https://cdn.plot.ly/plotly-2.27.0.min.js")
    await expect(note).to_contain_text(OFFLINE)
    await expect(page.get_by_test_id("toast").filter(has_text="from the internet")).to_be_visible()
    await shot(page, "imjoy-cdn-window")
    # the frame never asked for them: no request left, no policy violation
    app.assert_offline()


async def test_the_ui_form_of_a_plugin_fills_ctx_config(app: Recorded):
    """ImJoy shows a plugin's ``ui`` as a form and passes it to ``run`` as ``ctx.config``."""
    page = app.page
    await page.get_by_test_id("plugin-threshold-form").click()
    form = page.get_by_test_id("op-run")
    await expect(form.get_by_test_id("input-threshold")).to_have_value("128")  # its placeholder
    await expect(form.get_by_test_id("input-method")).to_have_value("manual")
    await expect(form).to_contain_text("threshold")
    await form.get_by_test_id("input-threshold").fill("42")
    await form.get_by_test_id("input-method").select_option("otsu")
    await form.get_by_test_id("run-run").click()
    done = form.get_by_test_id("run-done")
    await expect(done).to_contain_text("threshold 42 by otsu (none)", timeout=60_000)
    await shot(page, "imjoy-ui-form")
    await form.get_by_test_id("input-threshold").fill("300")
    await form.get_by_test_id("run-run").click()  # past its max: the form says so and does not run
    await expect(form.locator("#field-threshold:invalid")).to_have_count(1)
    await expect(form.get_by_test_id("run-done")).to_contain_text("threshold 42 by otsu")
