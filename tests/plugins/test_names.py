"""Plugins are reached by the name in their config, exactly as written, as in ImJoy; ids stay as aliases."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.registry import Registry
from scopeflow.rpc.client import connect

pytestmark = pytest.mark.hub

PLUGINS = Path(__file__).parents[1] / "name_plugins"

# the unmodified imjoy-rpc client, written as ImJoy users write it
IMJOY_SCRIPT = """
import asyncio, json, sys
from imjoy_rpc.hypha import connect_to_server

async def main(url, token):
    server = await connect_to_server({"server_url": url, "token": token, "method_timeout": 120})
    untitled = await server.get_plugin("Untitled Plugin")
    probe = await server.get_plugin("HeldOutProbe")
    out = {"double": await untitled.double(21), "through": await probe.ask_untitled(5)}
    try:
        await server.get_plugin("untitled plugin")  # names are exact: case matters
    except Exception as exc:
        out["wrong_case"] = str(exc)[-300:]  # a remote traceback: the reason is its last line
    print(json.dumps(out))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.fixture(scope="module")
def names_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("names"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)


def test_a_name_two_plugins_share_is_refused_naming_both_files(tmp_path: Path) -> None:
    registry = Registry(None, [PLUGINS], tmp_path / "data")
    registry.scan()
    assert registry.resolve("Untitled Plugin").id == "untitled-plugin"  # the first file keeps its name
    assert registry.resolve("untitled-plugin").name == "Untitled Plugin"  # the id is an alias
    assert registry.resolve("another-untitled") is None
    [error] = registry.errors
    assert error["path"].endswith("zz-same-name.imjoy.html")
    assert "Untitled Plugin" in error["error"] and "untitled.imjoy.html" in error["error"]


async def test_plugins_are_called_by_their_names_from_our_client_and_each_other(
    names_hub: HubProcess,
) -> None:
    server = await connect(names_hub.url, token=names_hub.token)
    try:
        untitled = await server.get_plugin("Untitled Plugin")
        assert await untitled.double(4) == 8
        assert await (await server.get_plugin("untitled-plugin")).double(1) == 2  # old ids keep working
        probe = await server.get_plugin("HeldOutProbe")
        assert await probe.ask_untitled(7) == 14  # api.getPlugin("Untitled Plugin") inside a kernel
        with pytest.raises(Exception, match="Service not found"):
            await server.get_plugin("Nobody Has This Name")
    finally:
        await server.disconnect()
    listing = names_hub.json("/api/plugins")
    assert any("zz-same-name" in e["path"] for e in listing["errors"])


def test_the_unmodified_imjoy_client_gets_plugins_by_name(names_hub: HubProcess, imjoy_python: Path) -> None:
    done = subprocess.run(
        [str(imjoy_python), "-c", IMJOY_SCRIPT, names_hub.url, names_hub.token],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["double"] == 42 and out["through"] == 10
    assert "not found" in out["wrong_case"].lower()
