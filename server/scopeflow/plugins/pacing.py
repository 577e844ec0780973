"""Where a plugin's sync op runs: in a worker thread, or on the kernel's event loop.

A worker thread keeps the loop free while an op works: its progress messages leave as it goes, it can be
cancelled, and other calls to the plugin are answered meanwhile. The hop costs about 0.1 ms a call, which
is most of a tiny call's time. So a sync op runs on the loop once it has shown it is quick: after
``QUICK_CALLS`` calls in a row that each took at most ``QUICK`` seconds in a thread. It goes back to threads
for good the first time it takes over ``SLOW`` on the loop. Calls that carry an array always run in a thread
(their time grows with the image), and so do the calls of an op declared ``@op(long_running=True)``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

QUICK = 0.001
QUICK_CALLS = 3
SLOW = 0.01


class Pace:
    """What one op has shown so far."""

    def __init__(self, long_running: bool = False) -> None:
        self.banned = long_running  # never on the loop
        self.quick_calls = 0
        self.inline = False

    def record(self, seconds: float) -> None:
        """A call that ran in a worker thread took ``seconds``."""
        self.quick_calls = self.quick_calls + 1 if seconds <= QUICK else 0
        self.inline = not self.banned and self.quick_calls >= QUICK_CALLS

    def record_inline(self, seconds: float) -> None:
        if seconds > SLOW:
            self.banned, self.inline = True, False


def _carries_array(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return any(isinstance(v, np.ndarray) for v in args) or any(
        isinstance(v, np.ndarray) for v in kwargs.values()
    )


def paced(function: Callable[..., Any], long_running: bool = False) -> Callable[..., Any]:
    """``function`` (a sync op) as imjoy-rpc calls it: its value when it ran on the loop, else a future of
    its value from a worker thread."""
    pace = Pace(long_running)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            pace.record(time.perf_counter() - started)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        if pace.inline and not _carries_array(args, kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # answered like a thread's failure: with its traceback
                failed = loop.create_future()
                failed.set_exception(exc)
                return failed
            finally:
                pace.record_inline(time.perf_counter() - started)
        context = contextvars.copy_context()
        return loop.run_in_executor(None, functools.partial(context.run, timed, *args, **kwargs))

    call.pace = pace  # type: ignore[attr-defined]
    return call
