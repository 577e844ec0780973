"""The workflow editor of the web app, in real headless Chromium against a real hub and real kernels.

Workflows are built with the mouse (drag from the palette, connect handles), run through the hub's
``workflows`` service, shared as links, saved with versions. Screenshots: artifacts/web-workflow-*.png.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from browser import Recorded, needs_chromium, open_app, shot
from conftest import ARTIFACTS, ROOT, HubProcess, start_hub, stop_hub
from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.images import formats as data

TESTS = Path(__file__).parents[1]
DONE = re.compile("^(done|cached)$")


class _AnyPosition:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and set(other) == {"x", "y"}


ANY_POSITION = _AnyPosition()
pytestmark = [needs_chromium]


@pytest.fixture(scope="module")
def wf_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    if not (ROOT / "web" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run bash scripts/setup")
    running = start_hub(tmp_path_factory.mktemp("wf-web"), "--plugins-dir", str(TESTS / "workflow_plugins"))
    yield running
    stop_hub(running)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(running.log_path, ARTIFACTS / "web-workflow-hub.log")


@pytest.fixture
async def editor(browser: Browser, wf_hub: HubProcess) -> AsyncIterator[Recorded]:
    """The app with the Workflow tab open on an empty canvas."""
    context, recorded = await open_app(browser, wf_hub)
    await open_editor(recorded.page)
    yield recorded
    await context.close()


async def open_editor(page: Page) -> None:
    await page.get_by_test_id("tab-workflow").click()
    await expect(page.get_by_test_id("wf-palette")).to_be_visible(timeout=30_000)


async def drop(page: Page, item: str, x: float, y: float) -> None:
    """Drag a palette entry onto the canvas at (x, y) from its top-left corner."""
    canvas = page.get_by_test_id("wf-canvas")
    await page.get_by_test_id(item).drag_to(canvas, target_position={"x": x, "y": y})


async def wire(page: Page, source: str, target: str) -> None:
    """Press on one handle, move to the other with the mouse, release."""
    a = await page.get_by_test_id(source).bounding_box()
    b = await page.get_by_test_id(target).bounding_box()
    assert a and b, f"handles {source} / {target} not on screen"
    await page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    await page.mouse.up()


async def edges(page: Page) -> int:
    return await page.locator(".react-flow__edge").count()


async def build_blur(page: Page) -> None:
    """Sample image → Gaussian blur → output, all with the mouse."""
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-gaussian-blur", 280, 120)
    await drop(page, "wf-add-output", 540, 140)
    await expect(page.get_by_test_id("wf-node-blur")).to_be_visible()
    await wire(page, "wf-out-input-image", "wf-in-blur-image")
    await wire(page, "wf-out-blur-result", "wf-in-output-result")
    await expect(page.locator(".react-flow__edge")).to_have_count(2)


async def viewed_image(page: Page) -> np.ndarray:
    got = await page.evaluate(
        """() => {
            const s = window.__scopeflow.state();
            const img = s.images.find(i => i.id === s.activeImage);
            return {shape: img.shape, data: Array.from(img.data)};
        }"""
    )
    return np.array(got["data"], np.float32).reshape(got["shape"])


async def test_the_empty_editor_says_what_to_do_and_loads_lazily(browser: Browser, wf_hub: HubProcess):
    context, app = await open_app(browser, wf_hub)
    page = app.page
    chunks = [u for u in app.urls if "WorkflowView" in u]
    assert not chunks, f"the editor is part of the first paint: {chunks}"
    await open_editor(page)
    assert [u for u in app.urls if "WorkflowView" in u], "the editor's code was not loaded on demand"
    empty = page.get_by_test_id("wf-empty")
    await expect(empty).to_contain_text("Drag an operation")
    await expect(empty.get_by_test_id("wf-empty-gallery")).to_be_visible()
    palette = page.get_by_test_id("wf-palette")
    for entry in ("gaussian-blur", "measure-regions", "hello-add", "wf-ops-boom"):
        await expect(palette.get_by_test_id(f"wf-palette-{entry}")).to_be_visible()
    await page.get_by_test_id("wf-palette-search").fill("blur")
    entries = palette.locator("[data-testid^=wf-palette-]:not([data-testid=wf-palette-search])")
    await expect(entries).to_have_count(1)
    await page.get_by_test_id("wf-palette-search").fill("")
    await shot(page, "workflow-empty")
    app.assert_offline()
    await context.close()


async def test_nodes_connect_by_type_and_refusals_say_why(editor: Recorded):
    page = editor.page
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-gaussian-blur", 290, 60)
    await drop(page, "wf-palette-wf-ops-regions", 290, 330)
    await wire(page, "wf-out-input-image", "wf-in-blur-image")
    assert await edges(page) == 1
    # a yx image into a cyx port: refused, with the reason the hub's validator gives too
    await wire(page, "wf-out-blur-result", "wf-in-regions-image")
    notice = page.get_by_test_id("wf-notice")
    await expect(notice).to_contain_text("blur gives yx, regions expects cyx")
    assert await edges(page) == 1
    # a table into an array port: refused too
    await wire(page, "wf-out-regions-result", "wf-in-blur-image")
    await expect(notice).to_contain_text("regions gives a table, blur expects an array")
    assert await edges(page) == 1
    # a port takes one edge: a second one replaces the first
    await drop(page, "wf-add-image-input", 30, 330)
    await wire(page, "wf-out-input-image-2", "wf-in-blur-image")
    await expect(notice).to_contain_text("replaced the earlier one")
    assert await edges(page) == 1
    # the handles say what they carry
    blur = page.get_by_test_id("wf-node-blur")
    await expect(blur).to_contain_text("image · yx")
    await expect(blur.get_by_test_id("wf-param-sigma")).to_have_value("2")
    await shot(page, "workflow-refused")
    # Run checks first, and shows each problem on its node: nothing runs
    await page.get_by_test_id("wf-run").click()
    problems = page.get_by_test_id("wf-node-regions").get_by_test_id("wf-node-problems")
    await expect(problems).to_contain_text("input image is required")
    await expect(page.get_by_test_id("wf-notice")).to_contain_text("Not run: 1 problem")
    await expect(page.get_by_test_id("wf-node-blur")).to_have_attribute("data-state", "")
    editor.assert_offline()


async def test_undo_redo_copy_paste_and_delete(editor: Recorded):
    page = editor.page
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-gaussian-blur", 290, 120)
    await wire(page, "wf-out-input-image", "wf-in-blur-image")
    nodes = page.locator(".react-flow__node")
    await expect(nodes).to_have_count(2)
    sigma = page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma")
    await sigma.fill("4.5")
    await page.get_by_test_id("wf-canvas").click(position={"x": 420, "y": 520})  # the empty pane: focus
    await page.keyboard.press("Control+z")  # the sigma typed
    await expect(sigma).to_have_value("2")
    await page.keyboard.press("Control+z")  # the edge
    await expect(page.locator(".react-flow__edge")).to_have_count(0)
    await page.keyboard.press("Control+z")  # the blur node
    await expect(nodes).to_have_count(1)
    await page.keyboard.press("Control+Shift+z")
    await page.keyboard.press("Control+y")
    await expect(page.locator(".react-flow__edge")).to_have_count(1)
    await page.get_by_test_id("wf-redo").click()
    await expect(page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma")).to_have_value("4.5")
    await expect(page.get_by_test_id("wf-redo")).to_be_disabled()
    # copy both nodes with their edge, paste: a second, connected pair with new ids and names
    await page.keyboard.press("Control+a")
    await page.keyboard.press("Control+c")
    await page.keyboard.press("Control+v")
    await expect(nodes).to_have_count(4)
    await expect(page.locator(".react-flow__edge")).to_have_count(2)
    await expect(page.get_by_test_id("wf-node-blur-2")).to_be_visible()
    await expect(page.get_by_test_id("wf-input-image-2")).to_be_visible()
    # the pasted nodes are selected: Delete removes them (and their edge); undo brings them back
    await page.keyboard.press("Delete")
    await expect(nodes).to_have_count(2)
    await expect(page.locator(".react-flow__edge")).to_have_count(1)
    await page.get_by_test_id("wf-undo").click()
    await expect(nodes).to_have_count(4)
    doc = await page.evaluate("window.__scopeflowWorkflow.doc()")
    assert [n["id"] for n in doc["nodes"]] == ["blur", "blur-2"]
    assert doc["nodes"][1]["params"] == {"sigma": 4.5}
    assert {json.dumps(e, sort_keys=True) for e in doc["edges"]} == {
        json.dumps({"from": ["$input", "image"], "to": ["blur", "image"]}, sort_keys=True),
        json.dumps({"from": ["$input", "image-2"], "to": ["blur-2", "image"]}, sort_keys=True),
    }
    # a double click renames a node; Delete while typing edits the name, not the graph; undo restores it
    blur = page.get_by_test_id("wf-node-blur")
    await blur.get_by_test_id("wf-node-title").dblclick()
    await blur.get_by_test_id("wf-node-rename").fill("Smooth x")
    await page.keyboard.press("Backspace")
    await page.keyboard.press("Delete")
    await page.keyboard.press("Enter")
    await expect(blur.get_by_test_id("wf-node-title")).to_have_text("Smooth")
    await expect(nodes).to_have_count(4)
    doc = await page.evaluate("window.__scopeflowWorkflow.doc()")
    assert doc["nodes"][0]["label"] == "Smooth"
    await page.get_by_test_id("wf-undo").click()
    await expect(blur.get_by_test_id("wf-node-title")).to_have_text("Gaussian blur")
    editor.assert_offline()


async def test_a_workflow_runs_caches_and_shows_its_result(editor: Recorded, wf_hub: HubProcess):
    page = editor.page
    await build_blur(page)
    await page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma").fill("3")
    await page.get_by_test_id("wf-run").click()
    blur = page.get_by_test_id("wf-node-blur")
    await expect(blur).to_have_attribute("data-state", "done", timeout=120_000)
    await expect(page.get_by_test_id("wf-run-state")).to_have_attribute("data-state", "done", timeout=30_000)
    await expect(blur).to_contain_text("512\u00d7512 float32")
    await shot(page, "workflow-done")
    # the same again: every node comes from the cache
    await page.get_by_test_id("wf-run").click()
    await expect(blur).to_have_attribute("data-state", "cached", timeout=60_000)
    await expect(blur.get_by_test_id("wf-node-state")).to_have_text("cached")
    # a click on the done node shows its result in the viewer: the pixels of a real Gaussian blur
    await blur.locator(".sf-wf-head").click()
    await expect(page.get_by_test_id("tab-viewer")).to_have_class("sf-tab sf-selected", timeout=30_000)
    from scipy.ndimage import gaussian_filter

    sample, _ = data.load_sample("nuclei-2d")
    np.testing.assert_allclose(
        await viewed_image(page), gaussian_filter(sample.astype(np.float32), 3), rtol=1e-4, atol=1e-3
    )
    editor.assert_offline()


async def test_a_shared_link_opens_the_workflow_in_a_fresh_page(
    editor: Recorded, browser: Browser, wf_hub: HubProcess
):
    page = editor.page
    await build_blur(page)
    await page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma").fill("1.5")
    await page.get_by_test_id("wf-title").fill("Smooth nuclei")
    await page.get_by_test_id("wf-about").click()
    await page.get_by_test_id("wf-description").fill("Blur *before* counting.")
    await page.get_by_test_id("wf-run").click()
    await expect(page.get_by_test_id("wf-node-blur")).to_have_attribute("data-state", DONE, timeout=120_000)
    await page.get_by_test_id("wf-node-blur").locator(".sf-wf-head").click()
    await expect(page.get_by_test_id("tab-viewer")).to_have_class("sf-tab sf-selected", timeout=30_000)
    here = await viewed_image(page)
    await open_editor(page)
    await page.get_by_test_id("wf-share").click()
    # the link is made asynchronously (compression): wait for it
    await expect(page.get_by_test_id("wf-share")).to_have_attribute("data-link", re.compile("#workflow="))
    link = await page.get_by_test_id("wf-share").get_attribute("data-link")
    assert link and "#workflow=" in link and link.startswith(wf_hub.url)
    sent = await page.evaluate("window.__scopeflowWorkflow.doc()")
    assert sent["description"] == "Blur *before* counting."
    # someone else opens it: a new browser context, the token given by hand
    context, other = await open_app(browser, wf_hub, "/" + link.split("/", 3)[3])
    there_page = other.page
    await expect(there_page.get_by_test_id("workflow-view")).to_be_visible(timeout=30_000)
    await expect(there_page.get_by_test_id("wf-title")).to_have_value("Smooth nuclei")
    assert "#workflow=" not in there_page.url  # opened once; a reload does not reopen it over edits
    assert await there_page.evaluate("window.__scopeflowWorkflow.doc()") == sent
    await expect(there_page.get_by_test_id("wf-pins")).to_have_count(0)  # same hub: the pins hold
    await there_page.get_by_test_id("wf-run").click()
    node = there_page.get_by_test_id("wf-node-blur")
    await expect(node).to_have_attribute("data-state", DONE, timeout=120_000)
    await node.locator(".sf-wf-head").click()
    await expect(there_page.get_by_test_id("tab-viewer")).to_have_class("sf-tab sf-selected", timeout=30_000)
    assert np.array_equal(await viewed_image(there_page), here)
    await shot(there_page, "workflow-shared")
    other.assert_offline()
    await context.close()
    editor.assert_offline()


async def assert_link_refused(browser: Browser, hub: HubProcess, fragment: str, reason: str) -> None:
    """The app opened at ``#workflow=fragment`` says ``reason``, opens nothing and forgets the link."""
    context, app = await open_app(browser, hub, "/#workflow=" + fragment)
    page = app.page
    await expect(page.get_by_test_id("wf-notice")).to_contain_text(reason, timeout=30_000)
    await expect(page.get_by_test_id("wf-empty")).to_be_visible()
    assert "#workflow=" not in page.url
    app.assert_offline()
    await context.close()


async def test_a_damaged_link_says_so(browser: Browser, wf_hub: HubProcess):
    await assert_link_refused(browser, wf_hub, "bm90IGRlZmxhdGVk", "the workflow link is damaged")


async def test_a_link_that_unpacks_to_gigabytes_is_refused(browser: Browser, wf_hub: HubProcess):
    """A small link whose deflate stream unpacks without end (a "zip bomb") is stopped at a few MiB."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as the app's links
    chunk = b" " * (1 << 20)
    bomb = b"".join(squeeze.compress(chunk) for _ in range(256)) + squeeze.flush()  # 256 MiB of spaces
    fragment = base64.urlsafe_b64encode(bomb).decode().rstrip("=")
    assert len(fragment) < 400_000
    await assert_link_refused(browser, wf_hub, fragment, "unpacks to more than 4 MiB")


async def save_as(page: Page, name: str) -> None:
    await page.get_by_test_id("wf-save").click()
    dialog = page.get_by_test_id("dialog")
    await dialog.locator("input").fill(name)
    await dialog.get_by_test_id("dialog-ok").click()
    await expect(page.get_by_test_id("wf-notice")).to_contain_text(f'Saved as "{name}"')


async def test_saved_versions_are_kept_and_an_earlier_one_loads(editor: Recorded, wf_hub: HubProcess):
    page = editor.page
    await build_blur(page)
    await save_as(page, "smooth")
    sigma = page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma")
    await sigma.fill("7")
    await save_as(page, "smooth")
    await expect(page.get_by_test_id("wf-notice")).to_contain_text("version 2")
    saved = wf_hub.json("/api/workflows/smooth")
    assert saved["nodes"][0]["params"] == {"sigma": 7}
    gaussian = next(p for p in wf_hub.json("/api/plugins")["plugins"] if p["id"] == "gaussian")
    pin = {"version": gaussian["version"], "sha256": gaussian["sha256"], "builtin": True, "url": None}
    saved_pin = dict(saved["plugins"]["gaussian"])
    environment = saved_pin.pop("environment", None)  # once the plugin has started: what scipy resolved to
    assert saved_pin == pin and set(saved["plugins"]) == {"gaussian"}
    assert environment in (None, (gaussian["status"]["environment"] or {}).get("packages"))
    await page.get_by_test_id("wf-open").click()
    library = page.get_by_test_id("wf-library")
    row = library.get_by_test_id("wf-saved-smooth")
    await expect(row).to_contain_text("2 versions")
    await row.get_by_test_id("wf-saved-versions").click()
    await shot(page, "workflow-versions")
    await row.get_by_test_id("wf-version-1").click()
    await expect(library).to_be_hidden()
    await expect(page.get_by_test_id("wf-node-blur").get_by_test_id("wf-param-sigma")).to_have_value("2")
    editor.assert_offline()


async def test_a_failing_node_shows_its_traceback(editor: Recorded):
    page = editor.page
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-wf-ops-boom", 290, 120)
    await wire(page, "wf-out-input-image", "wf-in-boom-image")
    await page.get_by_test_id("wf-node-boom").get_by_test_id("wf-param-message").fill("no nuclei here")
    await page.get_by_test_id("wf-run").click()
    node = page.get_by_test_id("wf-node-boom")
    await expect(node).to_have_attribute("data-state", "error", timeout=120_000)
    error = node.get_by_test_id("wf-node-error")
    await expect(error.locator("summary")).to_contain_text("no nuclei here")
    trace = error.locator("pre")
    await expect(trace).to_be_hidden()  # folded
    await error.locator("summary").click()
    await expect(trace).to_contain_text("Traceback")
    await expect(page.get_by_test_id("wf-run-state")).to_have_attribute("data-state", "error")
    await shot(page, "workflow-error")
    editor.assert_offline()


async def test_an_example_from_the_gallery_opens_and_runs(editor: Recorded):
    page = editor.page
    await page.get_by_test_id("wf-empty-gallery").click()
    library = page.get_by_test_id("wf-library")
    example = library.get_by_test_id("wf-gallery-smooth-threshold-measure")
    await expect(example).to_contain_text("Smooth, threshold, measure")
    await shot(page, "workflow-gallery")
    await example.get_by_test_id("wf-gallery-open").click()
    await expect(library).to_be_hidden()
    await expect(page.get_by_test_id("wf-title")).to_have_value("Smooth, threshold, measure")
    await expect(page.get_by_test_id("wf-empty")).to_have_count(0)
    await expect(page.get_by_test_id("wf-pins")).to_have_count(0)  # made with the plugins this hub has
    await page.get_by_test_id("wf-run").click()
    measure = page.get_by_test_id("wf-node-measure")
    await expect(measure).to_have_attribute("data-state", DONE, timeout=180_000)
    for node in ("smooth", "segment"):
        await expect(page.get_by_test_id(f"wf-node-{node}")).to_have_attribute("data-state", DONE)
    await shot(page, "workflow-example")
    # the segmentation opens as labels, the measurements as a table
    await page.get_by_test_id("wf-node-segment").locator(".sf-wf-head").click()
    await page.wait_for_function("() => window.__scopeflow.state().images.some(i => i.kind === 'labels')")
    await page.get_by_test_id("tab-workflow").click()
    await measure.locator(".sf-wf-head").click()
    await expect(page.get_by_test_id("table-view")).to_be_visible(timeout=30_000)
    assert await page.get_by_test_id("table-view").locator("tbody tr").count() > 10
    editor.assert_offline()


async def test_progress_shows_and_a_run_can_be_cancelled(editor: Recorded):
    page = editor.page
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-wf-ops-progress", 290, 120)
    await wire(page, "wf-out-input-image", "wf-in-progress-image")
    node = page.get_by_test_id("wf-node-progress")
    await node.get_by_test_id("wf-param-steps").fill("40")
    await node.get_by_test_id("wf-param-delay").fill("0.5")
    await page.get_by_test_id("wf-run").click()
    await expect(node).to_have_attribute("data-state", "running", timeout=60_000)
    # the plugin's showProgress reaches the node as events (the run record has no progress)
    await page.wait_for_function(
        """() => { const n = window.__scopeflowWorkflow.state().nodeRuns.progress;
                   return n && n.progress > 0 && n.progress < 1 }""",
        timeout=60_000,
    )
    await expect(node.get_by_test_id("wf-progress-bar")).to_be_visible()
    await shot(page, "workflow-running")
    await page.get_by_test_id("wf-cancel").click()
    await expect(node).to_have_attribute("data-state", "cancelled", timeout=30_000)
    await expect(page.get_by_test_id("wf-run-state")).to_have_attribute("data-state", "cancelled")
    editor.assert_offline()


async def test_run_to_the_selected_node_runs_only_what_it_needs(editor: Recorded):
    page = editor.page
    await drop(page, "wf-add-image-input", 30, 140)
    await drop(page, "wf-palette-gaussian-blur", 290, 40)
    await drop(page, "wf-palette-wf-ops-boom", 290, 300)
    await wire(page, "wf-out-input-image", "wf-in-blur-image")
    await wire(page, "wf-out-input-image", "wf-in-boom-image")
    await page.get_by_test_id("wf-canvas").click(position={"x": 420, "y": 520})  # the empty pane
    await expect(page.get_by_test_id("wf-run-until")).to_be_disabled()  # nothing selected
    await page.get_by_test_id("wf-node-blur").locator(".sf-wf-head").click()
    await page.get_by_test_id("wf-run-until").click()
    await expect(page.get_by_test_id("wf-run-state")).to_have_attribute("data-state", "done", timeout=120_000)
    await expect(page.get_by_test_id("wf-node-blur")).to_have_attribute("data-state", DONE)
    await expect(page.get_by_test_id("wf-node-boom")).to_have_attribute("data-state", "")  # never ran
    editor.assert_offline()


async def test_a_workflow_link_is_fetched_after_asking_and_its_pins_are_checked(
    browser: Browser, wf_hub: HubProcess, file_server: tuple[str, Path]
):
    base, folder = file_server
    doc = json.loads((BUILTIN_PLUGINS / "workflows" / "smooth-threshold-measure.json").read_text())
    doc["title"] = "From a colleague"
    doc["plugins"]["gaussian"]["sha256"] = "0" * 64  # made with another gaussian
    (folder / "colleague.json").write_text(json.dumps(doc))
    context, app = await open_app(browser, wf_hub, f"/?workflow={base}/colleague.json")
    page = app.page
    dialog = page.get_by_test_id("dialog")
    await expect(dialog).to_contain_text("your own network")  # a loopback address: fetched only on request
    await dialog.get_by_test_id("dialog-ok").click()
    await expect(page.get_by_test_id("wf-title")).to_have_value("From a colleague", timeout=30_000)
    assert "workflow=" not in page.url
    pins = page.get_by_test_id("wf-pins")
    await expect(pins.get_by_test_id("wf-pin-gaussian")).to_have_attribute("data-state", "changed")
    await expect(pins.get_by_test_id("wf-pin-gaussian")).to_contain_text("gaussian changed")
    await shot(page, "workflow-pins")
    # "use pinned version": this hub never had that file, and says so
    await pins.get_by_test_id("wf-pin-gaussian").get_by_test_id("wf-pin-use").click()
    await expect(page.get_by_test_id("wf-notice")).to_contain_text("not kept on this hub")
    await pins.get_by_test_id("wf-pin-update").click()
    await expect(pins).to_have_count(0)
    installed = next(p for p in wf_hub.json("/api/plugins")["plugins"] if p["id"] == "gaussian")
    saved = await page.evaluate("window.__scopeflowWorkflow.doc()")
    assert saved["plugins"]["gaussian"]["sha256"] == installed["sha256"]
    app.assert_offline()
    await context.close()


async def test_export_and_import_as_a_file(editor: Recorded, tmp_path: Path):
    page = editor.page
    await build_blur(page)
    await page.get_by_test_id("wf-title").fill("To a file")
    async with page.expect_download() as download_info:
        await page.get_by_test_id("wf-export").click()
    download = await download_info.value
    assert download.suggested_filename == "to-a-file.json"
    exported = json.loads(Path(await download.path()).read_text())
    assert exported == await page.evaluate("window.__scopeflowWorkflow.doc()")
    assert exported["format"] == "scopeflow.workflow" and exported["version"] == 1
    assert exported["outputs"] == [{"name": "result", "from": ["blur", "result"], "position": ANY_POSITION}]
    await page.get_by_test_id("wf-new").click()
    await expect(page.get_by_test_id("wf-empty")).to_be_visible()
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    await page.get_by_test_id("wf-import-input").set_input_files(str(broken))
    await expect(page.get_by_test_id("wf-notice")).to_contain_text("broken.json could not be imported")
    await page.get_by_test_id("wf-import-input").set_input_files(str(await download.path()))
    await expect(page.get_by_test_id("wf-title")).to_have_value("To a file")
    assert await page.evaluate("window.__scopeflowWorkflow.doc()") == exported
    editor.assert_offline()


TRIPLER = '''"""Multiplies an image. Shared by a colleague."""
from pathlib import Path

from scopeflow import Image, op

PLUGIN = {"id": "ID", "name": "Tripler", "version": "VERSION", "description": "Multiplies images."}

Path(MARKER).write_text("ran")


@op
def triple(image: Image["yx"]) -> Image["yx"]:
    return image * FACTOR
'''


def tripler(plugin_id: str, version: str, factor: int, marker: Path) -> str:
    source = TRIPLER.replace("ID", plugin_id).replace("VERSION", version).replace("FACTOR", str(factor))
    return source.replace("MARKER", repr(str(marker)))


def tripler_doc(plugin_id: str, url: str, source: str) -> dict:
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": "Triple",
        "inputs": [{"name": "image", "kind": "ndarray", "default": {"sample": "nuclei-2d"}}],
        "nodes": [{"id": "triple", "plugin": plugin_id, "op": "triple", "params": {}}],
        "edges": [{"from": ["$input", "image"], "to": ["triple", "image"]}],
        "outputs": [{"name": "tripled", "from": ["triple", "result"]}],
        "plugins": {
            plugin_id: {
                "version": "1.0.0",
                "sha256": hashlib.sha256(source.encode()).hexdigest(),
                "builtin": False,
                "url": url,
            }
        },
    }


async def test_a_missing_plugin_installs_through_the_trust_dialog_before_anything_runs(
    editor: Recorded, wf_hub: HubProcess, file_server: tuple[str, Path], tmp_path: Path
):
    page = editor.page
    base, folder = file_server
    marker = tmp_path / "ran.txt"
    source = tripler("tripler", "1.0.0", 3, marker)
    (folder / "tripler.py").write_text(source)
    doc = tripler_doc("tripler", f"{base}/tripler.py", source)
    (folder / "triple.json").write_text(json.dumps(doc))
    await page.get_by_test_id("wf-import-input").set_input_files(str(folder / "triple.json"))
    pin = page.get_by_test_id("wf-pins").get_by_test_id("wf-pin-tripler")
    await expect(pin).to_have_attribute("data-state", "missing")
    await expect(page.get_by_test_id("wf-run")).to_be_disabled()
    await expect(page.get_by_test_id("wf-node-triple")).to_contain_text("install or pin it")
    await pin.get_by_test_id("wf-pin-install").click()
    dialog = page.get_by_test_id("install-dialog")
    await expect(dialog.get_by_test_id("install-url")).to_have_value(f"{base}/tripler.py")
    await dialog.get_by_test_id("install-preview").click()
    await expect(dialog.get_by_test_id("install-preview-card")).to_contain_text("Tripler")
    assert not marker.exists(), "plugin code ran before the user trusted it"
    await dialog.get_by_test_id("install-confirm").click()
    await expect(dialog).to_be_hidden(timeout=30_000)
    await expect(page.get_by_test_id("wf-pins")).to_have_count(0, timeout=30_000)
    await page.get_by_test_id("wf-run").click()
    node = page.get_by_test_id("wf-node-triple")
    await expect(node).to_have_attribute("data-state", "done", timeout=120_000)
    assert marker.exists()
    editor.assert_offline()


async def test_use_pinned_version_puts_the_earlier_plugin_back(
    editor: Recorded, wf_hub: HubProcess, file_server: tuple[str, Path], tmp_path: Path
):
    page = editor.page
    base, folder = file_server
    first = tripler("pinned-tripler", "1.0.0", 3, tmp_path / "ran.txt")
    (folder / "pinned.py").write_text(first)
    wf_hub.json("/api/plugins", "POST", {"url": f"{base}/pinned.py", "public_only": False})
    second = tripler("pinned-tripler", "2.0.0", 4, tmp_path / "ran.txt")
    (folder / "pinned.py").write_text(second)
    wf_hub.json("/api/plugins", "POST", {"url": f"{base}/pinned.py", "public_only": False})
    doc = tripler_doc("pinned-tripler", f"{base}/pinned.py", first)
    (folder / "pinned.json").write_text(json.dumps(doc))
    await page.get_by_test_id("wf-import-input").set_input_files(str(folder / "pinned.json"))
    pin = page.get_by_test_id("wf-pins").get_by_test_id("wf-pin-pinned-tripler")
    await expect(pin).to_have_attribute("data-state", "changed")
    await expect(pin).to_contain_text("made with 1.0.0")
    await expect(pin).to_contain_text("this hub has 2.0.0")
    await pin.get_by_test_id("wf-pin-use").click()
    await expect(page.get_by_test_id("wf-pins")).to_have_count(0, timeout=30_000)
    installed = next(p for p in wf_hub.json("/api/plugins")["plugins"] if p["id"] == "pinned-tripler")
    assert installed["version"] == "1.0.0"
    assert installed["sha256"] == hashlib.sha256(first.encode()).hexdigest()
    editor.assert_offline()
