"""The lean RPC's replacements of imjoy-rpc internals, and the contract they rely on: if the library's own
``Timer`` changes shape, these tests fail before anything misbehaves."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from scopeflow.rpc import lean

pytestmark = pytest.mark.unit


def test_the_library_timer_is_still_the_shape_we_replace() -> None:
    upstream = lean._UPSTREAM_TIMER
    assert list(inspect.signature(upstream.__init__).parameters) == [
        "self", "timeout", "callback", "args", "label", "kwargs",
    ]  # fmt: skip
    assert {"start", "clear", "reset"} <= {n for n in vars(upstream) if not n.startswith("_")}
    assert lean._library.Timer is lean._Timer  # what the library's calls now make


async def test_timer_fires_once_after_its_timeout_and_heartbeats_postpone_it() -> None:
    fired: list[str] = []
    timer = lean._Timer(0.15, fired.append, "timed out", label="call")
    timer.start()
    for _ in range(4):  # heartbeats keep it from firing
        await asyncio.sleep(0.08)
        timer.reset()
    assert fired == [] and timer.started
    await asyncio.sleep(0.25)
    assert fired == ["timed out"] and not timer.started
    timer.start()  # can be started again, then cleared: never fires
    timer.clear()
    await asyncio.sleep(0.25)
    assert fired == ["timed out"] and not timer.started


async def test_an_async_callback_runs() -> None:
    done = asyncio.Event()

    async def callback() -> None:
        done.set()

    lean._Timer(0.01, callback).start()
    await asyncio.wait_for(done.wait(), 2)
