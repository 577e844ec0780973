"""Test plugin: ops that succeed, raise, hang and kill their own kernel."""

import asyncio
import os

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
