"""Test plugin for workflows: small array ops that note each call in a journal file, sleep, raise, report
progress or kill their own kernel."""

import asyncio
import json
import os
import time

import numpy as np

from scopeflow import Image, Table, api, op

PLUGIN = {"id": "wf-ops", "name": "Workflow ops", "version": "1.0.0", "description": "ops for workflow tests"}


def note(journal: str, name: str, **extra: object) -> None:
    if journal:
        with open(journal, "a") as file:
            file.write(json.dumps({"op": name, "time": time.time(), "pid": os.getpid(), **extra}) + "\n")


@op(
    inputs={"value": {"minimum": 0, "maximum": 100}, "height": {"minimum": 1}},
    outputs={"result": {"dtype": ["float32"]}},
)
def make(height: int = 8, width: int = 8, value: float = 1.0, journal: str = "") -> Image["yx"]:
    """A constant image."""
    note(journal, "make", value=value)
    return np.full((height, width), value, dtype="float32")


@op
def scale(image: Image["yx"], factor: float = 2.0, journal: str = "") -> Image["yx"]:
    note(journal, "scale", factor=factor)
    return (image * factor).astype(image.dtype)


@op
def add(a: Image["yx"], b: Image["yx"], journal: str = "") -> Image["yx"]:
    note(journal, "add")
    return a + b


@op
def total(image: Image["yx"], journal: str = "") -> float:
    note(journal, "total")
    return float(image.sum())


@op
async def pause(image: Image["yx"], seconds: float = 1.0, tag: str = "", journal: str = "") -> Image["yx"]:
    """Sleeps, noting when it starts and ends."""
    note(journal, "pause-start", tag=tag)
    await asyncio.sleep(seconds)
    note(journal, "pause-end", tag=tag)
    return image


@op
def boom(image: Image["yx"], message: str = "kaboom") -> Image["yx"]:
    raise ValueError(message)


@op
def progress(image: Image["yx"], steps: int = 4, delay: float = 0.3) -> Image["yx"]:
    """Reports its progress with api.showProgress after each step."""
    for step in range(steps):
        time.sleep(delay)
        api.showProgress(100 * (step + 1) / steps).result(10)
    return image


@op
def die(image: Image["yx"]) -> Image["yx"]:
    os._exit(3)


@op
def stack(image: Image["yx"]) -> Image["cyx"]:
    return np.stack([image, image])


@op
def regions(image: Image["cyx"]) -> Table:
    return {"channel": list(range(image.shape[0])), "mean": [float(c.mean()) for c in image]}


@op
def split(image: Image["yx"]) -> tuple[Image["yx"], float]:
    return image[: image.shape[0] // 2], float(image.max())


@op(inputs={"image": {"dtype": ["uint8"]}})
def bytes_only(image: Image["yx"]) -> Image["yx"]:
    return image


@op
def mode(image: Image["yx"], how: str = "mean") -> float:
    return float(getattr(np, how)(image))
