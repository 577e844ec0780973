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
    seen = []
    for _ in range(6):
        result = call()
        seen.append((isinstance(result, asyncio.Future), await settle(result)))
    assert all(future and name != loop_thread for future, name in seen[: pacing.QUICK_CALLS])
    assert seen[pacing.QUICK_CALLS :] == [(False, loop_thread)] * (6 - pacing.QUICK_CALLS)


async def test_an_op_slow_on_the_loop_goes_back_to_threads_for_good() -> None:
    delays = iter([0.0] * 4 + [pacing.SLOW * 2] + [0.0] * 6)

    def op() -> str:
        time.sleep(next(delays))
        return where()

    call = pacing.paced(op)
    names = [await settle(call()) for _ in range(11)]
    loop_thread = where()
    assert names[3] == loop_thread and names[4] == loop_thread  # the slow one ran on the loop
    assert loop_thread not in names[5:] and call.pace.banned


async def test_a_slow_op_never_leaves_its_threads() -> None:
    call = pacing.paced(lambda: (time.sleep(pacing.QUICK * 3), where())[1])
    names = [await settle(call()) for _ in range(6)]
    assert where() not in names


async def test_calls_with_arrays_and_long_running_ops_stay_in_threads() -> None:
    call = pacing.paced(lambda image=None: where())
    for _ in range(4):
        await settle(call())
    assert call() == where()  # quick by now
    assert isinstance(call(image=np.zeros(4)), asyncio.Future)
    assert isinstance(call(np.zeros(4)), asyncio.Future)
    declared = pacing.paced(lambda: where(), long_running=True)
    assert all([isinstance(declared(), asyncio.Future) for _ in range(6)])


async def test_a_failure_on_the_loop_is_a_failed_future_with_its_traceback() -> None:
    fail = iter([False] * 4 + [True])

    def op() -> int:
        if next(fail):
            raise ValueError("bad input")
        return 1

    call = pacing.paced(op)
    assert [await settle(call()) for _ in range(4)] == [1] * 4
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
