"""RPC benchmark: scopeflow calls and array transfers beside baselines measured in the same run.

    python bench/rpc.py [--json FILE] [--sizes 4,64,256] [--repeat 3] [--tiny 300]

Baselines: a raw loopback websocket echo to another process (tiny message, and the same bytes as each
array), and a plain in-process copy of each array. Figures:

- tiny call round trip, client → hub → plugin kernel → back, and kernel → hub → kernel → back;
- float32 array round trips (sent, returned) of each size: client ↔ kernel and kernel ↔ kernel, through
  shared memory (everything on one machine) and through HTTP to the hub (as for kernels on other hosts;
  a second hub whose kernels are told to use HTTP and which keeps no spare kernel), and through
  imjoy-rpc's own chunked messages (the path before out-of-band arrays) for sizes up to 64 MB;
- the web app's codec (web/src/transfer.ts) with the npm imjoy-rpc client ↔ kernel, arrays on the
  connection's websocket (up to 64 MiB; HTTP above): in Chromium (tiny call, arrays, beside a raw websocket
  echo and a copy made in the same page; the issue's goal is at least 0.5x the raw echo), and in Node;
- peak resident memory of the client, the hub and the kernels;
- plugin cold start: launch to service ready, as the engine measures it, from the engine's spare kernel
  (once it is ready) and, on the second hub, starting a kernel each time.

Bandwidth is bytes moved both ways over the round trip time. Ratios are what to compare across
machines; absolute figures are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _browser
from _hub import BenchHub, free_port, peak_rss_mb
from scopeflow.rpc.client import connect

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
INLINE_UP_TO = 64  # MB: imjoy-rpc's chunked path is timed up to this size (it needs seconds beyond)


def _echo_server(port: int, ready: Any) -> None:
    async def echo(ws):  # type: ignore[no-untyped-def]
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", port, max_size=None, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


def make_array(size: int) -> np.ndarray:
    return np.random.default_rng(0).random(size * MB // 4).astype("float32")


def copy_round_trips(sizes: list[int], repeat: int) -> dict[str, float]:
    """A plain in-process copy there and back: the memory bandwidth ceiling."""
    out: dict[str, float] = {}
    for size in sizes:
        array = make_array(size)
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            there = array.copy()
            back = there.copy()
            best = min(best, time.perf_counter() - start)
            del there, back
        out[f"{size}MB_s"] = best
    return out


async def raw_round_trips(port: int, sizes: list[int], tiny_n: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with ws_connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None) as ws:
        for _ in range(50):
            await ws.send(b"x")
            await ws.recv()
        times = []
        for _ in range(tiny_n):
            start = time.perf_counter()
            await ws.send(b"x" * 64)
            await ws.recv()
            times.append(time.perf_counter() - start)
        out["tiny_ms"] = statistics.median(times) * 1000
        for size in sizes:
            payload = make_array(size).tobytes()
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                await ws.send(payload)
                await ws.recv()
                best = min(best, time.perf_counter() - start)
            out[f"{size}MB_s"] = best
    return out


async def client_round_trips(plugin: Any, sizes: list[int], repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for size in sizes:
        array = make_array(size)
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            back = await plugin.echo_array(array)
            best = min(best, time.perf_counter() - start)
            if not np.array_equal(back, array):
                raise AssertionError(f"{size} MB came back different")
            del back
        out[f"{size}MB_s"] = best
    return out


async def tiny_ms(plugin: Any, count: int) -> float:
    for _ in range(50):
        await plugin.ping()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await plugin.ping()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def run_hub(hub: BenchHub, sizes: list[int], args: argparse.Namespace, full: bool) -> dict[str, Any]:
    """Every figure one hub gives: client ↔ kernel, kernel ↔ kernel, and (if ``full``) the rest."""
    out: dict[str, Any] = {}
    mode = "http" if hub.env.get("SCOPEFLOW_TRANSFER") == "http" else None
    server = await connect(hub.url, token=hub.token, transfer=mode)
    spare = hub.env.get("SCOPEFLOW_SPARE_KERNEL") != "0"
    if spare:
        await wait_for_spare(hub)
    start = time.perf_counter()
    echo = await server.get_plugin("bench-echo")
    out["client_cold_start_s"] = time.perf_counter() - start
    out["cold_start_s"] = json.loads(hub.get("/api/plugins/bench-echo"))["status"]["startup_seconds"]
    if spare:
        await wait_for_spare(hub)
    relay = await server.get_plugin("bench-relay")
    out["second_cold_start_s"] = json.loads(hub.get("/api/plugins/bench-relay"))["status"]["startup_seconds"]
    out["mode"] = server.rpc.transfer.mode
    if full:
        out["tiny_ms"] = await tiny_ms(echo, args.tiny)
        out["kernel_tiny_ms"] = await relay.tiny_ms(args.tiny)
    out["client"] = await client_round_trips(echo, sizes, args.repeat)
    out["kernel"] = {}
    relay_peak = 0.0
    for size in sizes:
        result = await relay.round_trip_s(size, args.repeat)
        out["kernel"][f"{size}MB_s"] = result["seconds"]
        relay_peak = max(relay_peak, result["peak_rss_mb"])
    await server.disconnect()
    if full:
        inline = await connect(hub.url, token=hub.token, transfer="inline")
        echo = await inline.get_plugin("bench-echo")
        out["inline"] = await client_round_trips(echo, [s for s in sizes if s <= INLINE_UP_TO], args.repeat)
        echo_pid = await echo.pid()
        await inline.disconnect()
        out["node"] = node_round_trips(hub, sizes)
        why_not = _browser.missing()
        if why_not:
            print(f"(no browser figures: {why_not})", file=sys.stderr)
        else:
            out["browser"] = await _browser.browser_round_trips(
                hub.url, hub.token, sizes, args.repeat, args.raw_port, args.page_timeout
            )
        out["peak_rss_mb"] = {
            "client": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "hub": hub.peak_rss_mb(),
            "kernel (bench-echo)": peak_rss_mb(echo_pid),
            "kernel (bench-relay)": relay_peak,
        }
    return out


def node_round_trips(hub: BenchHub, sizes: list[int]) -> dict[str, float]:
    """The web app's codec (web/src/transfer.ts) under Node with the npm imjoy-rpc client; {} without Node."""
    script = ROOT / "tests" / "js" / "arrays.js"
    if not shutil.which("node") or not (script.parent / "node_modules" / "typescript").is_dir():
        print("(no Node client figures: run `npm ci` in tests/js)", file=sys.stderr)
        return {}
    command = ["node", str(script), hub.url, hub.token, ",".join(map(str, sizes))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        print(f"(the Node client failed: {result.stderr[-500:]})", file=sys.stderr)
        return {}
    line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("{"))
    return dict(json.loads(line)["timings"])


async def wait_for_spare(hub: BenchHub, timeout: float = 60) -> None:
    """Until the engine's spare kernel is up and idle (its imports done), as it is a while after start."""
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        owned = {p["status"]["kernel_id"] for p in json.loads(hub.get("/api/plugins"))["plugins"]}
        spare = [k for k in json.loads(hub.get("/api/hub"))["kernels"] if k not in owned]
        idle_since = (idle_since or time.monotonic()) if spare else None
        if idle_since and time.monotonic() - idle_since > 2:  # started, and its imports done by now
            return
        await asyncio.sleep(0.1)
    print("(the spare kernel was not ready in time)", file=sys.stderr)


def rate(size: int, seconds: float) -> float:
    return 2 * size / seconds


def report(ours: dict[str, Any], http: dict[str, Any], raw: dict[str, float], copy: dict[str, float],
           sizes: list[int]) -> None:  # fmt: skip
    print(f"{'figure':<44}{'scopeflow':>11}{'raw ws':>10}{'copy':>10}{'÷ raw':>8}{'÷ copy':>8}")
    tiny = [("tiny call client → kernel (ms)", ours["tiny_ms"]),
            ("tiny call kernel → kernel (ms)", ours["kernel_tiny_ms"])]  # fmt: skip
    for name, value in tiny:
        print(f"{name:<44}{value:>11.2f}{raw['tiny_ms']:>10.2f}{'':>10}{value / raw['tiny_ms']:>8.2f}")
    for size in sizes:
        key = f"{size}MB_s"
        base, mem = rate(size, raw[key]), rate(size, copy[key])
        rows = [
            ("client ↔ kernel, shared memory", ours["client"][key]),
            ("client ↔ kernel, HTTP", http["client"][key]),
            ("kernel ↔ kernel, shared memory", ours["kernel"][key]),
            ("kernel ↔ kernel, HTTP", http["kernel"][key]),
        ]
        if key in ours.get("node", {}):
            rows.append(("Node client (web codec) ↔ kernel", ours["node"][key]))
        if key in ours.get("inline", {}):
            rows.append(("client ↔ kernel, imjoy-rpc chunks", ours["inline"][key]))
        print(f"{size} MB float32 round trip (MB/s)")
        for name, seconds in rows:
            mine = rate(size, seconds)
            print(f"  {name:<42}{mine:>11.0f}{base:>10.0f}{mem:>10.0f}{mine / base:>8.2f}{mine / mem:>8.3f}")
    browser = ours.get("browser")
    if browser:
        page_raw, page_copy = browser["raw_websocket"], browser["copy"]
        tiny_ms = browser["scopeflow"]["tiny_ms"]
        print("in Chromium (web/src/transfer.ts); baselines: raw websocket echo and copy, in the same page")
        print(
            f"  {'tiny call page → kernel (ms)':<42}{tiny_ms:>11.2f}{page_raw['tiny_ms']:>10.2f}"
            f"{'':>10}{tiny_ms / page_raw['tiny_ms']:>8.2f}"
        )
        for size in sizes:
            key = f"{size}MB_s"
            mine, base = rate(size, browser["scopeflow"][key]), rate(size, page_raw[key])
            mem = rate(size, page_copy[key])
            name = f"{size} MB page ↔ kernel (MB/s)"
            print(f"  {name:<42}{mine:>11.0f}{base:>10.0f}{mem:>10.0f}{mine / base:>8.2f}{mine / mem:>8.3f}")
    print("peak resident memory (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in ours["peak_rss_mb"].items()))
    print(
        f"plugin cold start, launch → service ready (s): {ours['cold_start_s']:.2f} and "
        f"{ours['second_cold_start_s']:.2f} from the spare kernel ({ours['client_cold_start_s']:.2f} as the "
        f"client sees it); {http['cold_start_s']:.2f} and {http['second_cold_start_s']:.2f} starting kernels"
    )
    print("÷ raw: scopeflow / raw websocket (time for tiny calls, rate for arrays); ÷ copy: rate / copy rate")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "artifacts" / "bench-rpc.json",
        help="the figures are written there as JSON too (default artifacts/bench-rpc.json)",
    )
    parser.add_argument("--sizes", default="4,64,256", help="array sizes in MB (default 4,64,256)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiny", type=int, default=300, help="tiny calls to time")
    parser.add_argument(
        "--page-timeout", type=float, default=1800, help="seconds the Chromium page may take (default 1800)"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    copy = copy_round_trips(sizes, args.repeat)
    args.raw_port = free_port()
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo_server, args=(args.raw_port, ready), daemon=True)
    echo.start()
    ready.wait(20)
    try:
        raw = asyncio.run(raw_round_trips(args.raw_port, sizes, args.tiny, args.repeat))
        with tempfile.TemporaryDirectory(prefix="scopeflow-bench-web-") as web:
            if _browser.missing() is None:
                _browser.prepare(Path(web))
            with BenchHub(config={"Hub": {"web_dir": web}}) as hub:
                ours = asyncio.run(run_hub(hub, sizes, args, full=True))
        with BenchHub({"SCOPEFLOW_TRANSFER": "http", "SCOPEFLOW_SPARE_KERNEL": "0"}) as hub:
            http = asyncio.run(run_hub(hub, sizes, args, full=False))
    finally:
        echo.terminate()
    report(ours, http, raw, copy, sizes)
    if args.json:
        figures = {"sizes_mb": sizes, "scopeflow": ours, "scopeflow_http": http, "raw_websocket": raw,
                   "copy": copy}  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
