"""``scopeflow serve``: options, refusals, and what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import free_port, start_hub, stop_hub
from scopeflow.cli.main import parser, serve_argv


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scopeflow.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_defaults_map_to_jupyter_server_config(tmp_path):
    args = parser().parse_args(
        ["serve", "--data-dir", str(tmp_path), "--plugins-dir", "a", "--plugins-dir", "b"]
    )
    argv = serve_argv(args)
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.port=9527" in argv
    assert "--ServerApp.allow_root=True" in argv
    assert "--KernelManager.autorestart=False" in argv
    assert sum(a.startswith("--Hub.plugins_dirs=") for a in argv) == 2
    assert not any(a.startswith("--Hub.cache_bytes") for a in argv)  # the hub's own default
    budget = serve_argv(parser().parse_args(["serve", "--cache-gib", "0.5"]))
    assert "--Hub.cache_bytes=536870912" in budget


@pytest.mark.hub
def test_refuses_non_loopback_without_explicit_consent(tmp_path):
    result = run_cli(
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        "--no-browser",
        "--data-dir",
        str(tmp_path),
        "--token",
        "t",
    )
    assert result.returncode != 0
    assert "not a loopback address" in result.stdout + result.stderr


@pytest.mark.hub
def test_refuses_to_run_without_a_token(tmp_path):
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        "--no-browser",
        "--data-dir",
        str(tmp_path),
        "--token",
        "",
        env={"SCOPEFLOW_TOKEN": ""},
    )
    assert result.returncode != 0
    assert "needs a token" in result.stdout + result.stderr


@pytest.mark.hub
def test_prints_the_url_to_open(tmp_path):
    hub = start_hub(tmp_path, token="print-me-please")
    try:
        for _ in range(50):
            if "?token=print-me-please" in hub.log():
                break
            time.sleep(0.1)
        assert f"{hub.url}/?token=print-me-please" in hub.log()
    finally:
        stop_hub(hub)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and "scopeflow" in result.stdout


@pytest.mark.hub
def test_stopping_the_hub_stops_its_plugin_kernels(tmp_path):
    import asyncio

    from conftest import HUB_PLUGINS
    from scopeflow.rpc.client import connect

    hub = start_hub(tmp_path, "--plugins-dir", str(HUB_PLUGINS))
    try:

        async def kernel_pid() -> int:
            server = await connect(hub.url, token=hub.token, reconnect=False)
            try:
                return int(await (await server.get_plugin("crasher")).pid())
            finally:
                await server.disconnect()

        pid = asyncio.run(kernel_pid())
        assert os.path.exists(f"/proc/{pid}")
    finally:
        stop_hub(hub)
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/status") as status:
                if "zombie" in status.read().lower():
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"plugin kernel {pid} outlived the hub")
