"""The web app in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright), on a real hub.

Screenshots go to artifacts/web-*.png. Every request the page makes is recorded: none may leave 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.async_api import Browser, Frame, Page, expect

from browser import Recorded, needs_chromium, open_app, open_sample, shot
from conftest import ARTIFACTS, ROOT, HubProcess, free_port, start_hub, stop_hub
from scopeflow.images import formats as data

WEB_PLUGINS = Path(__file__).parents[1] / "web_plugins"

pytestmark = [needs_chromium]


@pytest.fixture(scope="module")
def web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    if not (ROOT / "web" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run bash scripts/setup")
    running = start_hub(tmp_path_factory.mktemp("web"), "--plugins-dir", str(WEB_PLUGINS))
    yield running
    stop_hub(running)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(running.log_path, ARTIFACTS / "web-hub.log")


@pytest.fixture
async def app(browser: Browser, web_hub: HubProcess) -> AsyncIterator[Recorded]:
    context, recorded = await open_app(browser, web_hub)
    yield recorded
    await context.close()


async def run_op(page: Page, plugin: str, op: str, timeout: float = 90_000) -> None:
    await page.get_by_test_id(f"plugin-{plugin}").click()
    await page.get_by_test_id(f"run-{op}").click()
    await expect(page.get_by_test_id(f"op-{op}").get_by_test_id("run-done")).to_be_visible(timeout=timeout)


async def test_app_takes_the_token_once_and_lists_plugins(app: Recorded, web_hub: HubProcess):
    page = app.page
    assert "token" not in page.url  # taken out of the address bar (and so out of history and shared links)
    assert await page.evaluate("sessionStorage.getItem('scopeflow.token')") == web_hub.token
    for plugin in ("hello", "gaussian", "greeter", "measure-demo"):
        await expect(page.get_by_test_id(f"plugin-{plugin}")).to_be_visible()
    await shot(page, "start")
    app.assert_offline()


async def test_without_a_token_the_app_asks_and_refuses_a_wrong_one(browser: Browser, web_hub: HubProcess):
    context = await browser.new_context()
    page = await context.new_page()
    recorded = Recorded(page)
    await page.goto(web_hub.url + "/")
    await page.get_by_test_id("token-input").fill("not-the-token")
    await page.get_by_role("button", name="Connect").click()
    await expect(page.get_by_text("The hub refused that token")).to_be_visible(timeout=15_000)
    await page.get_by_test_id("token-input").fill(web_hub.token)
    await page.get_by_role("button", name="Connect").click()
    await expect(page.get_by_test_id("connection")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    recorded.assert_offline()
    await context.close()


async def test_a_plugin_runs_on_a_sample_and_the_viewer_shows_the_result(app: Recorded):
    page = app.page
    await open_sample(page, "nuclei-2d")
    await page.get_by_test_id("plugin-gaussian").click()
    await page.get_by_test_id("input-sigma").fill("3")
    await run_op(page, "gaussian", "blur")
    result = await page.evaluate(
        """() => {
            const s = window.__scopeflow.state();
            const img = s.images.find(i => i.id === s.activeImage);
            return {name: img.name, shape: img.shape, dtype: img.dtype, data: Array.from(img.data)};
        }"""
    )
    assert result["shape"] == [512, 512] and result["dtype"] == "float32"
    from scipy.ndimage import gaussian_filter

    sample, _ = data.load_sample("nuclei-2d")
    expected = gaussian_filter(sample.astype(np.float32), 3)
    got = np.array(result["data"], np.float32).reshape(512, 512)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    # the pixels on screen follow the result: brighter values render brighter
    rng = np.random.default_rng(0)
    points = rng.integers(0, 512, size=(300, 2))
    shown = await page.evaluate(
        "(pts) => pts.map(([x, y]) => window.__scopeflowViewer.renderedPixel(x, y))", points.tolist()
    )
    grey = np.array([p[0] + p[1] + p[2] for p in shown], float)
    values = np.array([got[y, x] for x, y in points])
    assert np.corrcoef(grey, values)[0, 1] > 0.9
    # tuning sigma and running again redoes the sample, not the blurred result; results say what made them
    await page.get_by_test_id("input-sigma").fill("1")
    await page.get_by_test_id("run-blur").click()
    await page.wait_for_function("() => window.__scopeflow.state().images.length === 3", timeout=60_000)
    names = await page.evaluate("window.__scopeflow.state().images.map(i => i.name)")
    assert names[1:] == [
        "Gaussian blur sigma=3 of Nuclei, fluorescence (2D)",
        "Gaussian blur sigma=1 of Nuclei, fluorescence (2D)",
    ]
    await shot(page, "blur")
    app.assert_offline()


async def test_python_plugins_show_messages_and_progress_in_the_page(app: Recorded):
    page = app.page
    await page.get_by_test_id("plugin-hello").click()
    await page.get_by_test_id("op-show").get_by_test_id("input-text").fill("hi from a kernel")
    await run_op(page, "hello", "show")
    await expect(page.get_by_test_id("toast").filter(has_text="hi from a kernel")).to_be_visible()
    await page.get_by_test_id("plugin-measure-demo").click()
    await page.get_by_test_id("op-slow").get_by_test_id("input-steps").fill("8")
    await page.get_by_test_id("run-slow").click()
    await expect(page.get_by_test_id("run-progress")).to_be_visible(timeout=60_000)
    await page.wait_for_function(
        "() => Object.values(window.__scopeflow.state().progress).some(p => p > 0)", timeout=60_000
    )
    await expect(page.get_by_test_id("op-slow").get_by_test_id("run-done")).to_be_visible(timeout=60_000)
    app.assert_offline()


async def test_errors_show_where_they_happened(app: Recorded):
    page = app.page
    await page.get_by_test_id("plugin-hello").click()
    await page.get_by_test_id("run-fail").click()
    error = page.get_by_test_id("op-fail").get_by_test_id("run-error")
    await expect(error).to_contain_text("boom", timeout=60_000)
    await expect(error.locator("summary")).to_have_text("traceback")
    await page.get_by_test_id("op-add").get_by_test_id("run-add").click()  # a and b left empty
    await expect(page.get_by_test_id("op-add").locator(".sf-error")).to_contain_text("a: a value is needed")
    app.assert_offline()


async def test_labels_measured_into_a_sortable_table(app: Recorded):
    page = app.page
    await open_sample(page, "nuclei-2d-labels")
    await run_op(page, "measure-demo", "sizes")
    await expect(page.get_by_test_id("table-view")).to_be_visible()
    labels, _ = data.load_sample("nuclei-2d-labels")
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    rows = page.get_by_test_id("table-view").locator("tbody tr")
    await expect(rows).to_have_count(len(ids))
    await page.get_by_test_id("table-view").get_by_role("columnheader", name="area").click()
    await page.get_by_test_id("table-view").get_by_role("columnheader", name="area").click()  # descending
    first = await rows.first.locator("td").all_inner_texts()
    assert int(first[1]) == counts.max()
    async with page.expect_download() as download_info:
        await page.get_by_test_id("table-csv").click()
    csv = Path(await (await download_info.value).path()).read_text()
    assert csv.splitlines()[0] == "label,area" and len(csv.splitlines()) == len(ids) + 1
    await shot(page, "table")
    app.assert_offline()


async def test_files_open_by_picking_and_download_as_tiff(app: Recorded, tmp_path: Path):
    page = app.page
    image = (np.arange(40 * 30, dtype=np.uint16) * 7).reshape(2, 20, 30)
    path = tmp_path / "two-channels.tif"
    data.write_image(image, path, axes="cyx")
    await page.get_by_test_id("file-input").set_input_files(str(path))
    item = page.get_by_test_id("image-list").locator("li", has_text="two-channels.tif")
    await expect(item).to_contain_text("2\u00d720\u00d730 uint16 cyx")
    async with page.expect_download() as download_info:
        await item.get_by_role("button", name="TIFF").click()
    back, axes = data.read_image(Path(await (await download_info.value).path()))
    assert axes == "cyx" and np.array_equal(back, image)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00not really a tiff")
    await page.get_by_test_id("file-input").set_input_files(str(broken))
    await expect(
        page.get_by_test_id("toast").filter(has_text="broken.tif could not be opened")
    ).to_be_visible()
    app.assert_offline()


SHARED_PLUGIN = '''"""Doubles a number. Shared by a colleague."""
from pathlib import Path

from scopeflow import op

PLUGIN = {"id": "shared-doubler", "name": "Shared doubler", "version": "1.2.0",
          "description": "Doubles numbers; a plugin installed from a link.", "requirements": ["numpy"]}

Path(MARKER).write_text("ran")


@op
def double(x: float = 1.0) -> float:
    """Return 2x."""
    return 2 * x
'''


async def test_a_plugin_shared_by_url_installs_only_after_trust(
    app: Recorded, file_server, web_hub: HubProcess
):
    page = app.page
    base, folder = file_server
    marker = folder / "ran.txt"
    (folder / "doubler.py").write_text(SHARED_PLUGIN.replace("MARKER", repr(str(marker))))
    link = f"{web_hub.url}/?plugin={base}/doubler.py"
    await page.goto(link)
    dialog = page.get_by_test_id("install-dialog")
    await expect(dialog).to_contain_text("your own network")  # a loopback address: fetched only on request
    await dialog.get_by_test_id("install-preview").click()
    card = dialog.get_by_test_id("install-preview-card")
    await expect(card).to_contain_text("Shared doubler")
    await expect(card).to_contain_text("1.2.0")
    await expect(card).to_contain_text("Doubles numbers")
    await expect(card).to_contain_text("numpy")
    await shot(page, "install")
    assert not marker.exists(), "plugin code ran before the user trusted it"
    assert "shared-doubler" not in [p["id"] for p in web_hub.json("/api/plugins")["plugins"]]
    await dialog.get_by_test_id("install-confirm").click()
    await expect(dialog).to_be_hidden(timeout=30_000)
    assert "plugin=" not in page.url
    await expect(page.get_by_test_id("connection")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    await page.get_by_test_id("op-double").get_by_test_id("input-x").fill("21")
    await run_op(page, "shared-doubler", "double")
    await expect(page.get_by_test_id("op-double").get_by_test_id("run-done")).to_contain_text("42")
    assert marker.exists()
    share = page.get_by_test_id("plugin-share")
    shared = urlsplit(await share.get_attribute("data-link") or "")
    assert parse_qs(shared.query)["plugin"] == [f"{base}/doubler.py"]
    assert f"{shared.scheme}://{shared.netloc}" == web_hub.url
    app.assert_offline()


async def test_a_plugin_that_changed_since_its_preview_is_not_installed(app: Recorded, file_server):
    page = app.page
    base, folder = file_server
    source = SHARED_PLUGIN.replace('Path(MARKER).write_text("ran")', "").replace("shared-doubler", "changing")
    (folder / "changing.py").write_text(source)
    await page.get_by_role("button", name="Install plugin from URL").click()
    dialog = page.get_by_test_id("install-dialog")
    await dialog.get_by_test_id("install-url").fill(f"{base}/changing.py")
    await dialog.get_by_test_id("install-preview").click()
    await expect(dialog.get_by_test_id("install-preview-card")).to_be_visible()
    (folder / "changing.py").write_text(source.replace("return 2 * x", "return 3 * x"))
    await dialog.get_by_test_id("install-confirm").click()
    await expect(dialog.get_by_test_id("install-error")).to_contain_text("changed since it was previewed")
    app.assert_offline()


async def test_a_window_plugin_runs_sandboxed_and_calls_other_plugins(app: Recorded):
    page = app.page
    await page.get_by_test_id("plugin-greeter").click()
    await page.get_by_test_id("open-window").click()
    frame_element = page.locator("iframe.sf-window-frame")
    await expect(frame_element).to_have_attribute("sandbox", "allow-scripts")
    frame = page.frame_locator("iframe.sf-window-frame")
    await expect(frame.locator("#out")).to_have_text("Hello, window!", timeout=60_000)
    await expect(page.get_by_test_id("toast").filter(has_text="greeter: Hello, window!")).to_be_visible()
    # no same-origin: the window cannot reach the app's page, its storage or its token
    inner = next(f for f in page.frames if f != page.main_frame)
    reach = await inner.evaluate(
        "() => { try { return parent.document.title } catch (e) { return 'blocked' } }"
    )
    assert reach == "blocked"
    await shot(page, "window")
    app.assert_offline()


async def test_the_app_page_runs_no_injected_script_and_reaches_no_other_origin(app: Recorded):
    elsewhere = f"http://127.0.0.1:{free_port()}/"
    seen = await app.page.evaluate(
        """async (elsewhere) => {
            const violations = [];
            const record = (e) => violations.push(e.effectiveDirective);
            document.addEventListener("securitypolicyviolation", record);
            const script = document.createElement("script");
            script.textContent = "window.__injected = true";
            document.body.appendChild(script);
            let fetched = "sent";
            try { await fetch(elsewhere); } catch (e) { fetched = "refused"; }
            await new Promise((resolve) => setTimeout(resolve, 300));
            return { injected: window.__injected === true, fetched, violations };
        }""",
        elsewhere,
    )
    assert not seen["injected"]
    assert seen["fetched"] == "refused"
    assert {"script-src-elem", "connect-src"} <= set(seen["violations"]), seen
    assert any("Content Security Policy" in e for e in app.errors)  # the recorder sees violations too


async def open_greeter(page: Page) -> Frame:
    await page.get_by_test_id("plugin-greeter").click()
    await page.get_by_test_id("open-window").click()
    await expect(page.frame_locator("iframe.sf-window-frame").locator("#out")).to_have_text(
        "Hello, window!", timeout=60_000
    )
    return next(f for f in page.frames if f != page.main_frame)


async def test_a_window_frame_never_gets_the_token_nor_the_hub(app: Recorded, web_hub: HubProcess):
    page = app.page
    # every message any window frame receives, kept in the frame
    await page.context.add_init_script(
        """if (location.pathname === "/window.html") {
            const received = (window.__received = []);
            addEventListener("message", (e) => {
                try { received.push(JSON.stringify(e.data)); } catch (err) { received.push(String(e.data)); }
            });
        }"""
    )
    inner = await open_greeter(page)
    assert urlsplit(inner.url).path == "/window.html" and not urlsplit(inner.url).query
    seen = await inner.evaluate(
        """async () => {
            let hub = "answered";
            try { await fetch("/api/plugins"); } catch (e) { hub = "refused"; }
            let storage;
            try { storage = sessionStorage.length; } catch (e) { storage = "blocked"; }
            return { hub, storage, origin: self.origin, received: window.__received,
                     page: document.documentElement.outerHTML };
        }"""
    )
    assert seen["hub"] == "refused" and seen["storage"] == "blocked" and seen["origin"] == "null"
    assert any("connect-src 'none'" in e for e in app.errors)  # refused by the frame's policy, before CORS
    assert any("scopeflow/window-parts" in m for m in seen["received"])
    for text in [*seen["received"], seen["page"]]:
        assert web_hub.token not in text


async def test_a_window_frame_takes_its_parts_once_and_only_from_the_app(app: Recorded):
    page = app.page
    inner = await open_greeter(page)
    rpc = await inner.evaluate("new URL(document.querySelector('script[src*=imjoy-rpc]').src).pathname")
    parts = {"type": "scopeflow/window-parts", "name": "x", "style": "", "script": "", "rpc": rpc}
    post_from_app = "([id, parts]) => document.getElementById(id).contentWindow.postMessage(parts, '*')"
    post_from_itself = "(parts) => window.postMessage(parts, '*')"
    # a running window: more parts, from the app or from itself, change nothing
    await page.evaluate("document.querySelector('iframe.sf-window-frame').id = 'greeter'")
    await page.evaluate(post_from_app, ["greeter", {**parts, "html": '<p id="again">x</p>'}])
    await inner.evaluate(post_from_itself, {**parts, "html": '<p id="own">x</p>'})
    # a fresh frame: its own message first (not the app's: ignored), then the app's (taken)
    await page.evaluate(
        """() => new Promise((resolve) => {
            const frame = document.createElement("iframe");
            frame.setAttribute("sandbox", "allow-scripts");
            frame.id = "probe";
            frame.addEventListener("load", resolve, { once: true });
            frame.src = "/window.html";
            document.body.appendChild(frame);
        })"""
    )
    probe = await (await page.wait_for_selector("#probe")).content_frame()
    assert probe is not None
    await probe.evaluate(post_from_itself, {**parts, "html": '<p id="own">x</p>'})
    await asyncio.sleep(0.5)
    await page.evaluate(post_from_app, ["probe", {**parts, "html": '<p id="taken">x</p>'}])
    await probe.wait_for_selector("#taken", state="attached")
    assert await probe.evaluate("document.getElementById('own')") is None
    found = await inner.evaluate("['again', 'own'].map((id) => document.getElementById(id) !== null)")
    assert found == [False, False]
    assert await inner.evaluate("document.getElementById('out').textContent") == "Hello, window!"
    app.assert_offline()


async def test_the_app_reconnects_after_a_hub_restart(browser: Browser, tmp_path: Path):
    port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_hub(tmp_path / "a", port=port)
    context = await browser.new_context()
    page = await context.new_page()
    recorded = Recorded(page)
    try:
        await page.goto(f"{first.url}/?token={first.token}")
        state = page.get_by_test_id("connection")
        await expect(state).to_have_attribute("data-state", "connected", timeout=30_000)
        stop_hub(first)
        await expect(state).to_have_attribute("data-state", "reconnecting", timeout=30_000)
        await asyncio.sleep(4)  # several failed attempts: none of them may linger and hold the app's id
        second = start_hub(tmp_path / "b", port=port)
        try:
            await expect(state).to_have_attribute("data-state", "connected", timeout=60_000)
            await run_op(page, "hello", "hello")
            await expect(page.get_by_test_id("op-hello").get_by_test_id("run-done")).to_contain_text(
                "Hello, world!"
            )
            await asyncio.sleep(2)
            assert "already connected" not in second.log()
            clients = json.loads(second.request("/api/hub")[1])["clients"]
            assert len([c for c in clients if c.startswith("app-")]) == 1
        finally:
            stop_hub(second)
        recorded.assert_offline()
    finally:
        await context.close()


async def test_plugins_ask_through_dialogs_and_send_plots(app: Recorded):
    page = app.page
    await page.get_by_test_id("plugin-measure-demo").click()
    await page.get_by_test_id("run-ask").click()
    dialog = page.get_by_test_id("dialog")
    await expect(dialog).to_contain_text("Your name?", timeout=60_000)
    await expect(dialog.locator("input")).to_have_value("Ada")
    await dialog.locator("input").fill("Grace")
    await dialog.get_by_test_id("dialog-ok").click()
    await expect(page.get_by_test_id("op-ask").get_by_test_id("run-done")).to_contain_text("Hello, Grace")
    await page.get_by_test_id("op-curve").get_by_test_id("input-points").fill("7")
    await run_op(page, "measure-demo", "curve")
    plot = page.get_by_test_id("plot")
    await expect(plot).to_contain_text("demo curve")
    await expect(plot.locator("polyline")).to_have_count(2)
    app.assert_offline()


async def test_a_plugin_asks_the_tab_that_ran_it_not_the_newest(browser: Browser, web_hub: HubProcess):
    """Two tabs of the app: a plugin's prompt opens in the tab whose op call made it."""
    first_context, first = await open_app(browser, web_hub)
    second_context, second = await open_app(browser, web_hub)  # the newest tab
    try:
        page = first.page
        await page.get_by_test_id("plugin-measure-demo").click()
        await page.get_by_test_id("run-ask").click()
        dialog = page.get_by_test_id("dialog")
        await expect(dialog).to_contain_text("Your name?", timeout=60_000)
        await expect(second.page.get_by_test_id("dialog")).to_have_count(0)
        await dialog.locator("input").fill("Lin")
        await dialog.get_by_test_id("dialog-ok").click()
        await expect(page.get_by_test_id("op-ask").get_by_test_id("run-done")).to_contain_text("Hello, Lin")
        await expect(second.page.get_by_test_id("dialog")).to_have_count(0)
        first.assert_offline()
    finally:
        await second_context.close()
        await first_context.close()


async def test_a_large_uint16_image_shows_fast_with_channels_and_labels(app: Recorded):
    page = app.page
    ms = await page.evaluate(
        """async () => {
            const n = 2048, data = new Uint16Array(n * n);
            for (let i = 0; i < data.length; i++) data[i] = (i % n) * 16 + ((i / n) | 0);
            const t0 = performance.now();
            window.__scopeflow.addImage({id: "big", name: "big", data, shape: [n, n], dtype: "uint16",
                                         axes: "yx", kind: "image"});
            await new Promise((resolve) => {
                const shown = () => window.__scopeflowViewer && window.__scopeflowViewer.renderCount > 0;
                const wait = () => (shown() ? resolve() : setTimeout(wait, 5));
                wait();
            });
            await new Promise((resolve) => requestAnimationFrame(() => resolve()));
            return performance.now() - t0;
        }"""
    )
    assert ms < 3000, f"a 2048x2048 uint16 image took {ms:.0f} ms to show"  # about 0.2 s measured
    await open_sample(page, "synthetic-cells")
    await expect(page.get_by_test_id("viewer-z")).to_be_visible()
    await expect(page.get_by_test_id("viewer-channel-1")).to_be_visible()
    await open_sample(page, "nuclei-2d")
    await open_sample(page, "nuclei-2d-labels")  # same size as the image in view: becomes its overlay
    state = await page.evaluate(
        "(() => { const s = window.__scopeflow.state(); return [s.activeImage, s.overlay] })()"
    )
    assert state[1] is not None and state[0] != state[1]
    labels, _ = data.load_sample("nuclei-2d-labels")
    y, x = np.argwhere(labels > 0)[len(np.argwhere(labels > 0)) // 2]
    await page.get_by_test_id("viewer-opacity").fill("1")
    inside = await page.evaluate(f"window.__scopeflowViewer.renderedPixel({x}, {y})")
    outside_point = np.argwhere(labels == 0)[0]
    outside = await page.evaluate(
        f"window.__scopeflowViewer.renderedPixel({outside_point[1]}, {outside_point[0]})"
    )
    assert inside[:3] != [inside[0]] * 3, "a labelled pixel is drawn in colour"
    assert outside[0] == outside[1] == outside[2], "background stays grey"
    await shot(page, "overlay")
    app.assert_offline()


async def test_a_hostile_window_cannot_reach_the_app_through_the_rpc(app: Recorded):
    page = app.page
    title = await page.title()
    await page.get_by_test_id("plugin-escape").click()
    await page.get_by_test_id("open-window").click()
    frame = page.frame_locator("iframe.sf-window-frame")
    await expect(frame.locator("#out")).to_contain_text("refused", timeout=60_000)
    assert await page.title() == title
    assert await page.evaluate("window.__pwned === undefined")
    await expect(page.get_by_test_id("log")).to_contain_text("showMessage.constructor")
    app.assert_offline()


async def test_large_images_travel_out_of_band_both_ways(app: Recorded, web_hub: HubProcess):
    page = app.page
    await page.evaluate(
        """() => {
            const n = 1024, data = new Uint16Array(n * n);
            for (let i = 0; i < data.length; i++) data[i] = ((i % n) * 37 + ((i / n) | 0) * 11) % 4096;
            window.__scopeflow.addImage({id: "large", name: "large", data, shape: [n, n], dtype: "uint16",
                                         axes: "yx", kind: "image"});
        }"""
    )
    await page.get_by_test_id("plugin-gaussian").click()
    await page.get_by_test_id("input-sigma").fill("1.5")
    await run_op(page, "gaussian", "blur")
    transfers = [u for u in app.urls if "/api/transfer/" in u]
    assert transfers == [], f"arrays up to 64 MiB travel on the websocket, not over HTTP: {transfers}"
    moved = await page.evaluate("() => window.__scopeflowArrays")
    assert moved["socketUploaded"] == 1024 * 1024 * 2 and moved["socketDownloaded"] == 1024 * 1024 * 4, moved
    got = await page.evaluate(
        """() => {
            const s = window.__scopeflow.state();
            const img = s.images.find(i => i.id === s.activeImage);
            return [img.shape, img.dtype, Array.from(img.data.subarray(0, 4096))];
        }"""
    )
    from scipy.ndimage import gaussian_filter

    n = 1024
    index = np.arange(n * n)
    source = (((index % n) * 37 + (index // n) * 11) % 4096).astype(np.uint16).reshape(n, n)
    expected = gaussian_filter(source.astype(np.float32), 1.5)
    assert got[0] == [n, n] and got[1] == "float32"
    np.testing.assert_allclose(np.array(got[2], np.float32), expected.ravel()[:4096], rtol=1e-4, atol=1e-3)
    assert json.loads(web_hub.request("/api/transfer")[1]).get("held", 0) == 0  # every array was consumed
    app.assert_offline()
