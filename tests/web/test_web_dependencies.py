"""Installing a plugin from a URL together with the plugins its ImJoy config lists in ``dependencies``.

Every dependency given as a URL is previewed like the plugin itself (name, version, sha256) and installed only
if the user leaves it ticked, exactly as previewed; GitHub shorthand and plain names are shown, not fetched.
The plugin files are written here, in the patterns real ImJoy plugins use, and served from 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from browser import Recorded, needs_chromium, open_app, shot
from conftest import ARTIFACTS, ROOT, HubProcess, serve_folder, start_hub, stop_hub

WEB_PLUGINS = Path(__file__).parents[1] / "web_plugins"

pytestmark = [needs_chromium, pytest.mark.browser]

VIEWER = """<config lang="json">
{
  "name": "Cell Viewer",
  "type": "window",
  "version": "0.4.1",
  "description": "Shows cells; uses helper plugins.",
  "api_version": "0.1.8",
  "dependencies": DEPENDENCIES
}
</config>
<window lang="html"><div id="cells">cells</div></window>
<script lang="javascript">
class ImJoyPlugin {
  async setup() { await api.log("viewer ready"); }
  async run(ctx) { const helper = await api.getPlugin("Cell Helper"); await helper.count(); }
}
api.export(new ImJoyPlugin());
</script>
"""

HELPER = '''"""Counts cells for the viewer."""
from pathlib import Path

from scopeflow import op

PLUGIN = {"id": "cell-helper", "name": "Cell Helper", "version": "2.0.0", "description": "Counts cells."}

Path(MARKER).write_text("ran")


@op
def count(n: int = 1) -> int:
    """Return n."""
    return n
'''

EXTRA = """<config lang="json">
{"name": "Extra Tool", "type": "window", "version": "0.0.3", "description": "Not needed today."}
</config>
<window lang="html"><div>extra</div></window>
<script lang="javascript">
api.export({ async setup() {} });
</script>
"""


IMAGE_WINDOW = """<config lang="json">
{"name": "Image Window", "type": "window", "version": "0.5.0", "description": "Shows an image."}
</config>
<window lang="html"><div>image</div></window>
<script lang="javascript">
api.export({ async setup() {} });
</script>
"""


@pytest.fixture(scope="module")
def github_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Stands in for raw.githubusercontent.com: a repository with a manifest.imjoy.json, on loopback."""
    folder = tmp_path_factory.mktemp("github")
    repo = folder / "oeway" / "ImJoy-Plugins" / "master"
    (repo / "repository").mkdir(parents=True)
    (repo / "repository" / "imageWindow.imjoy.html").write_text(IMAGE_WINDOW)
    manifest = {
        "uri_root": "",
        "plugins": [{"name": "Image Window", "uri": "repository/imageWindow.imjoy.html"}],
    }
    (repo / "manifest.imjoy.json").write_text(json.dumps(manifest))
    with serve_folder(folder) as base:
        yield base


@pytest.fixture(scope="module")
def deps_hub(tmp_path_factory: pytest.TempPathFactory, github_mirror: str) -> Iterator[HubProcess]:
    if not (ROOT / "web" / "dist" / "index.html").exists():
        pytest.fail("the web app is not built: run bash scripts/setup")
    os.environ["SCOPEFLOW_GITHUB_RAW"] = github_mirror
    try:
        running = start_hub(tmp_path_factory.mktemp("web-deps"), "--plugins-dir", str(WEB_PLUGINS))
    finally:
        del os.environ["SCOPEFLOW_GITHUB_RAW"]
    yield running
    stop_hub(running)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(running.log_path, ARTIFACTS / "web-deps-hub.log")


@pytest.fixture
async def app(browser: Browser, deps_hub: HubProcess) -> AsyncIterator[Recorded]:
    context, recorded = await open_app(browser, deps_hub, height=1000)
    yield recorded
    await context.close()


def write_plugins(folder: Path, base: str, dependencies: list[str], marker: Path) -> None:
    deps = "[" + ", ".join(f'"{d}"' for d in dependencies) + "]"
    (folder / "viewer.imjoy.html").write_text(VIEWER.replace("DEPENDENCIES", deps))
    (folder / "helper.py").write_text(HELPER.replace("MARKER", repr(str(marker))))
    (folder / "extra.imjoy.html").write_text(EXTRA)


def installed(hub: HubProcess) -> dict[str, dict]:
    return {p["id"]: p for p in hub.json("/api/plugins")["plugins"]}


async def test_dependencies_are_previewed_and_installed_only_when_ticked(
    app: Recorded, file_server, deps_hub: HubProcess, github_mirror: str
):
    page = app.page
    base, folder = file_server
    port = base.rsplit(":", 1)[1]
    marker = folder / "ran.txt"
    dependencies = [
        f"{base}/helper.py",  # the same host as the plugin the user chose to fetch: previewed at once
        f"http://localhost:{port}/extra.imjoy.html",  # another host in the user's network: only when asked
        f"{base}/missing.imjoy.html",  # not there
        "https://plugins.invalid/remote.imjoy.html",  # cannot be reached (as when offline)
        "oeway/ImJoy-Plugins:Image Window",  # GitHub shorthand: looked up in the repository's manifest
        "Greeter window",  # a plain name, installed (tests/web_plugins)
        "Nowhere Plugin",  # a plain name nobody has
    ]
    write_plugins(folder, base, dependencies, marker)

    await page.get_by_role("button", name="Install plugin from URL").click()
    dialog = page.get_by_test_id("install-dialog")
    await dialog.get_by_test_id("install-url").fill(f"{base}/viewer.imjoy.html")
    await dialog.get_by_test_id("install-preview").click()
    await expect(dialog.get_by_test_id("install-preview-card")).to_contain_text("Cell Viewer")
    deps = dialog.get_by_test_id("install-deps")
    row = [deps.get_by_test_id(f"dep-{i}") for i in range(len(dependencies))]

    helper_sha = hashlib.sha256((folder / "helper.py").read_bytes()).hexdigest()
    await expect(row[0]).to_have_attribute("data-state", "ready", timeout=30_000)
    await expect(row[0]).to_contain_text("Cell Helper")
    await expect(row[0]).to_contain_text("2.0.0")
    await expect(row[0]).to_contain_text(helper_sha)
    await expect(row[0].get_by_test_id("dep-check")).to_be_checked()

    await expect(row[1]).to_have_attribute("data-state", "confirm")
    await expect(row[1]).to_contain_text("your own network")
    await row[1].get_by_test_id("dep-fetch").click()
    await expect(row[1]).to_have_attribute("data-state", "ready", timeout=30_000)
    await expect(row[1]).to_contain_text("Extra Tool")
    await row[1].get_by_test_id("dep-check").uncheck()  # the user does not want this one

    await expect(row[2]).to_have_attribute("data-state", "failed", timeout=30_000)
    await expect(row[2].get_by_test_id("dep-message")).to_contain_text("404")
    await expect(row[3]).to_have_attribute("data-state", "failed", timeout=30_000)
    await expect(row[3].get_by_test_id("dep-message")).to_contain_text("could not fetch")
    # (the mirror is on loopback, so the hub asks first, as for any address in the user's network)
    await expect(row[4]).to_have_attribute("data-state", "failed", timeout=30_000)
    await expect(row[4].get_by_test_id("dep-message")).to_contain_text("loopback")
    await row[4].get_by_test_id("dep-fetch").click()
    await expect(row[4]).to_have_attribute("data-state", "ready", timeout=30_000)
    await expect(row[4]).to_contain_text("0.5.0")
    await expect(row[5]).to_have_attribute("data-state", "installed")
    await expect(row[5]).to_contain_text("installed")
    await expect(row[6]).to_have_attribute("data-state", "unavailable")
    await expect(row[6].get_by_test_id("dep-message")).to_contain_text('no plugin called "Nowhere Plugin"')
    await expect(dialog.get_by_test_id("install-confirm")).to_have_text("Install and trust (3 plugins)")
    await shot(page, "install-dependencies")

    assert not marker.exists(), "a dependency's code ran before the user trusted it"
    before = installed(deps_hub)
    assert "cell-viewer" not in before and "cell-helper" not in before and "extra-tool" not in before

    await dialog.get_by_test_id("install-confirm").click()
    await expect(dialog).to_be_hidden(timeout=30_000)
    after = installed(deps_hub)
    assert after["cell-helper"]["sha256"] == helper_sha
    assert after["cell-helper"]["source_url"] == f"{base}/helper.py"
    assert after["cell-viewer"]["dependencies"] == dependencies
    assert "extra-tool" not in after, "an unticked dependency was installed"
    image_window = f"{github_mirror}/oeway/ImJoy-Plugins/master/repository/imageWindow.imjoy.html"
    assert after["image-window"]["source_url"] == image_window
    assert not marker.exists(), "installing ran the plugin's code"
    await expect(page.get_by_test_id("plugin-cell-helper")).to_be_visible()
    app.assert_offline()


async def test_a_dependency_that_changed_since_its_preview_is_refused(
    app: Recorded, file_server, deps_hub: HubProcess
):
    page = app.page
    base, folder = file_server
    marker = folder / "ran.txt"
    write_plugins(folder, base, [f"{base}/helper.py"], marker)
    source = (folder / "viewer.imjoy.html").read_text().replace("Cell Viewer", "Cell Viewer Two")
    (folder / "viewer.imjoy.html").write_text(source)
    (folder / "helper.py").write_text(
        (folder / "helper.py").read_text().replace("cell-helper", "changing-helper")
    )

    await page.get_by_role("button", name="Install plugin from URL").click()
    dialog = page.get_by_test_id("install-dialog")
    await dialog.get_by_test_id("install-url").fill(f"{base}/viewer.imjoy.html")
    await dialog.get_by_test_id("install-preview").click()
    row = dialog.get_by_test_id("dep-0")
    await expect(row).to_have_attribute("data-state", "ready", timeout=30_000)
    (folder / "helper.py").write_text((folder / "helper.py").read_text().replace("return n", "return 2 * n"))
    await dialog.get_by_test_id("install-confirm").click()

    await expect(dialog.get_by_test_id("install-error")).to_contain_text("changed since it was previewed")
    await expect(row).to_have_attribute("data-state", "failed")
    after = installed(deps_hub)
    assert "cell-viewer-two" in after  # the plugin the user trusted is installed
    assert "changing-helper" not in after  # its changed dependency is not
    await expect(dialog.get_by_role("button", name="Close")).to_be_visible()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()
    app.assert_offline()


TAGGED = """<config lang="json">
{
  "name": "Tagged Counter",
  "type": "native-python",
  "version": "1.2.0",
  "description": "Counts cells on the CPU or the GPU.",
  "tags": ["CPU", "GPU"],
  "runnable": false,
  "requirements": {"CPU": [], "GPU": ["pip:scopeflow-test-gpu-only-lib==1.0"]},
  "dependencies": {"CPU": [], "GPU": ["HELPER_URL"]}
}
</config>
<script lang="python">
from imjoy import api


class ImJoyPlugin:
    def setup(self):
        api.log("tagged counter on " + api.TAG)

    def run(self, ctx):
        return api.TAG

    def count(self, n=1):
        return n


api.export(ImJoyPlugin())
</script>
"""


async def test_the_user_picks_a_tag_when_installing_and_later(
    app: Recorded, file_server, deps_hub: HubProcess
):
    """ImJoy asks which of a plugin's ``tags`` to install: the requirements and dependencies keyed by tag
    follow the choice, in the preview and once installed; a plugin that is not ``runnable`` shows no Run."""
    page = app.page
    base, folder = file_server
    write_plugins(folder, base, [], folder / "ran.txt")
    (folder / "tagged.imjoy.html").write_text(TAGGED.replace("HELPER_URL", f"{base}/helper.py"))

    await page.get_by_role("button", name="Install plugin from URL").click()
    dialog = page.get_by_test_id("install-dialog")
    await dialog.get_by_test_id("install-url").fill(f"{base}/tagged.imjoy.html")
    await dialog.get_by_test_id("install-preview").click()
    card = dialog.get_by_test_id("install-preview-card")
    await expect(card).to_contain_text("requirements: none")
    await expect(dialog.get_by_test_id("install-tag")).to_have_value("CPU")  # ImJoy's default: the first
    await expect(dialog.get_by_test_id("install-deps")).to_have_count(0)
    await dialog.get_by_test_id("install-tag").select_option("GPU")
    await expect(card).to_contain_text("requirements: pip:scopeflow-test-gpu-only-lib==1.0")
    await expect(dialog.get_by_test_id("dep-0")).to_contain_text("Cell Helper", timeout=30_000)
    await shot(page, "install-tag")
    await dialog.get_by_test_id("dep-0").get_by_test_id("dep-check").uncheck()
    await dialog.get_by_test_id("install-confirm").click()
    await expect(dialog).to_be_hidden(timeout=30_000)

    plugin = installed(deps_hub)["tagged-counter"]
    assert (plugin["tag"], plugin["requirements"]) == ("GPU", ["pip:scopeflow-test-gpu-only-lib==1.0"])
    panel = page.get_by_test_id("plugin-panel")
    await expect(panel.get_by_test_id("plugin-tag")).to_have_value("GPU")
    await expect(panel.get_by_test_id("plugin-not-runnable")).to_be_visible()
    await expect(panel.get_by_test_id("op-run")).to_have_count(0)
    await expect(panel.get_by_test_id("op-count")).to_be_visible()  # its other methods stay usable
    await panel.get_by_test_id("plugin-tag").select_option("CPU")
    await expect(panel).not_to_contain_text("scopeflow-test-gpu-only-lib", timeout=10_000)
    plugin = installed(deps_hub)["tagged-counter"]
    assert (plugin["tag"], plugin["requirements"]) == ("CPU", [])
    status, _ = deps_hub.request("/api/plugins/tagged-counter/tag", "POST", {"tag": "TPU"})
    assert status == 400
    app.assert_offline()
