"""Benchmark plugin for the load test: small calls of every kind, each answer derived from its arguments so
that a wrong, lost or duplicated answer shows."""

import asyncio

import numpy as np

from scopeflow import Image, api, op

PLUGIN = {"id": "bench-load", "name": "Bench load", "version": "1.0.0", "description": "mixed calls"}


@op
def add(a: int, b: int) -> int:
    """A sync op (runs in the kernel's worker thread)."""
    return a + b


@op
async def tag(text: str) -> str:
    """An async op."""
    return f"{text}!"


@op
async def nap(token: str, ms: float = 1.0) -> str:
    """An async op that waits, so that calls overlap in the kernel."""
    await asyncio.sleep(ms / 1000)
    return token


@op
def total(image: Image) -> float:
    """A small array in, a number out."""
    return float(np.asarray(image, dtype=np.float64).sum())


@op
async def status(token: str) -> str:
    """A UI call (to whichever app is connected) before answering."""
    await api.showStatus(token)
    return token


@op
def pid() -> int:
    """The kernel's process id (the bench pins it to a core)."""
    import os

    return os.getpid()
