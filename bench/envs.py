"""Plugin start-up with environments, beside a plugin that needs none, measured in the same run.

    .venv/bin/python bench/envs.py [--repeat 3]

Figures (seconds, medians): a plugin whose requirements the hub has (the baseline: the spare kernel serves
it), a plugin with a new requirement set and an empty uv cache (resolve, download, install), the same plugin
started again (its environment is reused), and a plugin with a new set whose packages uv has cached.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import BenchHub
from scopeflow.rpc.client import connect


def post(hub: BenchHub, path: str) -> None:
    request = urllib.request.Request(
        hub.url + path, data=b"{}", method="POST", headers={"Authorization": f"token {hub.token}"}
    )
    with urllib.request.urlopen(request, timeout=300):
        pass


async def start(hub: BenchHub, name: str) -> float:
    server = await connect(hub.url, token=hub.token)
    try:
        started = time.monotonic()
        plugin = await server.get_plugin(name)
        await plugin.ping()
        return time.monotonic() - started
    finally:
        await server.disconnect()


async def one_round() -> dict[str, float]:
    figures = {}
    with tempfile.TemporaryDirectory() as cache, BenchHub({"UV_CACHE_DIR": cache}) as hub:
        figures["none (hub has the requirements)"] = await start(hub, "Env none")
        figures["new set, empty uv cache"] = await start(hub, "Env small")
        post(hub, "/api/plugins/env-small/stop")
        figures["cached environment"] = await start(hub, "Env small")
    with BenchHub() as hub:  # a new data dir: no environment yet, but uv's own cache is warm
        await start(hub, "Env none")
        figures["new set, warm uv cache"] = await start(hub, "Env small")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = [asyncio.run(one_round()) for _ in range(args.repeat)]
    base = statistics.median(r["none (hub has the requirements)"] for r in rounds)
    print(f"{'plugin start-up (s, median of ' + str(args.repeat) + ')':45} {'seconds':>8} {'x none':>8}")
    for name in rounds[0]:
        value = statistics.median(r[name] for r in rounds)
        print(f"{name:45} {value:8.2f} {value / base:8.2f}")


if __name__ == "__main__":
    main()
