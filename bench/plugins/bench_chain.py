"""Benchmark plugin: a trivial op to chain into workflows (the runner's own cost is what remains)."""

from scopeflow import op

PLUGIN = {
    "id": "bench-chain",
    "name": "Bench chain",
    "version": "1.0.0",
    "description": "a trivial value op for workflow benchmarks",
}


@op
def step(x: float, salt: int = 0) -> float:
    """x + 1 (``salt`` only makes otherwise equal nodes distinct)."""
    return x + 1
