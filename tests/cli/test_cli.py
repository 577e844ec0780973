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
    """To a file (a log, which a plugin kernel running as the same user could read), a token the user gave
    is shown as ``...``; the URL is there all the same."""
    hub = start_hub(tmp_path, token="print-me-please")
    try:
        for _ in range(50):
            if "?token=..." in hub.log():
                break
            time.sleep(0.1)
        assert f"{hub.url}/?token=..." in hub.log()
        assert "print-me-please" not in hub.log()
    finally:
        stop_hub(hub)


@pytest.mark.hub
def test_prints_a_generated_token(tmp_path):
    """With no token given, the hub makes one, and the printed URL is the only place to learn it."""
    import json
    import re
    import urllib.request

    from scopeflow.cli.launcher import announced_url

    env = {k: v for k, v in os.environ.items() if k not in ("SCOPEFLOW_TOKEN", "JUPYTER_TOKEN")}
    log_path = tmp_path / "hub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scopeflow.cli.main", "serve", "--no-browser", "--port", str(free_port()),
             "--data-dir", str(tmp_path / "data")],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (url := announced_url(log_path.read_text())) is None:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        found = re.search(r"Open this URL in a browser:\s+\S+\?token=(\S+)", log_path.read_text())
        assert found is not None and len(found.group(1)) >= 32
        request = urllib.request.Request(
            url + "/api/hub", headers={"Authorization": f"token {found.group(1)}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["hub"] == "scopeflow"
        assert log_path.read_text().count(found.group(1)) == 1  # the announcement only, no log line
    finally:
        process.terminate()
        process.wait(30)


def test_token_options_leave_no_token_behind(monkeypatch, tmp_path):
    """--token-fd reads the token from a descriptor; every token variable leaves os.environ, which plugin
    kernels inherit; --token is taken out of a command line."""
    from scopeflow.cli.main import TOKEN_VARIABLES, take_token, without_token

    read_end, write_end = os.pipe()
    os.write(write_end, b"from-a-pipe\n")
    os.close(write_end)
    for name in TOKEN_VARIABLES[:2]:
        monkeypatch.setenv(name, "from-the-environment")
    args = parser().parse_args(["serve", "--token-fd", str(read_end)])
    assert take_token(args, ["serve"]) == "from-a-pipe"
    assert not any(name in os.environ for name in TOKEN_VARIABLES)
    monkeypatch.setenv("SCOPEFLOW_TOKEN", "from-the-environment")
    assert take_token(parser().parse_args(["serve"]), ["serve"]) == "from-the-environment"
    assert "SCOPEFLOW_TOKEN" not in os.environ
    (tmp_path / "token").write_text("from-a-file\n")
    monkeypatch.setenv("JUPYTER_TOKEN_FILE", str(tmp_path / "token"))
    assert take_token(parser().parse_args(["serve"]), ["serve"]) == "from-a-file"
    assert take_token(parser().parse_args(["serve"]), ["serve"]) is None  # the hub generates one
    assert without_token(["serve", "--token", "T", "--port", "1", "--token=U", "--no-browser"]) == [
        "serve", "--port", "1", "--no-browser",
    ]  # fmt: skip


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
