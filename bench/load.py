"""Load test: many clients, each making many mixed calls at once; every answer checked.

    python bench/load.py [--clients 50] [--calls 1000] [--rounds 2] [--processes 5] [--json FILE]

Each client makes ``--calls`` calls, 8 in flight at a time, of five kinds: a sync op, an async op, an async
op that waits 1 ms, a 32x32 float32 array in (out of band), and an op that makes a UI call (``showStatus``) to
an app client before it answers. Every answer is derived from its arguments, so a lost call (error or
timeout), a wrong answer and a duplicated answer are each counted. Clients run in ``--processes`` processes
so that the clients' own CPU is not what is measured.

Figures, beside the baseline measured in the same run: calls per second against a raw loopback websocket
echo (another process, the same clients, messages and concurrency); the hub's resident memory after a warm-up
round and after each round (its growth per call says whether per-call state is released).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub, free_port
from scopeflow.rpc.client import connect

IN_FLIGHT = 8
KINDS = ("add", "tag", "nap", "total", "status")


def rss_mb(pid: int) -> float:
    """A process's current resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _client(url: str, token: str, index: int, calls: int) -> dict[str, int]:
    counts = {"ok": 0, "lost": 0, "wrong": 0, "duplicated": 0}
    seen: set[str] = set()
    server = await connect(url, token=token)
    try:
        plugin = await server.get_plugin("bench-load")
        gate = asyncio.Semaphore(IN_FLIGHT)
        rng = np.random.default_rng(index)

        async def one(i: int) -> None:
            kind = KINDS[i % len(KINDS)]
            unique = f"c{index}-{i}"
            async with gate:
                try:
                    if kind == "add":
                        got, want = await plugin.add(index, i), index + i
                    elif kind == "tag":
                        got, want = await plugin.tag(unique), f"{unique}!"
                    elif kind == "nap":
                        got, want = await plugin.nap(unique), unique
                    elif kind == "total":
                        image = rng.random((32, 32), dtype=np.float32)
                        got, want = (
                            round(await plugin.total(image), 2),
                            round(float(image.sum(dtype=np.float64)), 2),
                        )
                    else:
                        got, want = await plugin.status(unique), unique
                except Exception:
                    counts["lost"] += 1
                    return
            if got != want:
                counts["wrong"] += 1
            elif isinstance(got, str) and got in seen:
                counts["duplicated"] += 1
            else:
                counts["ok"] += 1
                if isinstance(got, str):
                    seen.add(got)

        await asyncio.gather(*(one(i) for i in range(calls)))
    finally:
        await server.disconnect()
    return counts


def _clients_process(url: str, token: str, first: int, count: int, calls: int, out: Any) -> None:
    async def main() -> list[dict[str, int]]:
        return await asyncio.gather(*(_client(url, token, first + i, calls) for i in range(count)))

    out.put(asyncio.run(main()))


def _spread(target: Any, args: tuple[Any, ...], clients: int, processes: int) -> tuple[list[Any], float]:
    """Run ``clients`` clients over ``processes`` processes; (their results, seconds)."""
    queue: Any = multiprocessing.Queue()
    per = [clients // processes + (1 if p < clients % processes else 0) for p in range(processes)]
    starts = [sum(per[:p]) for p in range(processes)]
    workers = [
        multiprocessing.Process(target=target, args=(*args[:2], starts[p], per[p], *args[2:], queue))
        for p in range(processes)
        if per[p]
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return [r for batch in results for r in batch], seconds


async def _app(url: str, token: str, stop: asyncio.Event, calls: list[int]) -> None:
    """The app's side of UI calls: counts them."""
    server = await connect(url, token=token)

    def dispatch(caller: str, name: str, args: list[Any]) -> None:
        calls[0] += 1

    await server.register_service({"id": "imjoy-api", "dispatch": dispatch})
    await stop.wait()
    await server.disconnect()


def _app_thread(url: str, token: str) -> tuple[Any, list[int]]:
    import threading

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    calls = [0]
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_app(url, token, stop, calls))
        loop.call_later(1.0, ready.set)
        loop.run_until_complete(task)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(30)
    return (lambda: (loop.call_soon_threadsafe(stop.set), thread.join(10))), calls


# --- the baseline: a raw websocket echo, the same clients and concurrency ------------------------------


def _echo_server(port: int, ready: Any) -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", port, compression=None, max_size=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


def _raw_process(url: str, _: str, first: int, count: int, calls: int, out: Any) -> None:
    async def client(index: int) -> int:
        ok = 0
        async with ws_connect(url, compression=None) as ws:
            for i in range(0, calls, IN_FLIGHT):  # IN_FLIGHT messages out, then their answers
                batch = [f"c{index}-{j}" for j in range(i, min(calls, i + IN_FLIGHT))]
                for message in batch:
                    await ws.send(message)
                for message in batch:
                    ok += await ws.recv() == message
        return ok

    async def main() -> list[int]:
        return await asyncio.gather(*(client(first + i) for i in range(count)))

    out.put(asyncio.run(main()))


def measure(clients: int, calls: int, rounds: int, processes: int) -> dict[str, Any]:
    port = free_port()
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo_server, args=(port, ready), daemon=True)
    echo.start()
    ready.wait(30)
    raw, raw_seconds = _spread(_raw_process, (f"ws://127.0.0.1:{port}", "", calls), clients, processes)
    echo.terminate()
    figures: dict[str, Any] = {
        "clients": clients,
        "calls_per_client": calls,
        "raw_calls_per_s": round(sum(raw) / raw_seconds),
        "rounds": [],
    }
    with BenchHub() as hub:
        stop_app, ui_calls = _app_thread(hub.url, hub.token)
        pid = hub.process.pid  # type: ignore[union-attr]
        # warm-up: the kernel, every code path and the hub's buffers, before memory is read
        _spread(_clients_process, (hub.url, hub.token, 50), min(clients, 10), 1)
        time.sleep(1)
        base = rss_mb(pid)
        figures["hub_rss_mb_after_warmup"] = round(base, 1)
        figures["open_calls_before"] = json.loads(hub.get("/api/hub"))["open_calls"]
        for _ in range(rounds):
            results, seconds = _spread(_clients_process, (hub.url, hub.token, calls), clients, processes)
            time.sleep(1)
            total = {k: sum(r[k] for r in results) for k in ("ok", "lost", "wrong", "duplicated")}
            figures["rounds"].append(
                {
                    **total,
                    "calls": clients * calls,
                    "seconds": round(seconds, 2),
                    "calls_per_s": round(clients * calls / seconds),
                    "hub_rss_mb": round(rss_mb(pid), 1),
                }
            )
        figures["open_calls_after"] = json.loads(hub.get("/api/hub"))["open_calls"]
        stop_app()
        figures["ui_calls_seen_by_app"] = ui_calls[0]
        done = sum(r["calls"] for r in figures["rounds"])
        growth = figures["rounds"][-1]["hub_rss_mb"] - base
        figures["hub_growth_bytes_per_call"] = round(growth * 2**20 / done, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = measure(args.clients, args.calls, args.rounds, args.processes)
    print(f"{args.clients} clients x {args.calls} mixed calls, {IN_FLIGHT} in flight each")
    print(
        f"{'round':<8}{'ok':>8}{'lost':>6}{'wrong':>7}{'dup':>5}{'calls/s':>10}{'x raw ws':>10}{'hub MB':>9}"
    )
    for i, r in enumerate(figures["rounds"], 1):
        ratio = r["calls_per_s"] / figures["raw_calls_per_s"]
        print(
            f"{i:<8}{r['ok']:>8}{r['lost']:>6}{r['wrong']:>7}{r['duplicated']:>5}"
            f"{r['calls_per_s']:>10}{ratio:>10.3f}{r['hub_rss_mb']:>9}"
        )
    print(f"raw websocket echo, same clients: {figures['raw_calls_per_s']} messages/s")
    print(
        f"hub memory: {figures['hub_rss_mb_after_warmup']} MB after warm-up, "
        f"{figures['hub_growth_bytes_per_call']} bytes per call since; UI calls the app saw: "
        f"{figures['ui_calls_seen_by_app']}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
