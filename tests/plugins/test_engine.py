"""Plugins in real Jupyter kernels: start on first use, errors, crashes, restart."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from scopeflow.rpc.client import connect


@pytest.fixture
async def server(hub):
    client = await connect(hub.url, token=hub.token)
    yield client
    await client.disconnect()


async def test_first_use_starts_the_kernel(hub, server):
    await server.get_plugin("crasher")  # may already run: then this is instant
    status = hub.json("/api/plugins/crasher")["status"]
    assert status["state"] == "ready"
    assert status["kernel_id"]
    crasher = await server.get_plugin("crasher")
    assert await crasher.ping() == "pong"
    image = np.arange(20, dtype="uint16").reshape(4, 5)
    out = await crasher.invert(image)
    assert out.dtype == np.uint16 and np.array_equal(out, 19 - image)
    zeros = await crasher.zeros(3, 2)
    assert zeros.shape == (3, 2) and zeros.dtype == np.uint16


async def test_plugins_call_each_other_and_the_imjoy_api(hub, server):
    crasher = await server.get_plugin("crasher")
    caller = await server.get_plugin("caller")  # its setup calls api.showProgress and api.showMessage
    assert await caller.pid_of_crasher() == await crasher.pid() != hub.process.pid
    messages = [entry["message"] for entry in hub.json("/api/plugins/caller/logs")["logs"]]
    assert any("showProgress: 50" in m for m in messages), messages
    assert any("showMessage: 'caller ready'" in m for m in messages), messages


async def test_plugin_error_carries_message_and_traceback(server):
    crasher = await server.get_plugin("crasher")
    with pytest.raises(Exception) as info:
        await crasher.boom("the sample is empty")
    text = str(info.value)
    assert "the sample is empty" in text
    assert "ValueError" in text and "crasher.py" in text
    assert await crasher.ping() == "pong"  # still alive


async def test_api_calls_from_a_worker_thread(hub, server):
    crasher = await server.get_plugin("crasher")
    assert await crasher.report("thread says hi") == "thread says hi"
    logs = hub.json("/api/plugins/crasher/logs")["logs"]
    assert any("report: thread says hi" in entry["message"] for entry in logs)


async def test_kernel_death_fails_pending_call_promptly_and_restarts(hub, server):
    crasher = await server.get_plugin("crasher")
    first_pid = await crasher.pid()
    started = time.monotonic()
    with pytest.raises(Exception, match="disconnected"):
        await crasher.slow_die(0.3)
    assert time.monotonic() - started < 10
    for _ in range(50):
        status = hub.json("/api/plugins/crasher")["status"]
        if status["state"] == "crashed":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "crashed"
    assert status["error"]
    assert hub.request("/api/hub")[0] == 200  # the hub is still here
    crasher = await server.get_plugin("crasher")  # next request starts it again
    assert await crasher.pid() != first_pid
    assert hub.json("/api/plugins/crasher")["status"]["state"] == "ready"


async def test_failing_setup_reports_traceback(hub, server):
    with pytest.raises(Exception, match="setup failed on purpose"):
        await server.get_plugin("broken-setup")
    status = hub.json("/api/plugins/broken-setup")["status"]
    assert status["state"] == "crashed"
    assert "setup failed on purpose" in status["error"]
    assert "Traceback" in status["error"] or "RuntimeError" in status["error"]


async def test_import_error_reports_the_missing_module(hub, server):
    with pytest.raises(Exception, match="this_module_does_not_exist"):
        await server.get_plugin("import-error")
    assert hub.json("/api/plugins/import-error")["status"]["state"] == "crashed"


def test_rest_start_stop_restart(hub):
    assert hub.json("/api/plugins/caller/start", "POST")["state"] == "ready"
    kernel = hub.json("/api/plugins/caller")["status"]["kernel_id"]
    restarted = hub.json("/api/plugins/caller/restart", "POST")
    assert restarted["state"] == "ready" and restarted["kernel_id"] != kernel
    assert hub.json("/api/plugins/caller/stop", "POST")["state"] == "stopped"
    status, body = hub.request("/api/plugins/broken-setup/start", "POST")
    assert status == 500 and b"setup failed on purpose" in body
    assert hub.request("/api/plugins/no-such-plugin/start", "POST")[0] == 404


@pytest.mark.hub
@pytest.mark.parametrize("gateway_token", ["", "gateway-secret-9"])
def test_plugin_kernels_on_a_jupyter_kernel_gateway(tmp_path, monkeypatch, gateway_token):
    """--gateway-url: plugin kernels start on a (here: local) Jupyter Kernel Gateway, unchanged; one that
    requires a token (JUPYTER_GATEWAY_AUTH_TOKEN) too, its channels websocket included."""
    import subprocess
    import sys
    import urllib.request

    from conftest import HUB_PLUGINS, free_port, start_hub, stop_hub

    port = free_port()
    token_option = [f"--KernelGatewayApp.auth_token={gateway_token}"] if gateway_token else []
    if gateway_token:
        monkeypatch.setenv("JUPYTER_GATEWAY_AUTH_TOKEN", gateway_token)
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            *token_option,
        ],
        stdout=(tmp_path / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until the gateway answers
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api", headers={"Authorization": f"token {gateway_token}"}
                )
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and gateway.poll() is None, "the gateway did not start"
                time.sleep(0.2)
        hub = start_hub(
            tmp_path, "--plugins-dir", str(HUB_PLUGINS), "--gateway-url", f"http://127.0.0.1:{port}"
        )
        try:

            async def use() -> tuple[str, int]:
                server = await connect(hub.url, token=hub.token)
                try:
                    crasher = await server.get_plugin("crasher")
                    return await crasher.ping(), await crasher.pid()
                finally:
                    await server.disconnect()

            pong, pid = asyncio.run(use())
            assert pong == "pong" and pid != hub.process.pid
            assert "Kernel started" in (tmp_path / "gateway.log").read_text()
        finally:
            stop_hub(hub)
    finally:
        gateway.terminate()
        gateway.wait(20)


def test_concurrent_starts_and_stops_leave_one_kernel(hub):
    """Start/stop/restart requests racing each other never orphan a kernel or lock the plugin out."""
    from concurrent.futures import ThreadPoolExecutor

    actions = ["start", "stop", "start", "restart", "stop", "start"] * 2
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda a: hub.request(f"/api/plugins/caller/{a}", "POST"), actions))
    final = hub.json("/api/plugins/caller/start", "POST")
    assert final["state"] == "ready"
    assert_no_stray_kernels(hub)


def test_listing_kernels_never_fails_while_one_starts(hub):
    """``GET /api/hub`` lists kernels while they start (plugin restarts, each starting the next spare)."""
    import threading

    statuses: list[int] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            status, body = hub.request("/api/hub")
            statuses.append(status)
            if status != 200:
                statuses.append(body)  # type: ignore[arg-type]

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for _ in range(3):
            assert hub.json("/api/plugins/caller/restart", "POST")["state"] == "ready"
    finally:
        done.set()
        poller.join(30)
    assert len(statuses) > 20 and set(statuses) == {200}, statuses[-3:]


def test_failed_starts_leave_no_kernels_behind(hub):
    for _ in range(3):
        hub.request("/api/plugins/import-error/start", "POST")
        hub.request("/api/plugins/import-error/stop", "POST")
    assert_no_stray_kernels(hub)


def assert_no_stray_kernels(hub) -> None:
    """Every kernel belongs to a plugin that runs, but one: the spare the engine keeps for the next start.

    Kernels of crashed plugins shut down in the background: a stray kernel is one still there after 15 s.
    """
    deadline = time.monotonic() + 15
    while True:
        kernels = set(hub.json("/api/hub")["kernels"])
        running = {p["status"]["kernel_id"] for p in hub.json("/api/plugins")["plugins"]} - {None}
        if (running <= kernels and len(kernels - running) <= 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert running <= kernels
    assert len(kernels - running) <= 1, f"more kernels than plugins and a spare: {kernels - running}"


def test_crash_reports_hold_no_secret(hub):
    status, body = hub.request("/api/plugins/import-error/start", "POST")
    assert status == 500 and b"this_module_does_not_exist" in body
    assert hub.token.encode() not in body
    assert "secret" not in json.dumps(hub.json("/api/plugins/import-error")["status"]).lower()
    logs = json.dumps(hub.json("/api/plugins/import-error/logs"))
    assert hub.token not in logs and "plugin_secret" not in logs


async def test_a_plugin_id_cannot_be_squatted(hub, server):
    """A client that took an id before a plugin of that id was installed loses it to the plugin's kernel."""
    squatter = await connect(hub.url, token=hub.token, client_id="late-plugin", reconnect=False)
    await squatter.export({"ping": lambda: "squatter"})
    source = (
        "from scopeflow import op\n"
        "PLUGIN = {'id': 'late-plugin', 'name': 'Late plugin'}\n"
        "@op\n"
        "def ping() -> str:\n"
        "    return 'the real plugin'\n"
    )
    assert hub.request("/api/plugins", "POST", {"source": source, "filename": "late.py"})[0] == 201
    plugin = await server.get_plugin("late-plugin")
    assert await plugin.ping() == "the real plugin"
    assert hub.request("/api/plugins/late-plugin", "DELETE")[0] == 204


@pytest.mark.hub
def test_hub_on_ipv6_loopback_runs_plugins(tmp_path):
    from conftest import HUB_PLUGINS, start_hub, stop_hub

    hub6 = start_hub(tmp_path, "--plugins-dir", str(HUB_PLUGINS), host="::1")
    try:

        async def ping() -> str:
            client = await connect(hub6.url, token=hub6.token)
            try:
                return await (await client.get_plugin("crasher")).ping()
            finally:
                await client.disconnect()

        assert asyncio.run(ping()) == "pong"
    finally:
        stop_hub(hub6)
