"""Tiny calls: latency of one sync and one async op, and throughput of 50 concurrent callers, beside a raw
loopback websocket echo and (when installed) Hypha, measured in the same run.

    python bench/calls.py [--count 500] [--callers 50] [--per-caller 200] [--repeat 3] [--json FILE]
                          [--peers hypha --hypha-python PY]

Latency is the median round trip of one call at a time (client → plugin kernel → back, over the direct link
the hub introduces; the raw echo: client → echo process → back). On loopback it depends on where the two
processes run (waking a process on another core costs more: here 0.045 ms raw on one core, 0.11 ms across
two), so besides the scheduler's choice it is measured with caller and callee pinned to one core, then to
a core each, for raw and scopeflow alike; the "<= 3x raw" goal compares figures of the same placement. A
minimal Python RPC over the same library (msgpack in, function, msgpack out) shows the floor.

Throughput: ``--callers`` clients in separate processes, each making ``--per-caller`` sync calls one after the
other, all at once, with the p99 of one call (the raw figure: the same clients and messages against the echo
process). Each repetition measures raw, scopeflow and Hypha one after the other; the figures printed are
medians over repetitions, ratios taken within a repetition, each against the issue's goal: tiny calls within
3x raw and at most 0.6x (sync) / 0.5x (async) Hypha's, 50 callers at least twice Hypha's rate with a lower
p99. Everything goes to ``artifacts/bench-calls.json``.

``--peers hypha --hypha-python PY`` measures Hypha in the same run: PY is the Python of a throwaway
environment holding it (it is no dependency of scopeflow), e.g.

    python3 -m venv /tmp/hypha && /tmp/hypha/bin/pip install "hypha[server-apps]==0.21.137" \\
        "sqlmodel<0.0.30" "sqlalchemy<2.1"   # 0.21.137 fails to start with newer sqlmodel

A Hypha server is started on a free loopback port, with its per-client message rate limit lifted, and
``_hypha_peer.py`` (run by PY) measures the same figures against a public echo service. Without PY the
Hypha column is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub, free_port
from scopeflow.rpc.client import connect

ROOT = Path(__file__).resolve().parents[1]


def _echo(port: int, ready: Any) -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with ws_serve(echo, "127.0.0.1", port, compression=None, max_size=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


def _minimal_server(port: int, ready: Any) -> None:
    """The least a Python RPC can do over the same library: msgpack ``[0, id, name, args]`` in, the function
    called, ``[1, id, result]`` out (no codec, no context, no kernel): the floor under any Python callee."""
    functions = {"add": lambda a, b: a + b}

    async def serve(ws: Any) -> None:
        async for message in ws:
            _, call_id, name, args = msgpack.unpackb(message)
            await ws.send(msgpack.packb([1, call_id, functions[name](*args)]))

    async def main() -> None:
        async with ws_serve(serve, "127.0.0.1", port, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def minimal_latency(port: int, count: int) -> float:
    """Median round trip of a call to :func:`_minimal_server`, its answer matched to a waiting future."""
    async with ws_connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
        waiting: dict[int, asyncio.Future[Any]] = {}

        async def read() -> None:
            async for message in ws:
                _, call_id, result = msgpack.unpackb(message)
                waiting.pop(call_id).set_result(result)

        reader = asyncio.ensure_future(read())
        ids = iter(range(1 << 62))

        async def call() -> None:
            call_id = next(ids)
            waiting[call_id] = asyncio.get_running_loop().create_future()
            await ws.send(msgpack.packb([0, call_id, "add", [1, 2]]))
            if await waiting[call_id] != 3:
                raise RuntimeError("wrong answer")

        try:
            return await _timed(call, count)
        finally:
            reader.cancel()


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


async def raw_array_rate(port: int, megabytes: int) -> float:
    """MB/s of the best of three round trips of ``megabytes`` through the raw echo (bytes both ways)."""
    data = np.random.default_rng(0).random(megabytes * (1 << 20) // 4, dtype=np.float32).tobytes()
    async with ws_connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            await ws.send(data)
            await ws.recv()
            best = min(best, time.perf_counter() - started)
    return 2 * len(data) / best / 1e6


async def hub_array_rate(url: str, token: str, megabytes: int) -> float:
    """The same through a plugin kernel (``bench-echo.echo_array``), checked."""
    array = np.random.default_rng(0).random(megabytes * (1 << 20) // 4, dtype=np.float32)
    server = await connect(url, token=token)
    try:
        plugin = await server.get_plugin("bench-echo")
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            back = await plugin.echo_array(array)
            best = min(best, time.perf_counter() - started)
        if not np.array_equal(back, array):
            raise RuntimeError("the array came back changed")
        return 2 * array.nbytes / best / 1e6
    finally:
        await server.disconnect()


def placements() -> dict[str, tuple[int, int]]:
    """Where the caller and the callee run for the placed figures: one core for both, and a core each.
    Latency on loopback depends on it (a wake-up on another core costs more), so each ratio compares
    figures taken in the same placement. None where processes cannot be pinned."""
    if not hasattr(os, "sched_setaffinity"):
        return {}
    cores = sorted(os.sched_getaffinity(0))
    return {"one core": (cores[0], cores[0]), "two cores": (cores[0], cores[1])} if len(cores) > 1 else {}


@contextlib.contextmanager
def placed(callee: int, cores: tuple[int, int]) -> Iterator[None]:
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cores[0]})
    os.sched_setaffinity(callee, {cores[1]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, everywhere)
        with contextlib.suppress(OSError):
            os.sched_setaffinity(callee, everywhere)


async def hub_latency(url: str, token: str, count: int) -> dict[str, Any]:
    server = await connect(url, token=token)
    try:
        plugin = await server.get_plugin("bench-load")

        async def both() -> dict[str, float]:
            return {
                "sync": await _timed(lambda: plugin.add(1, 2), count),
                "async": await _timed(lambda: plugin.tag("x"), count),
            }

        found: dict[str, Any] = await both()
        kernel = await plugin.pid()
        for name, cores in placements().items():
            with placed(kernel, cores):
                found[name] = await both()
        return found
    finally:
        await server.disconnect()


def _caller(target: str, token: str, calls: int, out: Any, start: Any) -> None:
    async def main() -> list[float]:
        times = []
        if target.startswith("ws://"):
            async with ws_connect(target, compression=None) as ws:
                out.put(("ready", []))
                start.wait()
                for _ in range(calls):
                    called = time.perf_counter()
                    await ws.send(b"x" * 40)
                    await ws.recv()
                    times.append(time.perf_counter() - called)
            return times
        server = await connect(target, token=token)
        plugin = await server.get_plugin("bench-load")
        for i in range(5):  # warm: the sync op has shown it is quick
            await plugin.add(i, 1)
        out.put(("ready", []))
        start.wait()
        for i in range(calls):
            called = time.perf_counter()
            if await plugin.add(i, 1) != i + 1:
                raise RuntimeError("wrong answer")
            times.append(time.perf_counter() - called)
        await server.disconnect()
        return times

    times = asyncio.run(main())
    out.put(("done", times))


def throughput(target: str, token: str, callers: int, calls: int) -> dict[str, float]:
    """Calls per second of ``callers`` processes making ``calls`` sync calls each, and the p99 of a call."""
    out: Any = multiprocessing.Queue()
    start = multiprocessing.Event()
    workers = [
        multiprocessing.Process(target=_caller, args=(target, token, calls, out, start))
        for _ in range(callers)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:  # every caller connected and warm
        out.get(timeout=120)
    began = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    times = sorted(t for _, ts in results for t in ts)
    return {"calls_per_s": callers * calls / elapsed, "p99_ms": times[int(0.99 * (len(times) - 1))] * 1000}


class HyphaPeer:
    """A Hypha server on a free loopback port, started with ``python`` (the Python of a throwaway environment
    holding hypha); :meth:`measure` runs ``_hypha_peer.py`` against it once."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.port = free_port()
        # Hypha limits each client to 200 messages/s after a burst of 2,000 and disconnects one that goes
        # over: its echo provider answers every call, so a load run needs the limits lifted (as the issue had)
        lifted = {"HYPHA_WS_MSG_RATE_LIMIT": "1e9", "HYPHA_WS_MSG_BURST_LIMIT": "1000000000"}
        self.server = subprocess.Popen(
            [python, "-m", "hypha.server", "--host=127.0.0.1", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **lifted},
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"its server exited with {self.server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/readiness", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError("its server did not become ready in 90 s")

    def measure(self, args: argparse.Namespace) -> dict[str, Any]:
        peer = Path(__file__).resolve().parent / "_hypha_peer.py"
        done = subprocess.run(
            [self.python, str(peer), "--url", f"ws://127.0.0.1:{self.port}/ws", "--count", str(args.count),
             "--callers", str(args.callers), "--per-caller", str(args.per_caller),
             "--array-mb", str(args.array_mb)],
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"its bench failed: {done.stderr.strip().splitlines()[-1:]}")
        # Hypha's clients log to stdout too: the figures are the line that is a JSON object
        line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
        found: dict[str, Any] = json.loads(line)
        return found

    def close(self) -> None:
        self.server.terminate()
        try:
            self.server.wait(20)
        except subprocess.TimeoutExpired:
            self.server.kill()


def in_process_us(count: int) -> float:
    """The op itself, called in the process: what a call costs without any messaging."""

    def add(a: int, b: int) -> int:
        return a + b

    started = time.perf_counter()
    for i in range(count):
        add(i, 1)
    return (time.perf_counter() - started) / count * 1e6


def repetition(hub: BenchHub, hypha: HyphaPeer | None, args: argparse.Namespace) -> dict[str, Any]:
    """One repetition: raw websocket, scopeflow and (when given) Hypha, one after the other."""
    port = free_port()
    ready = multiprocessing.Event()
    echo = multiprocessing.Process(target=_echo, args=(port, ready), daemon=True)
    echo.start()
    ready.wait(20)
    figures: dict[str, Any] = {"raw": {"latency_ms": asyncio.run(raw_latency(port, args.count))}}
    for name, cores in placements().items():
        with placed(echo.pid or 0, cores):
            figures["raw"][name] = asyncio.run(raw_latency(port, args.count))
    floor_port = free_port()
    floor_ready = multiprocessing.Event()
    floor = multiprocessing.Process(target=_minimal_server, args=(floor_port, floor_ready), daemon=True)
    floor.start()
    floor_ready.wait(20)
    one_core = placements().get("one core")
    with placed(floor.pid or 0, one_core) if one_core else contextlib.nullcontext():
        figures["minimal"] = {"latency_ms": asyncio.run(minimal_latency(floor_port, args.count))}
    floor.terminate()
    figures["raw"]["throughput"] = throughput(f"ws://127.0.0.1:{port}", "", args.callers, args.per_caller)
    if args.array_mb:
        figures["raw"]["array_mb_s"] = asyncio.run(raw_array_rate(port, args.array_mb))
    echo.terminate()
    ours = asyncio.run(hub_latency(hub.url, hub.token, args.count))
    figures["scopeflow"] = {
        "latency_ms": ours,
        "throughput": throughput(hub.url, hub.token, args.callers, args.per_caller),
    }
    if args.array_mb:
        figures["scopeflow"]["array_mb_s"] = asyncio.run(hub_array_rate(hub.url, hub.token, args.array_mb))
    if hypha is not None:
        found = hypha.measure(args)
        figures["hypha"] = {
            "latency_ms": {"sync": found["latency_ms"]["echo"], "async": found["latency_ms"]["echo_async"]},
            "throughput": found["throughput"],
            "array_mb_s": found.get("array_mb_s"),
            "hypha_rpc": found["hypha_rpc"],
        }
    return figures


def _get(run: dict[str, Any], path: str) -> Any:
    return functools.reduce(lambda d, k: d.get(k) if isinstance(d, dict) else None, path.split("."), run)


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The median of each figure and of each ratio (ratios within a repetition), printed against the goals."""

    def median(path: str) -> float:
        values = [v for run in runs if (v := _get(run, path)) is not None]
        return statistics.median(values) if values else float("nan")

    def ratio(mine: str, theirs: str) -> float:
        values = [_get(run, mine) / _get(run, theirs) for run in runs if _get(run, theirs)]
        return statistics.median(values) if values else float("nan")

    has_hypha = all("hypha" in run for run in runs)
    goals: dict[str, bool] = {}
    print(f"{'figure':<42}{'scopeflow':>11}{'raw ws':>10}{'Hypha':>10}   ratios (goals)")
    places = [p for p in placements() if all(p in run["raw"] for run in runs)]
    for kind, hypha_limit in (("sync", 0.6), ("async", 0.5)):
        name, key = f"tiny {kind} call, median (ms)", f"latency_ms.{kind}"
        to_raw = ratio(f"scopeflow.{key}", "raw.latency_ms")
        line = f"{name:<42}{median(f'scopeflow.{key}'):>11.3f}{median('raw.latency_ms'):>10.3f}"
        line += f"{median(f'hypha.{key}'):>10.3f}   {to_raw:.2f}x raw"
        if not places:
            line += " (<= 3x)"
            goals[f"{name}: <= 3x raw"] = to_raw <= 3
        if has_hypha:
            to_hypha = ratio(f"scopeflow.{key}", f"hypha.{key}")
            line += f", {to_hypha:.2f}x Hypha (<= {hypha_limit}x)"
            goals[f"{name}: <= {hypha_limit}x Hypha"] = to_hypha <= hypha_limit
        print(line)
        for place in places:  # caller and callee pinned alike for both: the ratio the goal means
            mine, raw = f"scopeflow.latency_ms.{place}.{kind}", f"raw.{place}"
            to_raw = ratio(mine, raw)
            label = f"  the same, {place} (pinned)"
            print(f"{label:<42}{median(mine):>11.3f}{median(raw):>10.3f}{'':>10}   {to_raw:.2f}x raw (<= 3x)")
            goals[f"{name}, {place}: <= 3x raw"] = to_raw <= 3
    name = f"{args.callers} callers x {args.per_caller} sync calls"
    rate, p99 = "throughput.calls_per_s", "throughput.p99_ms"
    line = f"{name + ' (calls/s)':<42}{median('scopeflow.' + rate):>11.0f}{median('raw.' + rate):>10.0f}"
    line += f"{median('hypha.' + rate):>10.0f}   {ratio('scopeflow.' + rate, 'raw.' + rate):.2f}x raw"
    if has_hypha:
        to_hypha = ratio("scopeflow." + rate, "hypha." + rate)
        line += f", {to_hypha:.2f}x Hypha (>= 2x)"
        goals[f"{name}: >= 2x Hypha's rate"] = to_hypha >= 2
        goals[f"{name}: p99 below Hypha's"] = median("scopeflow." + p99) < median("hypha." + p99)
    print(line)
    print(f"{'  p99 of one call under that load (ms)':<42}{median('scopeflow.' + p99):>11.1f}"
          f"{median('raw.' + p99):>10.1f}{median('hypha.' + p99):>10.1f}")  # fmt: skip
    if args.array_mb:
        name = f"{args.array_mb} MB float32 array echo (MB/s)"
        line = f"{name:<42}{median('scopeflow.array_mb_s'):>11.0f}{median('raw.array_mb_s'):>10.0f}"
        to_raw = ratio("scopeflow.array_mb_s", "raw.array_mb_s")
        line += f"{median('hypha.array_mb_s'):>10.0f}   {to_raw:.2f}x raw"
        if has_hypha:
            to_hypha = ratio("scopeflow.array_mb_s", "hypha.array_mb_s")
            line += f", {to_hypha:.1f}x Hypha (keep ahead)"
            goals[f"{name}: ahead of Hypha"] = to_hypha > 1
        print(line)
    minimal, where = median("minimal.latency_ms"), "one core" if "one core" in places else ""
    mine, raw = (
        (f"scopeflow.latency_ms.{where}.sync", f"raw.{where}")
        if where
        else ("scopeflow.latency_ms.sync", "raw.latency_ms")
    )
    print(f"{'  the floor: a minimal Python RPC (ms)':<42}{minimal:>11.3f}{median(raw):>10.3f}"
          f"{'':>10}   {ratio('minimal.latency_ms', raw):.2f}x raw; scopeflow sync is "
          f"{ratio(mine, 'minimal.latency_ms'):.2f}x it {('(' + where + ')') if where else ''}")  # fmt: skip
    if has_hypha:
        print(f"Hypha: hypha-rpc {runs[0]['hypha']['hypha_rpc']}, its message rate limits lifted")
    print(f"the op itself, called in the process: {in_process_us(100_000):.2f} us")
    print(f"medians of {len(runs)} repetition(s); goals met: {sum(goals.values())} of {len(goals)}")
    return {"repetitions": runs, "goals": goals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--per-caller", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--array-mb", type=int, default=64, help="the array echo's size (0: none)")
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench-calls.json")
    parser.add_argument("--peers", default="", help="hypha: measure Hypha too (needs --hypha-python)")
    parser.add_argument("--hypha-python", default=None, help="the Python of an environment holding hypha")
    args = parser.parse_args()
    hypha = None
    if "hypha" in args.peers.split(","):
        if not args.hypha_python or not Path(args.hypha_python).exists():
            print("Hypha: skipped (give --hypha-python PY, the Python of an environment holding hypha)")
        else:
            try:
                hypha = HyphaPeer(args.hypha_python)
            except RuntimeError as exc:
                print(f"Hypha: skipped ({exc})")
    try:
        with BenchHub() as hub:
            runs = [repetition(hub, hypha, args) for _ in range(args.repeat)]
    finally:
        if hypha is not None:
            hypha.close()
    summary = report(runs, args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
