"""Ops for the workflow editor's tests: one that wants channels first, one that always fails."""

from scopeflow import Image, op

PLUGIN = {
    "id": "wf-demo",
    "name": "Workflow test ops",
    "version": "0.1.0",
    "description": "A channel-first op and an op that fails, to test the workflow editor.",
}


@op(title="Channel means")
def channels(image: Image["cyx"]) -> Image["cyx"]:  # noqa: F821 (axes, not names)
    """Each channel minus its mean."""
    import numpy as np

    data = np.asarray(image, dtype=np.float32)
    return data - data.mean(axis=(1, 2), keepdims=True)


@op(title="Always fails")
def broken(image: Image["yx"]) -> Image["yx"]:  # noqa: F821 (axes, not names)
    """Raise, so that the editor shows a node's traceback."""
    raise ValueError("no nuclei here")
