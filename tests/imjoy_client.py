"""Drives a hub with the unmodified imjoy-rpc 0.5.59 client; run in its own environment (websockets < 14).

Usage: python imjoy_client.py URL TOKEN SCENARIO  → prints one JSON line with what it observed.
"""

import asyncio
import json
import sys
import time

import numpy as np
from imjoy_rpc.hypha import connect_to_server


async def main(url: str, token: str, scenario: str) -> dict:
    out: dict = {}
    if scenario == "bad-token":
        try:
            await asyncio.wait_for(connect_to_server({"server_url": url, "token": "wrong"}), 20)
            out["connected"] = True
        except PermissionError as exc:
            out["permission_error"] = str(exc)[:200]
        return out
    server = await connect_to_server({"server_url": url, "token": token, "method_timeout": 120})
    out["workspace"] = server.config.get("workspace")
    out["services"] = [s["id"] for s in await server.list_services()]
    out["echo"] = await server.echo({"x": [1, 2, 3]})
    started = time.monotonic()
    caller = await server.get_plugin("caller")
    out["caller_start_s"] = time.monotonic() - started
    out["greet"] = await caller.greet_through("imjoy")
    hello = await server.get_service("hello:default")
    out["hello"] = await hello.hello("client")
    out["add"] = await hello.add(2, 3)
    try:
        await hello.fail()
    except Exception as exc:
        out["fail"] = str(exc)
    crasher = await server.get_plugin("crasher")
    image = np.arange(64 * 64, dtype="uint16").reshape(64, 64)
    inverted = await crasher.invert(image)
    out["invert_ok"] = bool(np.array_equal(inverted, image.max() - image)) and str(inverted.dtype) == "uint16"
    big = np.random.default_rng(0).random((512, 512)).astype("float32")  # 1 MiB: goes in chunks
    out["big_ok"] = bool(np.array_equal(await crasher.invert(big), big.max() - big))
    # a service of this client's own, reached by another peer through the hub
    await server.export({"twice": lambda v: v * 2})
    mine = await server.get_service(server.config["client_id"] + ":default")
    out["own_service"] = await mine.twice(21)
    started = time.monotonic()
    try:
        await crasher.die()
    except Exception as exc:
        out["die"] = str(exc)[:200]
    out["die_s"] = time.monotonic() - started
    crasher = await server.get_plugin("crasher")
    out["after_restart"] = await crasher.ping()
    out["services_after"] = [s["id"] for s in await server.list_services()]
    await server.disconnect()
    return out


if __name__ == "__main__":
    result = asyncio.run(main(*sys.argv[1:4]))
    print(json.dumps(result))
