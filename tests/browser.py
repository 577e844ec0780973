"""Driving the web app in real headless Chromium (Debian's /usr/bin/chromium through Playwright).

Shared by the browser tests: the page recorder (no request may leave 127.0.0.1, no page errors, no
Content-Security-Policy violations), screenshots into artifacts/, and opening the app connected to a hub.
The app's policy has no 'unsafe-eval': give ``wait_for_function`` a function ("() => ..."), since Playwright
evals a bare expression inside the page.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from conftest import ARTIFACTS, ROOT, HubProcess, start_hub, stop_hub

CHROMIUM = Path("/usr/bin/chromium")

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (scripts/test installs it)"
)


class Recorded:
    """A page and every URL it (and its frames) requested."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium reports every CSP violation (the app's, a window frame's) on the console
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def assert_offline(self) -> None:
        outside = [
            u
            for u in self.urls
            if urlsplit(u).scheme not in ("data", "blob", "about") and urlsplit(u).hostname != "127.0.0.1"
        ]
        assert not outside, f"requests left 127.0.0.1: {outside}"
        assert not self.errors, f"errors in the page: {self.errors}"


async def open_app(
    browser: Browser, hub: HubProcess, path: str = "/", width: int = 1280, height: int = 800
) -> tuple[BrowserContext, Recorded]:
    """A fresh context with the app at ``path`` (the token added), once it is connected to the hub."""
    context = await browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = await context.new_page()
    recorded = Recorded(page)
    sep = "&" if "?" in path.split("#")[0] else "?"
    base, _, fragment = path.partition("#")
    await page.goto(f"{hub.url}{base}{sep}token={hub.token}" + (f"#{fragment}" if fragment else ""))
    await expect(page.get_by_test_id("connection")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    return context, recorded


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"))


async def open_sample(page: Page, sample: str) -> None:
    before = await page.evaluate("window.__scopeflow.state().images.length")
    await page.get_by_test_id(f"sample-{sample}").click()
    await page.wait_for_function(f"() => window.__scopeflow.state().images.length > {before}")


@contextlib.contextmanager
def app_hub(tmp: Path, *extra: str) -> Iterator[HubProcess]:
    """A hub serving the built web app (``extra``: more ``scopeflow serve`` options), for a test module."""
    if not (ROOT / "web" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run bash scripts/setup")
    running = start_hub(tmp, *extra)
    try:
        yield running
    finally:
        stop_hub(running)


@contextlib.asynccontextmanager
async def app_page(browser: Browser, hub: HubProcess) -> AsyncIterator[Recorded]:
    """The app in a fresh browser context, connected to ``hub``; the context is closed afterwards."""
    context, recorded = await open_app(browser, hub)
    try:
        yield recorded
    finally:
        await context.close()
