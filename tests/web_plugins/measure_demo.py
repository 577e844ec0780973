"""Region sizes of a label image, as a table (exercises table results in the web app)."""

from scopeflow import Image, Table, op

PLUGIN = {
    "id": "measure-demo",
    "name": "Label sizes",
    "version": "0.1.0",
    "description": "Count the pixels of every label.",
}


@op(title="Label sizes")
def sizes(labels: Image["yx"]) -> Table:
    """One row per label: its id and area in pixels."""
    import numpy as np

    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    keep = ids != 0
    return {"label": ids[keep].tolist(), "area": counts[keep].tolist()}


@op(title="Slow steps")
def slow(steps: int = 5) -> str:
    """Report progress while sleeping, then say done."""
    import time

    from scopeflow import api

    for i in range(steps):
        api.showProgress((i + 1) / steps)
        time.sleep(0.2)
    return "done"
