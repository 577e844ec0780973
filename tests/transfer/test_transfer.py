"""Out-of-band arrays between real clients and real kernels: exact round trips, lifetimes, bad handles."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.rpc.client import connect
from scopeflow.transfer import segments
from scopeflow.transfer.codec import INLINE_MAX, RTYPE

PLUGINS = Path(__file__).parents[1] / "transfer_plugins"
RNG = np.random.default_rng(7)
BIG = 600_000  # elements: above INLINE_MAX for every dtype below but bool/int8


def hub_prefix(hub: HubProcess) -> str:
    return str(hub.json("/api/transfer?client_id=probe")["hub_prefix"])


def live_segments(hub: HubProcess) -> list[str]:
    """The hub's segments that exist now (its probe left out)."""
    prefix = hub_prefix(hub)
    return [n for n in os.listdir(segments.SHM_DIR) if n.startswith(prefix) and "-00000000-" not in n]


def wait_until(check, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def _hub(tmp: Path, env: dict[str, str] | None = None) -> HubProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    return start_hub(tmp, "--plugins-dir", str(PLUGINS), env=env)


@pytest.fixture(scope="module")
def shm_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = _hub(tmp_path_factory.mktemp("shm-hub"))
    yield running
    stop_hub(running)


@pytest.fixture(scope="module")
def memory_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub without shared memory (as on a machine without /dev/shm): uploads are held in its memory."""
    running = _hub(tmp_path_factory.mktemp("memory-hub"), {"SCOPEFLOW_SHM": "0"})
    yield running
    stop_hub(running)


def held(hub: HubProcess) -> int:
    """How many arrays the hub holds for readers yet to come (segments, or blobs in its memory)."""
    return int(hub.json("/api/transfer?client_id=probe")["held"])


@pytest.fixture
def hubs(shm_hub: HubProcess, http_hub: HubProcess, memory_hub: HubProcess) -> dict[str, HubProcess]:
    return {"shm": shm_hub, "http": http_hub, "memory": memory_hub}


@pytest.fixture(scope="module")
def http_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """Its kernels move arrays over HTTP, as kernels on other hosts would."""
    running = _hub(tmp_path_factory.mktemp("http-hub"), {"SCOPEFLOW_TRANSFER": "http"})
    yield running
    stop_hub(running)


def samples() -> dict[str, np.ndarray]:
    matrix = RNG.random((1200, 700))
    return {
        "float32": RNG.random(BIG).astype("float32"),
        "bool": RNG.random(BIG * 4) > 0.5,
        "uint16": RNG.integers(0, 65535, (800, 900), dtype="uint16"),
        "int8": RNG.integers(-128, 127, BIG * 3, dtype="int8"),
        "float16": RNG.random(BIG).astype("float16"),
        "complex128": (RNG.random(BIG) + 1j * RNG.random(BIG)).astype("complex128"),
        "big-endian float32": RNG.random(BIG).astype(">f4"),
        "big-endian int64": RNG.integers(-(2**40), 2**40, BIG).astype(">i8"),
        "non-contiguous": matrix[::2, ::3],
        "fortran-ordered": np.asfortranarray(matrix),
        "zero-size": np.zeros((0, 5), dtype="float32"),
        "small": np.arange(12, dtype="uint16").reshape(3, 4),
        "0-d": np.array(3.5),
    }


def assert_same(got: np.ndarray, sent: np.ndarray, what: str) -> None:
    assert isinstance(got, np.ndarray), what
    assert got.shape == sent.shape, what
    assert got.dtype == sent.dtype.newbyteorder("="), (what, got.dtype, sent.dtype)
    assert got.dtype.isnative, what
    assert np.array_equal(got, sent), what


@pytest.mark.parametrize("mode", ["shm", "http", "memory"])
async def test_arrays_round_trip_exactly(hubs: dict[str, HubProcess], mode: str) -> None:
    hub = hubs[mode]
    server = await connect(hub.url, token=hub.token, transfer="http" if mode == "memory" else mode)
    try:
        assert server.rpc.transfer.mode == ("http" if mode == "memory" else mode)
        echo = await server.get_plugin("array-echo")
        for what, array in samples().items():
            assert_same(await echo.echo(array), array, what)
        nested = {"a": [samples()["uint16"], {"b": samples()["float32"]}], "c": "text", "d": [1, 2]}
        back = await echo.echo(nested)
        assert_same(back["a"][0], nested["a"][0], "nested in a list")
        assert_same(back["a"][1]["b"], nested["a"][1]["b"], "nested in a dict")
        assert back["c"] == "text" and back["d"] == [1, 2]
        fortran = await echo.describe(np.asfortranarray(RNG.random((800, 600))))
        assert fortran["f_contiguous"] and fortran["writeable"]
    finally:
        await server.disconnect()
    assert wait_until(lambda: held(hub) == 0), held(hub)


async def test_large_arrays_go_out_of_band(shm_hub: HubProcess) -> None:
    server = await connect(shm_hub.url, token=shm_hub.token)
    try:
        echo = await server.get_plugin("array-echo")
        array = RNG.random(INLINE_MAX).astype("float32")
        handle = None
        original = server.rpc.transfer.encode

        def spy(value):  # type: ignore[no-untyped-def]
            nonlocal handle
            handle = original(value)
            return handle

        server.rpc.transfer.encode = spy
        assert_same(await echo.echo(array), array, "4 MB")
        assert handle is not None and handle["name"].startswith(server.rpc.transfer.prefix)
        assert handle["nbytes"] == array.nbytes
        handle = None
        small = np.arange(INLINE_MAX // 8, dtype="float64")  # exactly INLINE_MAX bytes: inline
        assert_same(await echo.echo(small), small, "1 MiB")
        assert handle is None
    finally:
        await server.disconnect()


@pytest.mark.parametrize("mode", ["shm", "http", "memory"])
async def test_64_mb_between_two_plugins(hubs: dict[str, HubProcess], mode: str) -> None:
    """array-relay hands the array to array-echo as if it were local; both sides see numpy arrays."""
    hub = hubs[mode]
    server = await connect(hub.url, token=hub.token, transfer="http" if mode == "memory" else mode)
    try:
        relay = await server.get_plugin("array-relay")
        image = RNG.random((4000, 4000)).astype("float32")  # 64 MB
        assert_same(await relay.relay(image), image, "relayed")
    finally:
        await server.disconnect()
    assert wait_until(lambda: held(hub) == 0), held(hub)


async def test_hub_memory_is_freed_when_the_uploader_goes(memory_hub: HubProcess) -> None:
    server = await connect(memory_hub.url, token=memory_hub.token)
    server.rpc.transfer.encode(RNG.random(300_000))
    await server.rpc.transfer.flush()  # uploaded, never sent: only the hub holds it
    assert held(memory_hub) == 1
    await server.disconnect()
    assert wait_until(lambda: held(memory_hub) == 0), held(memory_hub)


@pytest.mark.parametrize("mode", ["shm", "http"])
async def test_arrays_through_the_workspace_manager(hubs: dict[str, HubProcess], mode: str) -> None:
    """A plugin's api calls carry arrays through the hub's manager out of band too."""
    hub = hubs[mode]
    server = await connect(hub.url, token=hub.token)
    try:
        relay = await server.get_plugin("array-relay")
        image = RNG.random((1000, 1000)).astype("float32")
        result = await relay.through_the_manager(image)
        assert result["manager_reads_handles"]
        assert_same(result["image"], image, "through the manager")
    finally:
        await server.disconnect()
    assert wait_until(lambda: held(hub) == 0), held(hub)


async def test_unread_arrays_of_a_crashed_kernel_are_reclaimed(shm_hub: HubProcess) -> None:
    server = await connect(shm_hub.url, token=shm_hub.token)
    try:
        echo = await server.get_plugin("array-echo")
        names = await echo.leave_unread(3)
        assert all(n in live_segments(shm_hub) for n in names)
        with pytest.raises(Exception, match=r"died|lost its connection|disconnected"):
            await echo.leave_unread(2, True)
        assert wait_until(lambda: live_segments(shm_hub) == []), live_segments(shm_hub)
    finally:
        await server.disconnect()


async def test_unread_arrays_of_a_client_go_with_it(shm_hub: HubProcess) -> None:
    server = await connect(shm_hub.url, token=shm_hub.token)
    handles = [server.rpc.transfer.encode(RNG.random(300_000)) for _ in range(2)]
    assert {h["name"] for h in handles} <= set(live_segments(shm_hub))
    await server.disconnect()
    assert wait_until(lambda: live_segments(shm_hub) == []), live_segments(shm_hub)


@pytest.mark.hub
async def test_nothing_outlives_the_hub(tmp_path: Path) -> None:
    hub = _hub(tmp_path / "one")
    prefix = hub_prefix(hub)
    server = await connect(hub.url, token=hub.token)
    for _ in range(3):
        server.rpc.transfer.encode(RNG.random(300_000))
    mine = [n for n in os.listdir(segments.SHM_DIR) if n.startswith(prefix)]
    assert len(mine) == 4  # three arrays and the probe
    stop_hub(hub)
    await server.disconnect()
    assert [n for n in os.listdir(segments.SHM_DIR) if n.startswith(prefix)] == []

    # a hub killed outright cannot clean up: the next hub on the machine does
    killed = _hub(tmp_path / "two")
    prefix = hub_prefix(killed)
    client = await connect(killed.url, token=killed.token)
    client.rpc.transfer.encode(RNG.random(300_000))
    os.kill(killed.process.pid, signal.SIGKILL)
    killed.process.wait(20)
    await client.disconnect()
    assert len([n for n in os.listdir(segments.SHM_DIR) if n.startswith(prefix)]) == 2
    after = _hub(tmp_path / "three")
    try:
        assert [n for n in os.listdir(segments.SHM_DIR) if n.startswith(prefix)] == []
    finally:
        stop_hub(after)


@pytest.mark.parametrize("mode", ["shm", "http"])
async def test_bad_handles_get_clear_errors(shm_hub: HubProcess, http_hub: HubProcess, mode: str) -> None:
    hub = shm_hub if mode == "shm" else http_hub
    server = await connect(hub.url, token=hub.token, transfer=mode)
    try:
        echo = await server.get_plugin("array-echo")
        prefix = server.rpc.transfer.prefix
        good = {"_rtype": RTYPE, "name": prefix + "0" * 32, "shape": [4], "dtype": "<f4", "nbytes": 16}
        cases = {
            "not an array handle": {**good, "name": "../../etc/passwd"},
            "does not belong to this hub": {**good, "name": "sf-1-abcdef-12345678-" + "0" * 32},
            "do not make a": {**good, "nbytes": 20},
            "bad shape": {**good, "shape": [-4]},
            "bad dtype": {**good, "dtype": "no-such-type"},
            "holds Python objects": {**good, "dtype": "|O", "nbytes": 32},
            "gone": good,
        }
        for message, handle in cases.items():
            with pytest.raises(Exception, match=message):
                await echo.echo({"image": handle})
        # a segment shorter than its handle says: truncated
        short = prefix + "1" * 32
        segments.write(short, memoryview(b"12345678"))
        with pytest.raises(Exception, match="truncated"):
            await echo.echo({"image": {**good, "name": short}})
        assert await echo.echo({"still": "alive"}) == {"still": "alive"}
    finally:
        segments.unlink(prefix + "1" * 32)
        await server.disconnect()


def test_doors_need_credentials(shm_hub: HubProcess) -> None:
    prefix = hub_prefix(shm_hub)
    name = prefix + "12345678-" + "a" * 32
    assert shm_hub.request("/api/transfer?client_id=x", token=None)[0] == 403
    assert shm_hub.request("/api/transfer/" + name, token=None)[0] == 403
    assert shm_hub.request("/api/transfer/" + name, method="DELETE", token="wrong")[0] == 403
    assert shm_hub.request("/api/transfer/" + name, method="PUT", body="x" * 100, token=None)[0] == 403
    assert name not in live_segments(shm_hub)
    assert (
        shm_hub.request(
            "/api/transfer?client_id=array-echo",
            token=None,
            headers={"X-Scopeflow-Plugin": "array-echo nope"},
        )[0]
        == 403
    )
    assert shm_hub.request("/api/transfer/" + name)[0] == 404  # never sent
    assert shm_hub.request("/api/transfer/sf-1-2-3")[0] == 404  # not one of this hub's names


def test_upload_and_download_over_http(shm_hub: HubProcess) -> None:
    import urllib.request

    name = json.loads(shm_hub.request("/api/transfer?client_id=me")[1])["prefix"] + "b" * 32
    data = RNG.bytes(3_000_000)
    req = urllib.request.Request(
        shm_hub.url + "/api/transfer/" + name,
        data=data,
        method="PUT",
        headers={"Authorization": f"token {shm_hub.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as res:
        assert res.status == 201
    assert name in live_segments(shm_hub)  # on this machine, an upload lands in shared memory
    status, again = shm_hub.request("/api/transfer/" + name, method="PUT", body="x")
    assert status == 409, again
    status, body = shm_hub.request("/api/transfer/" + name)
    assert status == 200 and body == data
    assert shm_hub.request("/api/transfer/" + name)[0] == 404  # read once


async def test_object_arrays_are_refused(shm_hub: HubProcess) -> None:
    server = await connect(shm_hub.url, token=shm_hub.token)
    try:
        echo = await server.get_plugin("array-echo")
        with pytest.raises(Exception, match="Python objects"):
            await asyncio.wait_for(echo.echo(np.array([{"a": 1}, None], dtype=object)), 30)
        # returned by a plugin: the call fails at once instead of waiting for its timeout
        with pytest.raises(Exception, match=r"could not be sent.*Python objects"):
            await asyncio.wait_for(echo.unsendable(), 30)
        assert await echo.echo([1]) == [1]
    finally:
        await server.disconnect()


UNMODIFIED = """
import asyncio, json, sys
import numpy as np
from imjoy_rpc.hypha import connect_to_server

async def main(url, token):
    server = await connect_to_server({"server_url": url, "token": token, "method_timeout": 120})
    echo = await server.get_plugin("array-echo")
    big = np.arange(1_500_000, dtype="float32").reshape(1000, 1500)
    made = await echo.make(3)
    back = await echo.echo(big)
    made_ok = np.array_equal(made, np.arange(750_000, dtype="float32"))
    print(json.dumps({"echo": bool(np.array_equal(back, big)), "make": bool(made_ok)}))
    await server.disconnect()

asyncio.run(main(*sys.argv[1:3]))
"""


def test_unmodified_clients_get_large_arrays_inline(shm_hub: HubProcess, imjoy_python: Path) -> None:
    """A client without the codec never receives a handle: kernels send it imjoy-rpc's own encoding."""
    result = subprocess.run(
        [str(imjoy_python), "-c", UNMODIFIED, shm_hub.url, shm_hub.token],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("{"))
    assert json.loads(line) == {"echo": True, "make": True}


@pytest.fixture(scope="module")
def node_arrays() -> list[str]:
    """tests/js/arrays.js under Node, with the lock file's packages (TypeScript compiles transfer.ts)."""
    js = Path(__file__).parents[1] / "js"
    if not (js / "node_modules" / "typescript").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=js, check=True, capture_output=True)
    return ["node", str(js / "arrays.js")]


def test_web_app_codec_under_node(shm_hub: HubProcess, node_arrays: list[str]) -> None:
    """web/src/transfer.ts with the npm imjoy-rpc client: uploads, downloads, inline, nested, F order."""
    command = [*node_arrays, shm_hub.url, shm_hub.token]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(next(x for x in reversed(result.stdout.splitlines()) if x.startswith("{")))
    assert out == {
        "installed": True,
        "float32": True,
        "uploaded": 8_000_000,  # the 8 MB array went up beside its message, and came back as a handle
        "downloaded": 8_000_000,
        "on_socket": [8_000_000, 8_000_000],  # both on the websocket (under 64 MiB)
        "small": True,
        "small_inline": True,
        "nested": True,
        "from_kernel": True,
        "fortran": True,
        "describe": True,
        "stamp": True,
        "plain": True,
    }
    assert wait_until(lambda: live_segments(shm_hub) == []), live_segments(shm_hub)


def test_web_app_codec_type_checks(node_arrays: list[str]) -> None:
    tsc = Path(__file__).parents[1] / "js" / "node_modules" / ".bin" / "tsc"
    source = Path(__file__).parents[2] / "web" / "src" / "transfer.ts"
    command = [str(tsc), "--noEmit", "--strict", "--target", "es2020", "--lib", "es2020,dom", str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_a_declared_length_costs_no_memory_until_the_bytes_come(memory_hub: HubProcess) -> None:
    """An upload that declares 1 GiB and sends nothing must not make the hub hold 1 GiB."""
    prefix = memory_hub.json("/api/transfer?client_id=lazy-uploader")["prefix"]
    name = prefix + "0" * 32
    parts = urlsplit(memory_hub.url)
    before = _rss_mib(memory_hub.process.pid)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            f"PUT /api/transfer/{name} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: token {memory_hub.token}\r\nContent-Length: {1 << 30}\r\n\r\n".encode()
            + b"\0" * 1000
        )
        time.sleep(1.5)
        during = _rss_mib(memory_hub.process.pid)
    assert during - before < 100, (before, during)
    assert memory_hub.request("/api/hub")[0] == 200


KILLED_CLIENT = """
import asyncio, sys
from scopeflow.rpc.client import connect

async def main():
    server = await connect(sys.argv[1], token=sys.argv[2])
    echo = await server.get_plugin("array-echo")
    calls = [asyncio.ensure_future(echo.make_later(1.5, 8)) for _ in range(4)]
    print("calling", flush=True)
    await asyncio.gather(*calls)

asyncio.run(main())
"""


async def test_results_for_a_client_killed_mid_call_are_dropped_at_once(shm_hub: HubProcess) -> None:
    """A client killed while its calls run (kill -9: no goodbye): when the answers come, the hub drops them
    and their arrays at once (they used to wait 15 minutes in /dev/shm), and serves everyone else."""
    before = set(live_segments(shm_hub))
    client = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, shm_hub.url, shm_hub.token], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "calling"
        time.sleep(0.3)
        client.kill()
        client.wait(10)
    finally:
        if client.poll() is None:
            client.kill()
    server = await connect(shm_hub.url, token=shm_hub.token)
    try:
        echo = await server.get_plugin("array-echo")
        assert await echo.echo({"still": "here"}) == {"still": "here"}
        time.sleep(2)  # the dead client's four answers (8 MB each) have come back by now
        assert wait_until(lambda: set(live_segments(shm_hub)) <= before, timeout=5), live_segments(shm_hub)
        assert held(shm_hub) == 0
    finally:
        await server.disconnect()
