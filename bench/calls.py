"""Tiny calls: latency of one sync and one async op, and throughput of 50 concurrent callers, beside a raw
loopback websocket echo measured in the same run.

    python bench/calls.py [--count 500] [--callers 50] [--per-caller 200] [--json FILE]

Latency is the median round trip of one call at a time (client → hub → plugin kernel → back; the raw echo:
client → echo process → back). Throughput: ``--callers`` clients in separate processes, each making
``--per-caller`` calls one after the other, all at once (the raw figure: the same clients and messages
against the echo process). The issue's goals: tiny calls within 3x raw and at most 0.6x Hypha's, 50
callers at least twice Hypha's rate.

``--peers hypha --hypha-python PY`` measures Hypha in the same run: PY is the Python of a throwaway
environment holding it (it is no dependency of scopeflow), e.g.

    python3 -m venv /tmp/hypha && /tmp/hypha/bin/pip install "hypha[server-apps]==0.21.137" \\
        "sqlmodel<0.0.30" "sqlalchemy<2.1"   # 0.21.137 fails to start with newer sqlmodel

A Hypha server is started on a free loopback port and ``_hypha_peer.py`` (run by PY) measures the same
figures against a public echo service. Without PY the Hypha column is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub, free_port
from scopeflow.rpc.client import connect


def _echo(port: int, ready: Any) -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", port, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def _timed(call: Any, count: int) -> float:
    for _ in range(50):
        await call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def raw_latency(port: int, count: int) -> float:
    async with ws_connect(f"ws://127.0.0.1:{port}", compression=None) as ws:

        async def call() -> None:
            await ws.send(b"x" * 40)
            await ws.recv()

        return await _timed(call, count)


async def hub_latency(url: str, token: str, count: int) -> dict[str, float]:
    server = await connect(url, token=token)
    try:
        plugin = await server.get_plugin("bench-load")
        return {
            "sync": await _timed(lambda: plugin.add(1, 2), count),
            "async": await _timed(lambda: plugin.tag("x"), count),
        }
    finally:
        await server.disconnect()


def _caller(target: str, token: str, calls: int, out: Any, start: Any) -> None:
    async def main() -> None:
        if target.startswith("ws://"):
            async with ws_connect(target, compression=None) as ws:
                start.wait()
                for _ in range(calls):
                    await ws.send(b"x" * 40)
                    await ws.recv()
            return
        server = await connect(target, token=token)
        plugin = await server.get_plugin("bench-load")
        await plugin.tag("warm")
        start.wait()
        for _ in range(calls):
            await plugin.tag("x")
        await server.disconnect()

    asyncio.run(main())
    out.put(time.perf_counter())


def throughput(target: str, token: str, callers: int, calls: int) -> float:
    out: Any = multiprocessing.Queue()
    start = multiprocessing.Event()
    workers = [
        multiprocessing.Process(target=_caller, args=(target, token, calls, out, start))
        for _ in range(callers)
    ]
    for worker in workers:
        worker.start()
    time.sleep(3 + callers * 0.05)  # every caller connected and warm
    began = time.perf_counter()
    start.set()
    ended = max(out.get() for _ in workers)
    for worker in workers:
        worker.join()
    return callers * calls / (ended - began)


def hypha_figures(python: str | None, args: argparse.Namespace) -> dict[str, Any] | None:
    """Hypha's latency and throughput, measured now with ``python`` (None: skipped, saying why)."""
    if not python or not Path(python).exists():
        print("Hypha: skipped (give --hypha-python PY, the Python of an environment holding hypha)")
        return None
    port = free_port()
    server = subprocess.Popen(
        [python, "-m", "hypha.server", "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if server.poll() is not None:
                print(f"Hypha: skipped (its server exited with {server.returncode})")
                return None
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/readiness", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        peer = Path(__file__).resolve().parent / "_hypha_peer.py"
        done = subprocess.run(
            [python, str(peer), "--url", f"ws://127.0.0.1:{port}/ws", "--count", str(args.count),
             "--callers", str(args.callers), "--per-caller", str(args.per_caller)],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if done.returncode != 0:
            print(f"Hypha: failed ({done.stderr.strip().splitlines()[-1:]})")
            return None
        found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return found
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--per-caller", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--peers", default="", help="hypha: measure Hypha too (needs --hypha-python)")
    parser.add_argument("--hypha-python", default=None, help="the Python of an environment holding hypha")
    args = parser.parse_args()
    port = free_port()
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo, args=(port, ready), daemon=True)
    echo.start()
    ready.wait(20)
    raw = asyncio.run(raw_latency(port, args.count))
    raw_rate = throughput(f"ws://127.0.0.1:{port}", "", args.callers, args.per_caller)
    echo.terminate()
    with BenchHub() as hub:
        ours = asyncio.run(hub_latency(hub.url, hub.token, args.count))
        rate = throughput(hub.url, hub.token, args.callers, args.per_caller)
    figures = {
        "raw_ms": raw,
        "sync_ms": ours["sync"],
        "async_ms": ours["async"],
        "raw_per_s": raw_rate,
        "per_s": rate,
    }
    print(f"{'figure':<44}{'scopeflow':>12}{'raw ws':>10}{'ratio':>8}")
    print(f"{'tiny sync call, median (ms)':<44}{ours['sync']:>12.3f}{raw:>10.3f}{ours['sync'] / raw:>8.1f}")
    print(
        f"{'tiny async call, median (ms)':<44}{ours['async']:>12.3f}{raw:>10.3f}{ours['async'] / raw:>8.1f}"
    )
    label = f"{args.callers} callers x {args.per_caller} calls (calls/s)"
    print(f"{label:<44}{rate:>12.0f}{raw_rate:>10.0f}{rate / raw_rate:>8.2f}")
    if "hypha" in args.peers.split(","):
        hypha = hypha_figures(args.hypha_python, args)
        if hypha is not None:
            figures["hypha"] = hypha
            print(f"{'beside Hypha, same run':<44}{'scopeflow':>12}{'Hypha':>10}{'ratio':>8}")
            rows = [
                ("tiny sync call, median (ms)", ours["sync"], hypha["latency_ms"]["echo"]),
                ("tiny async call, median (ms)", ours["async"], hypha["latency_ms"]["echo_async"]),
                (label, rate, hypha["throughput"]["calls_per_s"]),
            ]
            for name, mine, theirs in rows:
                print(f"{name:<44}{mine:>12.3f}{theirs:>10.3f}{mine / theirs:>8.2f}")
            p99 = hypha["throughput"]["p99_ms"]
            print(f"Hypha's p99 under load: {p99:.1f} ms (hypha-rpc {hypha['hypha_rpc']})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
