"""Test plugin: returns arrays as it got them, and leaves arrays unread on request."""

import os

import numpy as np

from scopeflow import Image, api, op

PLUGIN = {"id": "array-echo", "name": "Array echo", "version": "1.0.0", "description": "echoes arrays"}


@op
def echo(value: dict) -> dict:
    return value


@op
def describe(image: Image) -> dict:
    """What arrived: dtype, shape, order and whether the plugin may write to it."""
    return {
        "dtype": image.dtype.str,
        "shape": list(image.shape),
        "f_contiguous": bool(image.flags.f_contiguous and not image.flags.c_contiguous),
        "writeable": bool(image.flags.writeable),
        "sum": float(image.astype("float64").sum()),
    }


@op
def make(megabytes: int = 4) -> Image:
    return np.arange(megabytes * 250_000, dtype="float32")


@op
async def make_later(seconds: float = 1.0, megabytes: int = 4) -> Image:
    """A large result, after a while (its caller may be gone by then)."""
    import asyncio

    await asyncio.sleep(seconds)
    return np.arange(megabytes * 250_000, dtype="float32")


@op
def leave_unread(count: int = 2, die: bool = False) -> list:
    """Writes ``count`` array segments nobody will read (as if their messages were lost), then maybe dies."""
    transfer = api._server.rpc.transfer
    names = [transfer.encode(np.ones(1_000_000, dtype="float32"))["name"] for _ in range(count)]
    if die:
        os._exit(5)
    return names


@op
def make_fortran(rows: int = 600, cols: int = 400) -> Image:
    """A Fortran-ordered float64 array whose element [i, j] is i * cols + j."""
    return np.asfortranarray(np.arange(rows * cols, dtype="float64").reshape(rows, cols))


@op
def unsendable() -> Image:
    return np.array([{"a": 1}, None], dtype=object)
