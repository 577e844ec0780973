"""Shared fixtures: a real hub on a free loopback port, real kernels, real clients."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from scopeflow.cli.launcher import announced_url
from scopeflow.plugins.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
HUB_PLUGINS = Path(__file__).parent / "hub_plugins"
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HubProcess:
    """A running ``scopeflow serve``."""

    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def request(
        self,
        path: str,
        method: str = "GET",
        body: object = None,
        token: str | None = "default",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = dict(headers or {})
        if token == "default":
            token = self.token
        if token:
            all_headers["Authorization"] = f"token {token}"
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def json(self, path: str, method: str = "GET", body: object = None) -> dict:
        status, data = self.request(path, method, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {data[:500]!r}"
        return json.loads(data) if data else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# Every test is one of three kinds, so that `scripts/test -m unit` runs in seconds while developing:
# browser (headless Chromium), hub (a real hub process, kernels), unit (neither). A test's kind comes from
# its marker, else from its fixtures (`browser`, or any fixture named like `hub`, `wf_hub`, `hubs`); a test
# that starts a hub without being of the hub or browser kind fails, so the kinds cannot silently rot.
KINDS = ("unit", "hub", "browser")
HUB_FIXTURE = re.compile(r"(^|_)hubs?$")
_running_kind: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marked = [k for k in KINDS if item.get_closest_marker(k) is not None]
        if len(marked) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked {' and '.join(marked)}: one kind per test")
        if marked:
            continue
        names = getattr(item, "fixturenames", ())
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
        elif any(HUB_FIXTURE.search(name) for name in names):
            item.add_marker(pytest.mark.hub)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running_kind[:] = [k for k in KINDS if item.get_closest_marker(k) is not None]


def start_hub(
    tmp: Path,
    *extra: str,
    token: str = "test-token-123",
    host: str = "127.0.0.1",
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> HubProcess:
    """A hub on a free loopback port (``env``: extra environment for its process)."""
    if _running_kind == ["unit"]:
        pytest.fail("this test starts a hub: mark it @pytest.mark.hub (or browser)", pytrace=False)
    port = port or free_port()
    data_dir = tmp / "data"
    log_path = tmp / "hub.log"
    env = {**os.environ, **(env or {}), "SCOPEFLOW_TOKEN": token, "JUPYTER_PLATFORM_DIRS": "1"}
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scopeflow.cli.main",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--no-browser",
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    url_host = f"[{host}]" if ":" in host else host
    hub = HubProcess(f"http://{url_host}:{port}", token, data_dir, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hub exited with {process.returncode}:\n{hub.log()}")
        announced = announced_url(hub.log())
        if announced is None:  # not listening yet; the token goes only where our hub announced itself
            time.sleep(0.2)
            continue
        # the port it really took: another process may have taken the free one meanwhile
        hub.url = f"http://{url_host}:{announced.rsplit(':', 1)[1]}"
        try:
            if hub.request("/api/hub")[0] == 200:
                return hub
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"hub did not start:\n{hub.log()}")


def stop_hub(hub: HubProcess) -> None:
    hub.process.terminate()
    try:
        hub.process.wait(20)
    except subprocess.TimeoutExpired:
        hub.process.kill()
        hub.process.wait(10)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub for the session, with the test plugins passed by --plugins-dir."""
    tmp = tmp_path_factory.mktemp("hub")
    running = start_hub(tmp, "--plugins-dir", str(HUB_PLUGINS))
    yield running
    stop_hub(running)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(running.log_path, ARTIFACTS / "hub.log")


@pytest.fixture(scope="session")
def js_client() -> list[str]:
    """The npm imjoy-rpc client under Node, installed from tests/js's lock file."""
    js = Path(__file__).parent / "js"
    if not (js / "node_modules" / "imjoy-rpc").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=js, check=True, capture_output=True)
    return ["node", str(js / "client.js")]


@pytest.fixture(scope="session")
def imjoy_python() -> Path:
    """A small environment with the unmodified imjoy-rpc 0.5.59 client (it needs websockets < 14)."""
    env = ROOT / ".venv-imjoy"
    python = env / "bin" / "python"
    stamp = env / ".ready"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "imjoy-rpc==0.5.59",
                "websockets>=12,<14",
                "numpy",
                "msgpack",
                "shortuuid",
            ],
            check=True,
        )
        stamp.touch()
    return python


@pytest.fixture
def wf_registry(tmp_path: Path) -> Registry:
    """A registry of the test plugins in ``workflow_plugins`` (wf-ops and friends), scanned."""
    registry = Registry(None, [Path(__file__).parent / "workflow_plugins"], tmp_path / "data")
    registry.scan()
    return registry


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's /usr/bin/chromium) for one test module."""
    async with async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        await chromium.close()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain HTTP server on 127.0.0.1 serving tmp_path, like a colleague's web space."""
    with serve_folder(tmp_path) as base:
        yield base, tmp_path


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over plain HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
