"""Benchmark plugin: times calls from this kernel to bench-echo in another kernel."""

import resource
import statistics
import time

import numpy as np

from scopeflow import api, op

PLUGIN = {"id": "bench-relay", "name": "Bench relay", "version": "1.0.0", "description": "kernel to kernel"}


@op
async def tiny_ms(count: int = 300) -> float:
    """Median round trip of a tiny call to another plugin, in ms."""
    echo = await api.getPlugin("bench-echo")
    for _ in range(30):
        await echo.ping()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await echo.ping()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@op
async def round_trip_s(megabytes: int, repeat: int = 3) -> dict:
    """Best round trip of a float32 array of ``megabytes`` MB to another plugin and back."""
    echo = await api.getPlugin("bench-echo")
    array = np.random.default_rng(0).random(megabytes * 250_000).astype("float32")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        back = await echo.echo_array(array)
        best = min(best, time.perf_counter() - start)
        if not np.array_equal(back, array):
            raise AssertionError("the array came back different")
        del back
    return {"seconds": best, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
