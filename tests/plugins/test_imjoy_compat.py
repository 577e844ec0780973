"""ImJoy plugins written by others run as they are: legacy configs, the ``api`` they use, ``run(ctx)``.

The plugins in ``tests/imjoy_plugins`` follow the patterns of public ImJoy plugins; a hub of their own
serves them, and clients use them the way ImJoy users write it (the unmodified imjoy-rpc client included).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.rpc.client import connect

pytestmark = pytest.mark.hub

PLUGINS = Path(__file__).parents[1] / "imjoy_plugins"


def plugin_ref(name: str) -> str:
    """How a client names a plugin: by its config ``name``, exactly as written, as in ImJoy."""
    return name


def plugin_id(name: str) -> str:
    """The id REST paths take: the config name, lower-cased and dashed (no ``id`` in these configs)."""
    return re.sub(r"[^a-z0-9._-]", "", re.sub(r"\s+", "-", name.strip().lower()))


@pytest.fixture(scope="module")
def compat_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("imjoy-compat"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)


class App:
    """The part of the web app plugins' UI calls reach (the ``imjoy-api`` service), recording them."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str, list[Any]]] = []

    def dispatch(self, caller: str, name: str, args: list[Any]) -> Any:
        self.calls.append((time.monotonic(), caller, name, list(args)))
        return True if name == "confirm" else None

    def of(self, name: str) -> list[list[Any]]:
        return [args for _, _, called, args in self.calls if called == name]

    async def wait_for(self, name: str, count: int) -> list[list[Any]]:
        """The calls of ``name`` once there are ``count`` (UI calls a plugin does not await may arrive after
        the call that made them has returned)."""
        for _ in range(100):
            if len(self.of(name)) >= count:
                break
            await asyncio.sleep(0.05)
        return self.of(name)


@pytest.fixture
async def client(compat_hub: HubProcess) -> Any:
    server = await connect(compat_hub.url, token=compat_hub.token)
    yield server
    await server.disconnect()


@pytest.fixture
async def app(client: Any) -> App:
    recorder = App()
    await client.register_service({"id": "imjoy-api", "dispatch": recorder.dispatch})
    return recorder


def logs(hub: HubProcess, plugin: str) -> list[str]:
    return [entry["message"] for entry in hub.json(f"/api/plugins/{plugin}/logs")["logs"]]


async def test_legacy_config_is_listed_as_what_it_is(compat_hub):
    manifest = compat_hub.json(f"/api/plugins/{plugin_id('Legacy Denoiser')}")
    assert (manifest["type"], manifest["tag"], manifest["requirements"]) == ("native-python", "CPU", [])
    assert [field["id"] for field in manifest["ui_fields"]] == ["sigma", "steps", "method"]
    assert manifest["config"]["requirements"]["GPU"] == ["pip:surely-not-installed-gpu-lib"]


async def test_run_gets_ctx_config_from_the_ui_form(compat_hub, client):
    denoiser = await client.get_plugin(plugin_ref("Legacy Denoiser"))
    result = await denoiser.run()
    assert {k: result[k] for k in ("sigma", "steps", "method", "tag", "data")} == {
        "sigma": 2,
        "steps": 3,
        "method": "gaussian",  # a choice without placeholder: its first option
        "tag": "CPU",
        "data": {},
    }
    given = await denoiser.run({"config": {"sigma": 5, "steps": 1}, "data": {"image": "x"}})
    assert (given["sigma"], given["steps"], given["method"], given["data"]) == (
        5,
        1,
        "gaussian",
        {"image": "x"},
    )
    # ``api`` was a global of the module without being imported, ``api.TAG`` the default tag
    assert any("legacy denoiser ready, tag CPU" in m for m in logs(compat_hub, plugin_id("Legacy Denoiser")))


async def test_a_long_sync_run_sends_its_progress_while_it_runs(client, app):
    denoiser = await client.get_plugin(plugin_ref("Legacy Denoiser"))
    result = await denoiser.run({"config": {"steps": 4, "pause": 0.4}})
    returned = time.monotonic()
    assert result["thread"].startswith("imjoy-plugin")  # not the kernel's event loop
    assert await app.wait_for("showProgress", 4) == [[25], [50], [75], [100]]  # api.showProgress(p=...)
    progress = [(at, args) for at, _, name, args in app.calls if name == "showProgress"]
    assert returned - progress[0][0] > 0.8, "the first progress waited for run to return"
    assert (await app.wait_for("showStatus", 4))[:2] == [["step 1"], ["step 2"]]


async def test_ui_calls_with_keyword_arguments(client, app):
    caller = await client.get_plugin(plugin_ref("UI Caller"))
    assert await caller.show_things() is True  # the app's answer to confirm(msg=...)
    assert app.of("showDialog") == [
        [{"src": "https://example.org/viewer.html", "fullscreen": True, "name": "Viewer"}]
    ]
    assert app.of("createWindow") == [
        [{"type": "imjoy/markdown", "data": {"source": "# hi"}}],
        [{"type": "imjoy/generic", "name": "merged", "data": {"a": 1}}],  # keywords join the config
    ]
    assert app.of("showMessage") == [["hi"], ["saved", 5]]
    assert app.of("showSnackbar") == [["snack", 2]]
    assert (app.of("showProgress"), app.of("showStatus")) == ([[50]], [["busy"]])
    assert (app.of("alert"), app.of("error"), app.of("confirm")) == ([["careful"]], [["oops"]], [["sure?"]])
    assert ["logged"] in app.of("log")
    assert {caller for _, caller, _, _ in app.calls} == {plugin_id("UI Caller")}
    assert await caller.show_from_a_thread() == "done"
    assert app.of("showMessage")[-1] == ["from a thread"]


async def test_attachments_utils_and_calls_the_hub_cannot_answer(client):
    caller = await client.get_plugin(plugin_ref("UI Caller"))
    found = await caller.attachments()
    assert found["weights"] == '{"layers": [8, 16]}'
    assert found["notes"] == "line one\nline two"
    assert "no attachment named 'nothing'" in found["missing"] and "weights.json" in found["missing"]
    unavailable = await caller.unavailable()
    assert "api.createWindow" in unavailable["getWindow"]
    assert "take the file as an argument" in unavailable["showFileDialog"]
    helpers = await caller.helpers()
    assert (helpers["x"], helpers["missing"], helpers["shape"], helpers["tag"]) == (1, None, [2, 2], "")
    assert {"dotdict", "kill", "ndarray", "debounce", "set_interval"} <= set(helpers["utils"])


async def test_a_py_plugin_gets_the_api_global(compat_hub, client):
    plugin = await client.get_plugin("global-api")
    assert await plugin.greet("ann") == "hello ann, tag ''"
    assert any("greeting ann" in m for m in logs(compat_hub, "global-api"))


async def test_the_stop_hook_calls_exit_once(compat_hub, client):
    caller = await client.get_plugin(plugin_ref("UI Caller"))
    assert await caller.stop_hook_twice() == "stopped"
    await asyncio.sleep(0.5)  # the log line exit() sent without waiting
    assert sum("ui caller exit" in m for m in logs(compat_hub, plugin_id("UI Caller"))) == 1


def _drive_with_imjoy_rpc(imjoy_python: Path, hub: HubProcess, script: str) -> dict[str, Any]:
    """Run ``script`` (the body of ``async def main(server)``) with the unmodified imjoy-rpc client."""
    source = (
        "import asyncio, json, sys\n"
        "from imjoy_rpc.hypha import connect_to_server\n\n"
        "async def main(server):\n"
        "    out = {}\n"
        + "".join(f"    {line}\n" for line in script.strip().splitlines())
        + "    return out\n\n"
        "async def run():\n"
        "    server = await connect_to_server({'server_url': sys.argv[1], 'token': sys.argv[2],"
        " 'method_timeout': 120})\n"
        "    try:\n"
        "        print(json.dumps(await main(server)))\n"
        "    finally:\n"
        "        await server.disconnect()\n\n"
        "asyncio.run(run())\n"
    )
    result = subprocess.run(
        [str(imjoy_python), "-c", source, hub.url, hub.token], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(next(line for line in reversed(result.stdout.splitlines()) if line.startswith("{")))


def test_registered_services_reach_an_unmodified_imjoy_client(compat_hub, imjoy_python):
    ui_caller, denoiser = plugin_ref("UI Caller"), plugin_ref("Legacy Denoiser")
    caller_id = plugin_id("UI Caller")  # the client id its services are listed under
    out = _drive_with_imjoy_rpc(
        imjoy_python,
        compat_hub,
        f"""
caller = await server.get_plugin({ui_caller!r})
listed = [s['id'] for s in await server.list_services()]
out['listed'] = sorted(i for i in listed if i.split(':')[0].endswith({caller_id!r}))
loader = await server.get_service({ui_caller!r} + ':echo-loader')
out['echo'] = await loader.echo('hi')
double = await server.get_service({ui_caller!r} + ':double-it')
out['double'] = await double.run()
out['double_given'] = await double.run({{'config': {{'value': 21}}}})
out['seen_by_plugin'] = await caller.services()
out['after_drop'] = await caller.drop_loader()
try:
    await server.get_service({ui_caller!r} + ':echo-loader')
except Exception as exc:
    out['dropped'] = str(exc)[-300:]  # a remote traceback: the reason is its last line
plugin = await server.get_plugin({denoiser!r})
result = await plugin.run({{'config': {{'sigma': 3}}}})
out['run'] = [result['sigma'], result['steps'], result['tag']]
""",
    )
    assert out["listed"] == [
        f"default/{caller_id}:default",
        f"default/{caller_id}:double-it",
        f"default/{caller_id}:echo-loader",
    ]
    assert (out["echo"], out["double"], out["double_given"]) == ("echo: hi", 2, 42)
    assert out["seen_by_plugin"] == [f"default/{caller_id}:echo-loader"]
    assert out["after_drop"] == [] and "not found" in out["dropped"]
    assert out["run"] == [3, 3, "CPU"]


async def test_api_exit_calls_exit_and_stops_the_plugin(compat_hub, client):
    ref = plugin_id("Legacy Denoiser")
    denoiser = await client.get_plugin(plugin_ref("Legacy Denoiser"))
    assert await denoiser.quit() == "bye"
    for _ in range(100):
        if compat_hub.json(f"/api/plugins/{ref}")["status"]["state"] == "stopped":
            break
        await asyncio.sleep(0.1)
    assert compat_hub.json(f"/api/plugins/{ref}")["status"]["state"] == "stopped"
    assert any("exit called" in m for m in logs(compat_hub, ref))
    denoiser = await client.get_plugin(ref)  # starts again on the next use
    assert (await denoiser.run())["sigma"] == 2


async def test_stopping_a_plugin_from_the_app_runs_its_exit(compat_hub, client, tmp_path):
    """The app's Stop (the REST door) lets the plugin clean up in exit() before its kernel goes."""
    marker = tmp_path / "exit.txt"
    plugin = await client.get_plugin("Exit Marker")
    assert await plugin.arm(str(marker)) is True
    assert not marker.exists()
    status, _ = compat_hub.request(f"/api/plugins/{plugin_id('Exit Marker')}/stop", "POST", {})
    assert status == 200
    assert marker.read_text() == "cleaned up"
    assert compat_hub.json(f"/api/plugins/{plugin_id('Exit Marker')}")["status"]["state"] == "stopped"
