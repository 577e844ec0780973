"""RPC benchmark: scopeflow calls beside a raw loopback websocket measured in the same run.

    python bench/rpc.py [--json FILE] [--sizes 4,64] [--repeat 3]

Figures: a tiny call's round trip (client → hub → plugin kernel → back) against a raw websocket echo
to another process; array round trips of 4 and 64 MB through the same path against raw websocket
echoes of the same bytes. Ratios are what to compare across machines; absolute times are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub, free_port
from scopeflow.client import connect

MB = 1_000_000


def _echo_server(port: int, ready: multiprocessing.synchronize.Event) -> None:
    async def echo(ws):  # type: ignore[no-untyped-def]
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", port, max_size=None, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def raw_round_trips(port: int, sizes: list[int], tiny_n: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with ws_connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None) as ws:
        for _ in range(50):
            await ws.send(b"x")
            await ws.recv()
        times = []
        for _ in range(tiny_n):
            t = time.perf_counter()
            await ws.send(b"x" * 64)
            await ws.recv()
            times.append(time.perf_counter() - t)
        out["tiny_ms"] = statistics.median(times) * 1000
        for size in sizes:
            payload = np.random.default_rng(0).bytes(size * MB)
            out[f"{size}MB_s"] = min([await _timed_echo(ws, payload) for _ in range(repeat)])
    return out


async def _timed_echo(ws, payload: bytes) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    await ws.send(payload)
    await ws.recv()
    return time.perf_counter() - t


async def hub_round_trips(hub: BenchHub, sizes: list[int], tiny_n: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    server = await connect(hub.url, token=hub.token)
    t = time.perf_counter()
    plugin = await server.get_plugin("bench-echo")
    out["cold_start_s"] = time.perf_counter() - t
    for _ in range(50):
        await plugin.ping()
    times = []
    for _ in range(tiny_n):
        t = time.perf_counter()
        await plugin.ping()
        times.append(time.perf_counter() - t)
    out["tiny_ms"] = statistics.median(times) * 1000
    for size in sizes:
        array = np.random.default_rng(0).random(size * MB // 4).astype("float32")
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            back = await plugin.echo_array(array)
            best = min(best, time.perf_counter() - t)
            assert back.shape == array.shape
        out[f"{size}MB_s"] = best
    await server.disconnect()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--sizes", default="4,64", help="array sizes in MB (default 4,64)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiny", type=int, default=300, help="tiny calls to time")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    port = free_port()
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo_server, args=(port, ready), daemon=True)
    echo.start()
    ready.wait(20)
    try:
        raw = asyncio.run(raw_round_trips(port, sizes, args.tiny, args.repeat))
        with BenchHub() as hub:
            ours = asyncio.run(hub_round_trips(hub, sizes, args.tiny, args.repeat))
    finally:
        echo.terminate()

    rows = [("tiny call round trip (ms)", ours["tiny_ms"], raw["tiny_ms"], ours["tiny_ms"] / raw["tiny_ms"])]
    for size in sizes:
        key = f"{size}MB_s"
        rows.append(
            (
                f"{size} MB array round trip (MB/s)",
                2 * size / ours[key],
                2 * size / raw[key],
                raw[key] / ours[key],
            )
        )
    print(f"{'figure':<34}{'scopeflow':>12}{'raw websocket':>15}{'ratio':>8}")
    for name, mine, base, ratio in rows:
        print(f"{name:<34}{mine:>12.2f}{base:>15.2f}{ratio:>8.2f}")
    print(f"{'plugin cold start (s)':<34}{ours['cold_start_s']:>12.2f}")
    print(
        "ratio: scopeflow / raw for times, scopeflow rate / raw rate for bandwidth;"
        " path: client → hub → kernel → back"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"scopeflow": ours, "raw_websocket": raw, "sizes_mb": sizes}, indent=2)
        )


if __name__ == "__main__":
    main()
