"""Test plugin: ops that succeed, raise, hang and kill their own kernel."""

import asyncio
import os
import threading

import numpy as np

from scopeflow import Image, api, op

PLUGIN = {"id": "crasher", "name": "Crasher", "version": "1.0.0", "description": "misbehaves on request"}


@op
def ping() -> str:
    return "pong"


@op
def pid() -> int:
    return os.getpid()


@op
def echo(value: dict) -> dict:
    return value


@op
def invert(image: Image["yx"]) -> Image["yx"]:
    """Returns max - image, same dtype."""
    return (image.max() - image).astype(image.dtype)


@op
def boom(message: str = "kaboom") -> None:
    raise ValueError(message)


@op
def die(code: int = 3) -> None:
    os._exit(code)


@op
async def slow_die(delay: float = 0.5) -> None:
    await asyncio.sleep(delay)
    os._exit(4)


@op
def report(text: str) -> str:
    """Calls the ImJoy api from a worker thread."""
    api.log(f"report: {text}").result(10)
    api.showMessage(text).result(10)
    return text


@op
def zeros(height: int = 4, width: int = 4) -> Image["yx"]:
    return np.zeros((height, width), dtype="uint16")


@op
def thread() -> str:
    """The name of the thread this call ran in."""
    return threading.current_thread().name


@op(long_running=True)
def thread_long() -> str:
    """The same, declared long-running."""
    return threading.current_thread().name


@op
async def apply(value: int, fn: dict = None) -> int:  # noqa: RUF013 - fn is a function of the caller's
    """Calls the caller's function back with ``value``."""
    return await fn(value)


@op
def counter(start: int = 0) -> dict:
    """A result holding a function: each call of it counts one up."""
    state = {"n": start}

    def next_value() -> int:
        state["n"] += 1
        return state["n"]

    return {"next": next_value}
