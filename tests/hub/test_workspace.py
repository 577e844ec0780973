"""The workspace-manager service, driven by real clients through a real hub."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scopeflow.rpc.client import connect

HERE = Path(__file__).parents[1]


def run_client(*command: str, timeout: float = 300) -> dict:
    """Run a client script; return the JSON line it printed (clients also log to stdout)."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(next(line for line in reversed(result.stdout.splitlines()) if line.startswith("{")))


async def test_manager_service_basics(hub):
    server = await connect(hub.url, token=hub.token, client_id="mgr-basics")
    try:
        info = await server.get_connection_info()
        assert info["workspace"] == "default"
        assert info["reconnection_expires_in"] > 0
        assert await server.echo({"a": [1, 2]}) == {"a": [1, 2]}
        await server.log("hello from a test")
        ids = [s["id"] for s in await server.list_services()]
        assert "default/workspace-manager:default" in ids
        # UI calls with no browser attached return at once
        assert await server.showMessage("nobody is watching") is None
        assert await server.confirm("really?") is None
        await server.setConfig("threshold", {"value": 0.5})
        assert await server.getConfig("threshold") == {"value": 0.5}
        assert await server.getConfig("unset") is None
    finally:
        await server.disconnect()


async def test_register_get_unregister_between_clients(hub):
    provider = await connect(hub.url, token=hub.token, client_id="provider-1")
    user = await connect(hub.url, token=hub.token, client_id="user-1")
    try:
        await provider.register_service({"id": "math", "name": "Math", "square": lambda x: x * x})
        listed = {s["id"]: s for s in await user.list_services()}
        assert listed["default/provider-1:math"]["name"] == "Math"
        svc = await user.get_service("provider-1:math")
        assert await svc.square(7) == 49
        bare = await user.get_service("math")
        assert await bare.square(3) == 9
        await provider.unregister_service("math")
        with pytest.raises(Exception, match="Service not found"):
            await user.get_service("provider-1:math")
    finally:
        await provider.disconnect()
        await user.disconnect()


async def test_services_vanish_with_their_client(hub):
    provider = await connect(hub.url, token=hub.token, client_id="provider-2", reconnect=False)
    user = await connect(hub.url, token=hub.token, client_id="user-2")
    try:
        await provider.export({"hi": lambda: "hi"})
        assert "default/provider-2:default" in [s["id"] for s in await user.list_services()]
        await provider.disconnect()
        for _ in range(50):
            if "default/provider-2:default" not in [s["id"] for s in await user.list_services()]:
                break
        assert "default/provider-2:default" not in [s["id"] for s in await user.list_services()]
        with pytest.raises(Exception, match=r"not found|not connected"):
            await user.get_service("provider-2:default")
    finally:
        await user.disconnect()


async def test_client_id_in_use_is_refused(hub):
    first = await connect(hub.url, token=hub.token, client_id="twin")
    try:
        with pytest.raises(PermissionError, match="already connected"):
            await connect(hub.url, token=hub.token, client_id="twin", reconnect=False)
    finally:
        await first.disconnect()


async def test_plugin_ids_are_reserved_for_their_kernels(hub):
    with pytest.raises(PermissionError, match="plugin id"):
        await connect(hub.url, token=hub.token, client_id="crasher", reconnect=False)


def test_unmodified_imjoy_client(hub, imjoy_python):
    """The contract: imjoy_rpc.hypha.connect_to_server, unmodified, in its own environment."""
    out = run_client(str(imjoy_python), str(HERE / "imjoy_client.py"), hub.url, hub.token, "full")
    assert out["workspace"] == "default"
    assert "default/workspace-manager:default" in out["services"]
    assert out["echo"] == {"x": [1, 2, 3]}
    assert out["greet"] == "Hello, imjoy!"
    assert out["hello"] == "Hello, client!"
    assert out["add"] == 5
    assert "boom" in out["fail"]
    assert out["invert_ok"] and out["big_ok"]
    assert out["own_service"] == 42
    assert "disconnected" in out["die"]
    assert out["die_s"] < 5, "a call to a plugin that dies must fail promptly"
    assert out["after_restart"] == "pong"
    assert "default/crasher:default" in out["services_after"]


def test_unmodified_imjoy_client_bad_token(hub, imjoy_python):
    out = run_client(str(imjoy_python), str(HERE / "imjoy_client.py"), hub.url, hub.token, "bad-token")
    assert "permission_error" in out


def test_npm_imjoy_rpc_client(hub, js_client):
    """The browser's client, hyphaWebsocketClient from the npm package, against the same router."""
    out = run_client(*js_client, hub.url, hub.token)
    assert out["workspace"] == "default"
    assert "default/workspace-manager:default" in out["services"]
    assert out["echo"] == {"a": [1, 2], "s": "x"}
    assert out["hello"] == "Hello, js!"
    assert out["invert"] == {"shape": [4, 4], "dtype": "uint16", "values": list(range(15, -1, -1))}
    assert out["own"] == 42
    assert "boom" in out["fail"]


async def test_ui_calls_reach_an_attached_app(hub):
    """A client offering the imjoy-api service (the web app) receives the plugins' UI calls."""
    shown: list[str] = []
    app = await connect(hub.url, token=hub.token, client_id="fake-app-window")
    try:
        await app.register_service(
            {"id": "imjoy-api", "showMessage": shown.append, "confirm": lambda text: text.endswith("?")}
        )
        hello = await app.get_plugin("hello")
        assert await hello.show("cells segmented") == "cells segmented"
        assert shown == ["cells segmented"]
        assert await app.confirm("continue?") is True
    finally:
        await app.disconnect()
    # with no app attached any more, UI calls are logged and return at once
    server = await connect(hub.url, token=hub.token)
    try:
        assert await (await server.get_plugin("hello")).show("nobody") == "nobody"
    finally:
        await server.disconnect()


async def test_ui_calls_go_to_the_tab_that_made_the_call_not_the_newest(hub):
    """Two tabs of the app: what a plugin shows during an op call reaches the tab that called it."""
    shown: dict[str, list[str]] = {"first": [], "second": []}
    tabs = {name: await connect(hub.url, token=hub.token, client_id=f"app-{name}-tab") for name in shown}
    try:
        for name, tab in tabs.items():
            await tab.register_service({"id": "imjoy-api", "showMessage": shown[name].append})
        for name in ("first", "second", "first"):
            plugin = await tabs[name].get_plugin("crasher")
            await plugin.report(f"for the {name} tab")
        assert shown == {"first": ["for the first tab"] * 2, "second": ["for the second tab"]}
    finally:
        for tab in tabs.values():
            await tab.disconnect()


async def test_the_app_api_is_reached_only_through_the_manager(hub):
    """A plugin (or any client) cannot call the app's api directly to pose as someone else, even in chunks."""
    calls: list[tuple[str, str, list]] = []
    app = await connect(hub.url, token=hub.token, client_id="app-under-test")
    other = await connect(hub.url, token=hub.token, client_id="posing-client")
    try:
        await app.register_service(
            {"id": "imjoy-api", "dispatch": lambda caller, name, args: calls.append((caller, name, args))}
        )
        hello = await app.get_plugin("hello")
        await hello.show("through the manager")
        assert calls == [("hello", "showMessage", ["through the manager"])]
        direct = await other.get_service("app-under-test:imjoy-api")
        with pytest.raises(Exception, match="reached through the workspace manager"):
            await direct.dispatch("hub", "prompt", ["re-enter your token"])
        with pytest.raises(Exception, match="reached through the workspace manager"):
            await direct.dispatch("hub", "prompt", ["x" * 1_500_000])  # sent in chunks
        await hello.show("still fine")
        assert [c[0] for c in calls] == ["hello", "hello"]
    finally:
        await other.disconnect()
        await app.disconnect()
