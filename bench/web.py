"""The web app in Chromium: first paint to a usable app, and showing a 2048x2048 uint16 image.

Each figure is printed beside a baseline measured in the same run on the same hub and browser:
- first paint: from the start of navigation until the app is connected and lists the plugins (a performance
  mark the app sets at the next frame), beside the response of one static file (the hub's favicon) in a fresh
  page, both read in the page;
- image: the viewer's mount, auto-contrast, compose and paint of a 2048x2048 uint16 image, beside a plain
  putImageData + drawImage of an RGBA buffer of the same size.

    .venv/bin/python bench/web.py [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

from playwright.async_api import async_playwright

from _hub import BenchHub

CHROMIUM = "/usr/bin/chromium"

SHOW_IMAGE = """async () => {
    const n = 2048, data = new Uint16Array(n * n);
    for (let i = 0; i < data.length; i++) data[i] = ((i % n) * 13 + ((i / n) | 0) * 7) & 0xffff;
    const before = window.__scopeflowViewer ? window.__scopeflowViewer.renderCount : 0;
    const t0 = performance.now();
    window.__scopeflow.addImage({id: "bench-" + t0, name: "bench", data, shape: [n, n], dtype: "uint16",
                                 axes: "yx", kind: "image"});
    await new Promise((resolve) => {
        const done = () => window.__scopeflowViewer && window.__scopeflowViewer.renderCount > 0
            && window.__scopeflowViewer.lastRenderMs !== undefined;
        const wait = () => (done() ? resolve() : setTimeout(wait, 2));
        wait();
    });
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return performance.now() - t0;
}"""

PLAIN_PAINT = """async () => {
    const n = 2048, canvas = document.createElement("canvas");
    canvas.width = n; canvas.height = n; document.body.appendChild(canvas);
    const rgba = new Uint8ClampedArray(n * n * 4).fill(128);
    const t0 = performance.now();
    const picture = new ImageData(rgba, n, n);
    const off = new OffscreenCanvas(n, n);
    off.getContext("2d").putImageData(picture, 0, 0);
    canvas.getContext("2d").drawImage(off, 0, 0);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const ms = performance.now() - t0;
    canvas.remove();
    return ms;
}"""


async def measure(runs: int) -> dict[str, float]:
    results: dict[str, list[float]] = {"app": [], "static": [], "image": [], "paint": []}
    with BenchHub() as hub:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for _ in range(runs):
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                page = await context.new_page()
                # both timed in the page, from the start of navigation (no driver round trips counted)
                await page.goto(f"{hub.url}/favicon.svg")
                results["static"].append(
                    await page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
                )
                await page.goto(f"{hub.url}/?token={hub.token}")
                await page.wait_for_selector("[data-testid=connection][data-state=connected]")
                await page.wait_for_selector("[data-testid^=plugin-]")
                await page.wait_for_function("performance.getEntriesByName('scopeflow:ready').length > 0")
                results["app"].append(
                    await page.evaluate("performance.getEntriesByName('scopeflow:ready')[0].startTime")
                )
                results["image"].append(await page.evaluate(SHOW_IMAGE))
                results["paint"].append(await page.evaluate(PLAIN_PAINT))
                await context.close()
            await browser.close()
    return {k: statistics.median(v) for k, v in results.items()}


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    m = asyncio.run(measure(args.runs))
    rows = [
        ("app first paint: load → connected, plugins listed", m["app"], "one static file", m["static"]),
        ("2048x2048 uint16 image shown by the viewer", m["image"], "plain putImageData + draw", m["paint"]),
    ]
    print(f"{'figure':52} {'scopeflow':>11} {'baseline':>30} {'ratio':>7}")
    for name, value, base_name, base in rows:
        print(f"{name:52} {value:8.0f} ms {base_name:>22} {base:5.0f} ms {value / base:6.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "median_ms": m}, indent=2))


if __name__ == "__main__":
    main()
