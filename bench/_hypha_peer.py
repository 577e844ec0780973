"""Hypha's figures for bench/calls.py, run with the Python of a throwaway environment holding hypha (it is no
dependency of scopeflow): ``PY bench/_hypha_peer.py --url ws://127.0.0.1:PORT/ws ...`` against a Hypha server
started by the caller. A provider registers a public echo service (a sync and an async function, as the
scopeflow bench plugin has); callers measure latency (median of one call at a time) and the throughput of
``--callers`` clients in separate processes making ``--per-caller`` calls each. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from typing import Any

from hypha_rpc import connect_to_server


async def _provider(url: str, ready: Any, stop: Any) -> None:
    server = await connect_to_server({"server_url": url, "client_id": "bench-provider"})

    def echo(value: Any) -> Any:
        return value

    async def echo_async(value: Any) -> Any:
        return value

    service = await server.register_service(
        {"id": "echo", "config": {"visibility": "public"}, "echo": echo, "echo_async": echo_async}
    )
    ready.put(service["id"])
    while not stop.is_set():
        await asyncio.sleep(0.1)
    await server.disconnect()


def provider(url: str, ready: Any, stop: Any) -> None:
    asyncio.run(_provider(url, ready, stop))


async def _latency(url: str, service_id: str, count: int) -> dict[str, float]:
    server = await connect_to_server({"server_url": url})
    echo = await server.get_service(service_id)
    found = {}
    for name in ("echo", "echo_async"):
        function = echo[name]
        for _ in range(20):
            await function(1)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            await function(1)
            times.append(time.perf_counter() - started)
        found[name] = statistics.median(times) * 1000
    await server.disconnect()
    return found


async def _array_rate(url: str, service_id: str, megabytes: int) -> float:
    """MB/s of the best of three round trips of a float32 array through the echo (bytes both ways)."""
    import numpy as np

    server = await connect_to_server({"server_url": url})
    echo = (await server.get_service(service_id))["echo"]
    array = np.random.default_rng(0).random(megabytes * (1 << 20) // 4, dtype=np.float32)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        back = await echo(array)
        best = min(best, time.perf_counter() - started)
    if not np.array_equal(np.asarray(back), array):
        raise RuntimeError("the array came back changed")
    await server.disconnect()
    return 2 * array.nbytes / best / 1e6


def _caller(url: str, service_id: str, calls: int, out: Any, start: Any) -> None:
    async def run() -> None:
        server = await connect_to_server({"server_url": url})
        echo = (await server.get_service(service_id))["echo"]
        await echo(0)
        out.put(("ready", 0.0, []))
        start.wait()
        began = time.perf_counter()
        times = []
        for i in range(calls):
            called = time.perf_counter()
            if await echo(i) != i:
                raise RuntimeError("wrong answer")
            times.append(time.perf_counter() - called)
        out.put(("done", time.perf_counter() - began, times))
        await server.disconnect()

    asyncio.run(run())


def throughput(url: str, service_id: str, callers: int, calls: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    out, start = context.Queue(), context.Event()
    processes = [
        context.Process(target=_caller, args=(url, service_id, calls, out, start)) for _ in range(callers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        out.get(timeout=120)
    began = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(30)
    times = sorted(t for _, _, ts in results for t in ts)
    return {
        "calls_per_s": callers * calls / elapsed,
        "p99_ms": times[int(0.99 * (len(times) - 1))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--per-caller", type=int, default=200)
    parser.add_argument("--array-mb", type=int, default=0, help="also time an array echo of this size")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    serving = context.Process(target=provider, args=(args.url, ready, stop))
    serving.start()
    try:
        service_id = ready.get(timeout=60)
        result: dict[str, Any] = {"latency_ms": asyncio.run(_latency(args.url, service_id, args.count))}
        if args.array_mb:
            result["array_mb_s"] = asyncio.run(_array_rate(args.url, service_id, args.array_mb))
        result["throughput"] = throughput(args.url, service_id, args.callers, args.per_caller)
        import hypha_rpc

        result["hypha_rpc"] = hypha_rpc.__version__
        print(json.dumps(result))
    finally:
        stop.set()
        serving.join(10)
        if serving.is_alive():
            serving.kill()


if __name__ == "__main__":
    main()
