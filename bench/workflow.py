"""Workflow benchmark: the runner's cost beside the same plugin calls made directly, in the same run.

    python bench/workflow.py [--nodes 20] [--cached-nodes 10] [--repeat 7] [--json FILE]

A throwaway hub with the trivial op ``bench-chain.step`` (x → x + 1, bench/plugins/bench_chain.py):

- per-node engine overhead: a chain of N ``step`` nodes run through the ``workflows`` service (each run with
  a new input, so nothing is cached: validation, scheduling, hashing, cache writes, the run record) against
  the same N calls made one after another by a client (``await plugin.step(x)``), also with the run's events
  sent to the client;
- a fully cached re-run of a 10-node chain (every node a cache hit, no plugin called) against the plain
  cost of the same 10 direct calls.

Medians of ``--repeat`` runs. Ratios are what to compare across machines; absolute figures are noisy on a
shared machine, so the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub
from scopeflow.rpc.client import connect

ROOT = Path(__file__).resolve().parents[1]


def chain(nodes: int, pin: dict[str, Any], salt: int = 0) -> dict[str, Any]:
    """A workflow of ``nodes`` step nodes, each fed by the one before; input ``x``, output ``y``."""
    ids = [f"s{i}" for i in range(nodes)]
    edges = [{"from": ["$input", "x"], "to": [ids[0], "x"]}]
    edges += [{"from": [a, "result"], "to": [b, "x"]} for a, b in itertools.pairwise(ids)]
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": f"chain of {nodes}",
        "description": "",
        "inputs": [{"name": "x", "kind": "value", "default": 0.0}],
        "nodes": [
            {"id": n, "plugin": "bench-chain", "op": "step", "params": {"salt": salt}, "position": None}
            for n in ids
        ],
        "edges": edges,
        "outputs": [{"name": "y", "from": [ids[-1], "result"]}],
        "plugins": {"bench-chain": pin},
    }


async def direct(plugin: Any, calls: int, x: float) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        x = await plugin.step(x)
    return time.perf_counter() - start


async def through_runner(service: Any, doc: dict[str, Any], x: float, events: bool = False) -> float:
    received: list[Any] = []
    start = time.perf_counter()
    record = await service.run(doc, {"x": x}, None, received.append if events else None)
    seconds = time.perf_counter() - start
    if record["state"] != "done":
        raise RuntimeError(f"the run ended {record['state']}: {record['nodes']}")
    return seconds


async def measure(hub: BenchHub, args: argparse.Namespace) -> dict[str, Any]:
    pin = next(p for p in json.loads(hub.get("/api/plugins"))["plugins"] if p["id"] == "bench-chain")
    pin = {"version": pin["version"], "sha256": pin["sha256"], "builtin": False, "url": None}
    server = await connect(hub.url, token=hub.token)
    plugin = await server.get_plugin("bench-chain")
    service = await server.get_service("workflows")
    long, short = chain(args.nodes, pin), chain(args.cached_nodes, pin, salt=1)
    for _ in range(20):  # warm up: kernel, imports, both paths
        await plugin.step(0.0)
    await through_runner(service, long, -1.0)
    out: dict[str, Any] = {"nodes": args.nodes, "cached_nodes": args.cached_nodes, "repeat": args.repeat}
    fresh, fresh_events, plain_n = [], [], []
    for rep in range(args.repeat):
        x = 1000.0 * (rep + 1) + time.time() % 1  # a new input: nothing of the chain is cached
        plain_n.append(await direct(plugin, args.nodes, x))
        fresh.append(await through_runner(service, long, x))
        fresh_events.append(await through_runner(service, long, x + 0.5, events=True))
    await through_runner(service, short, 7.0)  # fills the cache
    cached, plain_10 = [], []
    for _ in range(args.repeat):
        plain_10.append(await direct(plugin, args.cached_nodes, 7.0))
        cached.append(await through_runner(service, short, 7.0))
    record = await service.run(short, {"x": 7.0})
    if not all(n["cached"] for n in record["nodes"].values()):
        raise RuntimeError("the re-run was not fully cached")
    await server.disconnect()
    out["direct_chain_s"] = statistics.median(plain_n)
    out["runner_chain_s"] = statistics.median(fresh)
    out["runner_chain_events_s"] = statistics.median(fresh_events)
    out["direct_cached_calls_s"] = statistics.median(plain_10)
    out["runner_cached_s"] = statistics.median(cached)
    return out


def report(fig: dict[str, Any], load: tuple[list[float], list[float]]) -> None:
    n, m = fig["nodes"], fig["cached_nodes"]
    print(f"{'figure':<58}{'workflow':>10}{'direct':>10}{'ratio':>8}")
    rows = [
        (f"chain of {n} trivial nodes, nothing cached (ms)", fig["runner_chain_s"], fig["direct_chain_s"]),
        ("  the same, events sent to the client (ms)", fig["runner_chain_events_s"], fig["direct_chain_s"]),
        (f"{m}-node chain re-run, all cached (ms)", fig["runner_cached_s"], fig["direct_cached_calls_s"]),
    ]
    for name, mine, base in rows:
        print(f"{name:<58}{mine * 1000:>10.1f}{base * 1000:>10.1f}{mine / base:>8.2f}")
    per_node = (fig["runner_chain_s"] - fig["direct_chain_s"]) / n * 1000
    per_node_events = (fig["runner_chain_events_s"] - fig["direct_chain_s"]) / n * 1000
    print(
        f"engine overhead per node: {per_node:.2f} ms ({per_node_events:.2f} ms with events), beside "
        f"{fig['direct_chain_s'] / n * 1000:.2f} ms per direct call"
    )
    print(f"cached re-run per node: {fig['runner_cached_s'] / m * 1000:.2f} ms")
    print(
        "direct: the same op called one after another by a client; ratio: workflow / direct; "
        f"medians of {fig['repeat']} runs"
    )
    print(
        "load average (1, 5, 15 min) before: " + " ".join(f"{v:.2f}" for v in load[0])
        + ", after: " + " ".join(f"{v:.2f}" for v in load[1])
        + f" on {os.cpu_count()} cores"
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=20, help="length of the uncached chain (default 20)")
    parser.add_argument(
        "--cached-nodes", type=int, default=10, help="length of the cached chain (default 10)"
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "artifacts" / "bench-workflow.json",
        help="the figures are written there as JSON too (default artifacts/bench-workflow.json)",
    )
    args = parser.parse_args()
    before = list(os.getloadavg())
    with BenchHub() as hub:
        figures = asyncio.run(measure(hub, args))
    load = (before, list(os.getloadavg()))
    report(figures, load)
    if args.json:
        figures["load_average"] = {"before": load[0], "after": load[1], "cores": os.cpu_count()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
