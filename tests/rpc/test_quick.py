"""Running a coroutine eagerly (scopeflow.rpc.quick.run_eagerly): an async op that does not wait is answered
without a task; one that waits goes on in a task, in the same context, and behaves as if it had been a task
from the start (results, errors, cancellation, context variables)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from scopeflow.rpc.quick import run_eagerly

pytestmark = pytest.mark.unit

TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="none")


async def tagged(value: str, wait: float | None) -> str:
    token = TAG.set(value)
    try:
        if wait is not None:
            await asyncio.sleep(wait)
        return f"{value}:{TAG.get()}"
    finally:
        TAG.reset(token)  # fails if the coroutine went on in another context


async def test_a_coroutine_that_does_not_wait_finishes_at_once() -> None:
    assert run_eagerly(tagged("a", None)) == (True, "a:a")
    assert TAG.get() == "none"


async def test_a_coroutine_that_waits_goes_on_in_a_task_in_its_context() -> None:
    finished, task = run_eagerly(tagged("b", 0.01))
    assert not finished and isinstance(task, asyncio.Task)
    assert await task == "b:b" and TAG.get() == "none"
    finished, task = run_eagerly(tagged("c", 0))  # a bare yield (sleep(0)) too
    assert not finished and await task == "c:c"


async def test_errors_before_and_after_waiting() -> None:
    async def fails(wait: bool) -> None:
        if wait:
            await asyncio.sleep(0.01)
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        run_eagerly(fails(False))
    finished, task = run_eagerly(fails(True))
    assert not finished
    with pytest.raises(ValueError, match="bad"):
        await task


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    seen: list[str] = []

    async def long() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    finished, task = run_eagerly(long())
    assert not finished
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_a_coroutine_that_waits_several_times() -> None:
    async def steps() -> int:
        total = 0
        for i in range(5):
            await asyncio.sleep(0.001)
            total += i
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, 100)
        return total + await future

    finished, task = run_eagerly(steps())
    assert not finished and await task == 110
