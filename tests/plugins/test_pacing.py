"""Where a sync op runs (scopeflow.plugins.pacing): in a worker thread until it has shown it is quick, then on
the event loop; back in threads for good once slow there; always in threads with an array or when declared
long-running. Failures on the loop are answered like a thread's, as a failed future."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest

from scopeflow.plugins import pacing
from scopeflow.plugins.manifest import ManifestError, parse_plugin

pytestmark = pytest.mark.unit


async def settle(result: Any) -> Any:
    return await result if isinstance(result, asyncio.Future) else result


def where() -> str:
    return threading.current_thread().name


async def test_a_quick_op_moves_onto_the_loop_after_three_quick_calls() -> None:
    call = pacing.paced(lambda: where())
    loop_thread = where()
    first = [call() for _ in range(1)]  # the first call always goes to a thread
    assert isinstance(first[0], asyncio.Future) and await first[0] != loop_thread
    for _ in range(pacing.QUICK_CALLS - 1):
        assert await settle(call()) != loop_thread  # still in threads: not yet three quick calls
    moved = await until_inline(call)
    assert moved <= 40  # three quick calls in a row (more only if a thread was preempted)
    assert [call() for _ in range(5)] == [loop_thread] * 5  # and stays there


async def until_inline(call: Any, limit: int = 50) -> int:
    """Call until a call runs on the loop; how many calls that took (a preempted thread may need more)."""
    for count in range(1, limit + 1):
        result = call()
        if not isinstance(result, asyncio.Future):
            return count
        await result
    raise AssertionError(f"still in threads after {limit} quick calls")


async def test_an_op_slow_on_the_loop_goes_back_to_threads_for_good() -> None:
    slow = [False]

    def op() -> str:
        if slow[0]:
            time.sleep(pacing.SLOW * 2)
        return where()

    call = pacing.paced(op)
    assert await until_inline(call) > pacing.QUICK_CALLS
    slow[0] = True
    assert call() == where()  # the slow call itself ran on the loop
    slow[0] = False
    assert call.pace.banned
    assert all([isinstance(call(), asyncio.Future) for _ in range(6)])


async def test_a_slow_op_never_leaves_its_threads() -> None:
    call = pacing.paced(lambda: (time.sleep(pacing.QUICK * 3), where())[1])
    names = [await settle(call()) for _ in range(6)]
    assert where() not in names


async def test_calls_with_arrays_and_long_running_ops_stay_in_threads() -> None:
    call = pacing.paced(lambda image=None: where())
    await until_inline(call)
    assert call() == where()  # quick by now
    assert isinstance(call(image=np.zeros(4)), asyncio.Future)
    assert isinstance(call(np.zeros(4)), asyncio.Future)
    declared = pacing.paced(lambda: where(), long_running=True)
    assert all([isinstance(declared(), asyncio.Future) for _ in range(6)])


async def test_a_failure_on_the_loop_is_a_failed_future_with_its_traceback() -> None:
    fail = [False]

    def op() -> int:
        if fail[0]:
            raise ValueError("bad input")
        return 1

    call = pacing.paced(op)
    await until_inline(call)
    fail[0] = True
    result = call()
    assert isinstance(result, asyncio.Future)
    with pytest.raises(ValueError, match="bad input") as caught:
        await result
    assert caught.value.__traceback__ is not None


def test_long_running_is_read_from_the_plugin_file() -> None:
    head = '"""p"""\nfrom scopeflow import op\nPLUGIN = {"id": "p", "name": "P", "version": "1.0.0"}\n'
    parse_plugin(head + "@op(long_running=True)\ndef train() -> int:\n    return 1\n", "p.py")
    with pytest.raises(ManifestError, match="must be True or False"):
        parse_plugin(head + "@op(long_running='yes')\ndef train() -> int:\n    return 1\n", "p.py")
