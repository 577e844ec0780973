"""Plugin environments: each requirement set installed with uv into a layer of its own, the hub untouched.

The layers hold small pure-Python packages from the package index (tabulate, termcolor), so these tests take
seconds; they need the index, as installing a plugin does.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.environments import Environments, RequirementError, plan
from scopeflow.rpc.client import connect

PLUGINS = Path(__file__).parents[1] / "env_plugins"


@pytest.mark.unit
def test_requirements_are_normalised_as_imjoy_wrote_them() -> None:
    found = plan(
        ["numpy", "pip: tabulate==0.8.10  termcolor", "git+https://example.org/a/b.git", "", " scipy "]
    )
    assert found.pip == ["git+https://example.org/a/b.git", "numpy", "scipy", "tabulate==0.8.10", "termcolor"]
    assert plan(["repo: https://example.org/team/tools.git"]).repos == ["https://example.org/team/tools.git"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        ("conda: scikit-image", "conda packages are not installed here"),
        ("cmd: make install", "shell commands are never run"),
        ("pip: --index-url http://x numpy", "pip options"),
        ("numpy>>1", "is not a pip requirement"),
        ("repo: ftp://x", "needs a git URL"),
        ("npm: left-pad", "unknown requirement kind"),
    ],
)
def test_requirements_that_cannot_be_installed_here_say_why(requirement: str, message: str) -> None:
    with pytest.raises(RequirementError, match=message) as caught:
        plan([requirement])
    assert requirement.split()[0].rstrip(":") in str(caught.value)


@pytest.mark.unit
async def test_layers_hold_only_what_the_hub_lacks_and_are_shared_by_equal_sets(tmp_path: Path) -> None:
    envs = Environments(tmp_path / "envs")
    assert await envs.prepare(["numpy", "scipy>=1"]) is None  # the hub has them: no layer at all
    lines: list[str] = []
    old = await envs.prepare(["tabulate==0.8.10"], lines.append)
    assert old is not None and old.installed == ["tabulate==0.8.10"] and "tabulate" in old.modules
    assert any("tabulate" in line for line in lines)  # the installer's output reaches the caller
    new = await envs.prepare(["pip: tabulate==0.9.0 termcolor"])
    assert new is not None and new.key != old.key
    assert new.packages["tabulate"] == "0.9.0" and "termcolor" in new.packages
    started = time.monotonic()
    again = await envs.prepare(["tabulate==0.8.10"])
    assert again is not None and again.key == old.key and time.monotonic() - started < 1
    assert (Path(old.paths[0]) / "tabulate.py").is_file() or (Path(old.paths[0]) / "tabulate").is_dir()
    # the hub's own environment is untouched
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("tabulate")
    sizes = {info["key"]: info["bytes"] for info in envs.listing()}
    assert set(sizes) == {old.key, new.key} and all(size > 0 for size in sizes.values())
    envs.hold(new.key, "a-plugin")
    envs.hold(new.key, "another-plugin")
    assert envs.prune(keep_bytes=0) == [old.key]  # the one a kernel uses stays
    assert [(info["key"], info["in_use"]) for info in envs.listing()] == [(new.key, True)]
    # another process on the same data dir sees the lease and keeps it too
    other = Environments(tmp_path / "envs")
    assert other.prune(everything=True) == [] and other.in_use(new.key)
    envs.release("a-plugin")
    assert other.in_use(new.key)  # one user is left
    envs.release("another-plugin")
    assert not other.in_use(new.key) and other.prune(everything=True) == [new.key]


@pytest.mark.unit
async def test_a_package_that_does_not_exist_fails_fast_naming_it(tmp_path: Path) -> None:
    envs = Environments(tmp_path / "envs")
    started = time.monotonic()
    with pytest.raises(RequirementError, match="scopeflow-test-no-such-package-zz") as caught:
        await envs.prepare(["scopeflow-test-no-such-package-zz==1.0"])
    assert time.monotonic() - started < 60
    assert "could not install" in str(caught.value)
    assert envs.listing() == [] and not list((tmp_path / "envs").glob(".*"))  # nothing half-built is left


@pytest.fixture(scope="module")
def env_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("envs"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)


@pytest.mark.hub
async def test_plugins_pinning_conflicting_versions_answer_side_by_side(env_hub: HubProcess) -> None:
    server = await connect(env_hub.url, token=env_hub.token)
    try:
        timings = {}
        for name in ("Hub Has It", "Old Tables", "New Tables"):
            started = time.monotonic()
            await server.get_plugin(name)
            timings[name] = time.monotonic() - started
        old, new = await server.get_plugin("Old Tables"), await server.get_plugin("New Tables")
        assert await old.version() == "0.8.10"
        versions = await new.versions()
        assert versions["tabulate"] == "0.9.0" and versions["termcolor"]
        assert "1  2" in await old.table([[1, 2], [3, 4]])
        status = env_hub.json("/api/plugins/old-tables")["status"]
        assert status["environment"]["packages"] == {"tabulate": "0.8.10"}
        hub_has_it = env_hub.json("/api/plugins/hub-has-it")["status"]["environment"]
        assert hub_has_it["key"] is None and "numpy" in hub_has_it["packages"]
        logs = env_hub.json("/api/plugins/old-tables/logs")["logs"]
        assert any("tabulate" in entry["message"] for entry in logs)  # the installer's output
        # a layer a running kernel uses is leased: `scopeflow envs prune` in another process keeps it
        lease = next((env_hub.data_dir / "envs" / status["environment"]["key"]).glob(".in-use-by-*"))
        assert lease.name == f".in-use-by-{env_hub.process.pid}"
        assert env_hub.request("/api/plugins/old-tables/stop", "POST", {})[0] == 200
        assert not lease.exists()  # stopped: prunable again
        print("start-up seconds:", {k: round(v, 2) for k, v in timings.items()})
    finally:
        await server.disconnect()


@pytest.mark.hub
async def test_requirements_that_cannot_be_installed_crash_the_plugin_saying_why(
    env_hub: HubProcess,
) -> None:
    server = await connect(env_hub.url, token=env_hub.token)
    try:
        for name, reason in (
            ("Unavailable", "scopeflow-test-no-such-package-zz"),
            ("Conda Only", "conda packages are not installed here"),
        ):
            started = time.monotonic()
            with pytest.raises(Exception, match=reason):
                await server.get_plugin(name)
            assert time.monotonic() - started < 60
            plugin_id = name.lower().replace(" ", "-")
            status = env_hub.json(f"/api/plugins/{plugin_id}")["status"]
            assert status["state"] == "crashed" and reason in status["error"]
    finally:
        await server.disconnect()


@pytest.mark.hub
async def test_a_workflow_pins_the_resolved_packages_and_says_when_they_differ(env_hub: HubProcess) -> None:
    server = await connect(env_hub.url, token=env_hub.token)
    try:
        await server.get_plugin("New Tables")  # its environment is built at its first start
    finally:
        await server.disconnect()
    plugin = env_hub.json("/api/plugins/new-tables")
    packages = plugin["status"]["environment"]["packages"]
    doc = {
        "format": "scopeflow.workflow",
        "version": 1,
        "nodes": [{"id": "v", "plugin": "New Tables", "op": "versions"}],  # by its name, as ImJoy has it
        "plugins": {"New Tables": {"version": "0.1.0", "sha256": plugin["sha256"], "environment": packages}},
    }
    check = env_hub.json("/api/workflows/check", "POST", doc)
    assert check["ok"], check["errors"]
    assert [p["state"] for p in check["pins"]] == ["ok"]
    doc["plugins"]["New Tables"]["environment"] = {**packages, "tabulate": "0.8.10"}
    [pin] = env_hub.json("/api/workflows/check", "POST", doc)["pins"]
    assert pin["state"] == "environment" and pin["changes"] == ["tabulate 0.8.10 → 0.9.0"]


def _git_repository(folder: Path, module: str, value: str) -> str:
    """A git repository holding a tiny installable package (``module.VALUE``), as a file:// URL."""
    folder.mkdir(parents=True)
    (folder / f"{module}.py").write_text(f"VALUE = {value!r}\n")
    (folder / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{module}"\nversion = "1.0"\n\n[tool.setuptools]\npy-modules = ["{module}"]\n'
    )
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(folder), *args] if args[0] == "init" else git + args, check=True)
    return f"file://{folder}"


@pytest.mark.unit
async def test_git_and_repo_requirements_are_installed_and_cloned(tmp_path: Path) -> None:
    package = _git_repository(tmp_path / "pkg", "sf_git_probe", "from git")
    tools = _git_repository(tmp_path / "tools", "sf_repo_probe", "from a repo")
    envs = Environments(tmp_path / "envs")
    layer = await envs.prepare([f"git+{package}", f"repo: {tools}"])
    assert layer is not None and "sf_git_probe" in layer.modules
    assert any(p.endswith("/repos/tools") for p in layer.paths)  # the clone goes on the path, as in ImJoy
    assert (Path(layer.paths[0]) / "sf_git_probe.py").read_text() == "VALUE = 'from git'\n"
    clone = next(Path(p) for p in layer.paths if p.endswith("/repos/tools"))
    assert (clone / "sf_repo_probe.py").is_file()


@pytest.mark.unit
async def test_without_network_the_cache_serves_and_the_rest_fails_fast_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    online = Environments(tmp_path / "online")
    assert await online.prepare(["tabulate==0.8.10"]) is not None  # in uv's cache from now on
    with socket.socket() as closed:  # a proxy that refuses every connection: as good as no network
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    offline = Environments(tmp_path / "offline")
    lines: list[str] = []
    layer = await offline.prepare(["tabulate==0.8.10"], lines.append)
    assert layer is not None and layer.packages == {"tabulate": "0.8.10"}
    assert any("cached on this computer" in line for line in lines)
    started = time.monotonic()
    with pytest.raises(RequirementError) as caught:
        await offline.prepare(["scopeflow-test-never-cached-zz==1.0"])
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "scopeflow-test-never-cached-zz" in message and "offline" in message


def _stalling_server() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback HTTP server that accepts connections and never answers (a network that hangs)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return server, held


@pytest.mark.hub
def test_an_install_that_hangs_outlasts_the_start_timeout_and_stop_cancels_it(tmp_path: Path) -> None:
    """Installing has timeouts of its own: the kernel's start-up timeout (here 3 s) counts only after it.
    Stop (the app's Cancel) ends an install at once, leaving nothing half-built and no installer running."""
    server, held = _stalling_server()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/tools.git"
    source = f'PLUGIN = {{"name": "Hanging Install", "requirements": ["repo:{url}"]}}\n'
    hub = start_hub(tmp_path, "--start-timeout", "3")
    starting = threading.Thread(
        target=hub.request, args=("/api/plugins/hanging-install/start", "POST", {}), daemon=True
    )
    try:
        assert hub.request("/api/plugins", "POST", {"source": source, "filename": "hang.py"})[0] == 201
        starting.start()  # answers only once the plugin is ready or crashed
        deadline = time.monotonic() + 30
        while not any("cloning" in m for m in logs(hub, "hanging-install")):
            assert time.monotonic() < deadline, "the install never started"
            time.sleep(0.1)
        time.sleep(4)  # past the start-up timeout
        assert hub.json("/api/plugins/hanging-install")["status"]["state"] == "starting"
        started = time.monotonic()
        assert hub.request("/api/plugins/hanging-install/stop", "POST", {})[0] == 200
        assert time.monotonic() - started < 10
        starting.join(10)
        assert not starting.is_alive()
        status = hub.json("/api/plugins/hanging-install")["status"]
        assert (status["state"], status["environment"]) == ("stopped", None)
        assert not list((hub.data_dir / "envs").glob(".*.part")), "a half-built layer was left"
        assert not _git_clones_of(url), "the installer was left running"
    finally:
        stop_hub(hub)
        server.close()
        for connection in held:
            connection.close()


def _git_clones_of(url: str) -> list[str]:
    found = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if url in line and "git" in line]


def logs(hub: HubProcess, plugin: str) -> list[str]:
    return [entry["message"] for entry in hub.json(f"/api/plugins/{plugin}/logs")["logs"]]


@pytest.mark.hub
async def test_a_package_the_kernel_imported_already_is_not_swapped_and_the_log_says_so(
    env_hub: HubProcess,
) -> None:
    server = await connect(env_hub.url, token=env_hub.token)
    try:
        plugin = await server.get_plugin("Old Comm")
        loaded = await plugin.loaded()
    finally:
        await server.disconnect()
    assert loaded == importlib.metadata.version("comm") != "0.2.2"  # Jupyter's own copy
    warnings = [m for m in logs(env_hub, "old-comm") if m.startswith("warning: the kernel had imported")]
    assert warnings and "comm" in warnings[0] and "not the ones it asks for" in warnings[0]
