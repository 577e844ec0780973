"""Benchmark plugin: returns what it is given."""

from scopeflow import Image, op

PLUGIN = {"id": "bench-echo", "name": "Bench echo", "version": "1.0.0", "description": "echo for benchmarks"}


@op
async def ping() -> str:
    return "pong"


@op
async def echo_array(image: Image) -> Image:
    return image


@op
def pid() -> int:
    import os

    return os.getpid()
