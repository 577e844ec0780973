"""Painting labels in the viewer (real Chromium, the real app, a real hub): mouse strokes change the label
pixels under them, undo and redo, erase and fill; saved on the hub as TIFF beside the image, offered again
when the same image is opened after a reload, pixel for pixel. Screenshots: artifacts/web-annotate-*.png."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Browser, Page, expect

from browser import Recorded, app_hub, app_page, needs_chromium, open_sample, shot
from conftest import HubProcess
from scopeflow._util import content_hash
from scopeflow.images import formats as data

pytestmark = [needs_chromium]


@pytest.fixture(scope="module")
def web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    with app_hub(tmp_path_factory.mktemp("annotate")) as running:
        yield running


@pytest.fixture
async def app(browser: Browser, web_hub: HubProcess) -> AsyncIterator[Recorded]:
    async with app_page(browser, web_hub) as recorded:
        yield recorded


async def label_at(page: Page, x: int, y: int) -> int:
    return int(await page.evaluate("([x, y]) => window.__scopeflowViewer.labelAt(x, y)", [x, y]))


async def labels_row(page: Page, y: int, x0: int, x1: int) -> list[int]:
    return [
        int(v)
        for v in await page.evaluate(
            "([y, x0, x1]) => { const v = window.__scopeflowViewer;"
            " return Array.from({length: x1 - x0}, (_, i) => v.labelAt(x0 + i, y)); }",
            [y, x0, x1],
        )
    ]


async def stroke(page: Page, points: Sequence[tuple[float, float]]) -> None:
    """Press the mouse at the first image pixel (its centre), move through the others, release."""
    at = await page.evaluate(
        "(pts) => pts.map(([x, y]) => window.__scopeflowViewer.pagePoint(x, y))", [list(p) for p in points]
    )
    await page.mouse.move(*at[0])
    await page.mouse.down()
    for x, y in at[1:]:
        await page.mouse.move(x, y, steps=4)
    await page.mouse.up()


async def click_at(page: Page, x: float, y: float) -> None:
    await stroke(page, [(x, y)])


async def editing(page: Page) -> dict[str, Any]:
    return dict(await page.evaluate("() => window.__scopeflowViewer.editing"))


async def painted(page: Page) -> dict[str, Any]:
    return dict(
        await page.evaluate(
            """() => {
            const s = window.__scopeflow.state();
            const l = s.images.find(i => i.id === s.overlay);
            return {name: l.name, kind: l.kind, dtype: l.dtype, shape: l.shape, axes: l.axes,
                    editable: !!l.editable, data: Array.from(l.data)};
        }"""
        )
    )


async def test_paint_undo_erase_fill_save_and_reopen(app: Recorded, web_hub: HubProcess) -> None:
    page = app.page
    await open_sample(page, "nuclei-2d")
    await shot(page, "annotate-start")
    await page.get_by_test_id("labels-start").click()  # "Paint labels" in the viewer's labels card
    await expect(page.get_by_test_id("label-tools")).to_be_visible()
    state = await editing(page)
    assert state["tool"] == "paint" and state["label"] == 1 and state["brush"] == 10
    # the tools say their keys
    assert "(keys 2 or P)" in (await page.get_by_test_id("label-tool-paint").get_attribute("title") or "")
    assert "Ctrl+Z" in (await page.get_by_test_id("label-undo").get_attribute("title") or "")

    # a horizontal stroke with a brush of 10: a band 10 pixels high under it, nothing elsewhere
    await stroke(page, [(100, 100), (150, 100), (200, 100)])
    assert await labels_row(page, 100, 100, 201) == [1] * 101
    assert [await label_at(page, 150, y) for y in (95, 96, 104, 105, 106, 94)] == [1, 1, 1, 1, 0, 0]
    assert await label_at(page, 150, 140) == 0 and await label_at(page, 300, 300) == 0
    colour = await page.evaluate("() => window.__scopeflowViewer.renderedPixel(150, 100)")
    grey = await page.evaluate("() => window.__scopeflowViewer.renderedPixel(150, 140)")
    assert colour != grey  # the label's colour shows over the image

    # undo and redo, with napari's keys
    await page.keyboard.press("Control+z")
    assert await labels_row(page, 100, 100, 201) == [0] * 101
    await page.keyboard.press("Control+Shift+z")
    assert await labels_row(page, 100, 100, 201) == [1] * 101

    # a new label (M) for a second object, painted with a smaller brush (])
    await page.keyboard.press("m")
    await page.keyboard.press("[")
    state = await editing(page)
    assert state["label"] == 2 and state["brush"] == 9
    await stroke(page, [(300, 300), (300, 340)])
    assert [await label_at(page, 300, y) for y in (295, 296, 320, 344, 345)] == [0, 2, 2, 2, 0]
    assert await label_at(page, 150, 100) == 1

    # erase (E) cuts the first band in two
    await page.keyboard.press("e")
    await stroke(page, [(150, 80), (150, 120)])
    row = await labels_row(page, 100, 90, 211)
    assert row[150 - 90] == 0 and row[120 - 90] == 1 and row[180 - 90] == 1
    assert 0 in row[140 - 90 : 150 - 90 + 1]

    # fill (F) with label 3 on the left part: only that connected part changes
    await page.keyboard.press("f")
    await page.get_by_test_id("label-value").fill("3")
    await click_at(page, 120, 100)
    assert await label_at(page, 120, 100) == 3 and await label_at(page, 100, 96) == 3
    assert await label_at(page, 180, 100) == 1 and await label_at(page, 300, 320) == 2
    assert await label_at(page, 400, 400) == 0
    # pick (L) takes the value under the pointer
    await page.keyboard.press("l")
    await click_at(page, 300, 320)
    assert (await editing(page))["label"] == 2
    await page.keyboard.press("p")
    assert (await editing(page))["tool"] == "paint"

    layer = await painted(page)
    assert layer["kind"] == "labels" and layer["dtype"] == "int32" and layer["editable"]
    assert layer["shape"] == [512, 512] and layer["axes"] == "yx"  # the image's grid
    pixels = np.array(layer["data"], np.int32).reshape(512, 512)
    assert set(np.unique(pixels)) == {0, 1, 2, 3}
    at = await page.evaluate("() => window.__scopeflowViewer.pagePoint(250, 200)")
    await page.mouse.move(*at)  # the brush's outline follows the pointer
    await shot(page, "annotate-painting")

    # save: on the hub beside the image, keyed by the image's content hash, the same pixels
    await page.get_by_test_id("label-save").click()
    saved_state = page.get_by_test_id("label-save-state")
    await expect(saved_state).to_have_attribute("data-state", "saved", timeout=20_000)
    sample, _ = data.load_sample("nuclei-2d")
    key = content_hash(sample)
    listed = web_hub.json(f"/api/annotations?image={key}")
    assert [(e["name"], e["image_name"], e["shape"]) for e in listed] == [
        ("labels", "Nuclei, fluorescence (2D)", [512, 512])
    ]
    status, body = web_hub.request(f"/api/annotations/{key}/labels")
    saved, axes = data.read_image(body)
    assert status == 200 and axes == "yx" and saved.dtype == np.int32 and np.array_equal(saved, pixels)
    # the labels are an open image an op can take: listed in the images with the image
    names = await page.evaluate("() => window.__scopeflow.state().images.map(i => [i.name, i.dtype, i.kind])")
    assert ["Nuclei, fluorescence (2D) · labels", "int32", "labels"] in names
    app.assert_offline()

    # a reload forgets everything open; the same image offers its saved labels again
    await page.reload()
    connection = page.get_by_test_id("connection")
    await expect(connection).to_have_attribute("data-state", "connected", timeout=30_000)
    await open_sample(page, "nuclei-2d")
    offered = page.get_by_test_id("saved-annotations").get_by_test_id("annotation-labels")
    await expect(offered).to_be_visible(timeout=20_000)
    await offered.get_by_test_id("annotation-open").click()
    await expect(page.get_by_test_id("label-tools")).to_be_visible()
    again = await painted(page)
    assert again["editable"] and again["shape"] == [512, 512]
    assert np.array_equal(np.array(again["data"], np.int32).reshape(512, 512), pixels)
    assert await label_at(page, 120, 100) == 3 and await label_at(page, 300, 320) == 2
    # painting goes on where it stopped; the next label is past the largest
    await page.get_by_test_id("viewer-canvas").focus()
    await page.keyboard.press("m")
    assert (await editing(page))["label"] == 4
    app.assert_offline()


async def test_a_segmentation_is_corrected_on_a_copy(app: Recorded) -> None:
    page = app.page
    await open_sample(page, "nuclei-2d")
    await open_sample(page, "nuclei-2d-labels")  # shown over the image
    truth, _ = data.load_sample("nuclei-2d-labels")
    await page.get_by_test_id("labels-start").click()  # "Paint on a copy"
    await expect(page.get_by_test_id("label-tools")).to_be_visible()
    copy = await painted(page)
    assert copy["editable"] and copy["dtype"] == "int32"
    assert np.array_equal(np.array(copy["data"]).reshape(truth.shape), truth)
    assert (await editing(page))["label"] == int(truth.max()) + 1
    # delete one nucleus everywhere, then undo it
    y, x = np.argwhere(truth > 0)[len(np.argwhere(truth > 0)) // 2]
    nucleus = int(truth[y, x])
    await page.get_by_test_id("viewer-canvas").focus()
    await page.keyboard.press("l")
    await click_at(page, int(x), int(y))
    assert (await editing(page))["label"] == nucleus
    await page.get_by_test_id("label-delete").click()
    after = np.array((await painted(page))["data"]).reshape(truth.shape)
    assert not (after == nucleus).any() and np.array_equal(after[truth != nucleus], truth[truth != nucleus])
    await page.get_by_test_id("label-undo").click()
    assert np.array_equal(np.array((await painted(page))["data"]).reshape(truth.shape), truth)
    # the original stays as it was
    original = await page.evaluate(
        "() => Array.from(window.__scopeflow.state().images"
        ".find(i => i.name.startsWith('Nuclei, ground')).data)"
    )
    assert np.array_equal(np.array(original).reshape(truth.shape), truth)
    app.assert_offline()


async def test_a_stack_is_painted_plane_by_plane(app: Recorded) -> None:
    page = app.page
    await open_sample(page, "nuclei-3d")  # 31 planes of 61 rows, 57 columns
    await page.get_by_test_id("labels-start").click()
    await expect(page.get_by_test_id("label-tools")).to_be_visible()
    await stroke(page, [(10, 20), (40, 20)])
    z = int(await page.evaluate("() => Number(document.querySelector('[data-testid=viewer-z]').value)"))
    layer = await painted(page)
    assert layer["shape"] == [31, 61, 57] and layer["axes"] == "zyx"
    stack = np.array(layer["data"]).reshape(31, 61, 57)
    assert (stack[z, 20, 10:41] == 1).all()
    assert not np.delete(stack, z, axis=0).any()  # the other planes untouched
    # the next plane up: fill there, only there
    await page.get_by_test_id("viewer-canvas").focus()
    await page.keyboard.press("ArrowUp")
    await page.keyboard.press("f")
    await click_at(page, 5, 5)
    stack = np.array((await painted(page))["data"]).reshape(31, 61, 57)
    assert (stack[z + 1] == 1).all() and (stack[z, 20, 10:41] == 1).all() and stack[z, 0, 0] == 0
    app.assert_offline()


async def test_painting_a_1024_image_redraws_only_what_changed(app: Recorded) -> None:
    page = app.page
    await page.evaluate(
        """() => {
            const n = 1024 * 1024, data = new Uint16Array(n);
            for (let i = 0; i < n; i++) data[i] = (i * 7919) % 4096;
            window.__scopeflow.addImage({id: 'big', name: 'big.tif', data, shape: [1024, 1024],
                                         dtype: 'uint16', axes: 'yx', kind: 'image'});
        }"""
    )
    await page.get_by_test_id("labels-start").click()
    await expect(page.get_by_test_id("label-tools")).to_be_visible()
    renders = int(await page.evaluate("() => window.__scopeflowViewer.renderCount"))
    points = [(100 + 8 * i, 500 + 200 * np.sin(i / 8)) for i in range(100)]
    await stroke(page, points)
    state = await editing(page)
    assert await label_at(page, int(points[50][0]), int(points[50][1])) == 1
    # the image layer was not composed again; a pointer move's paint and partial redraw take milliseconds
    assert int(await page.evaluate("() => window.__scopeflowViewer.renderCount")) == renders
    print(json.dumps({"lastPaintMs": state["lastPaintMs"]}))
    assert state["lastPaintMs"] < 30
    app.assert_offline()
