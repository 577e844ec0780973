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


@op(title="Ask a name")
async def ask(question: str = "Your name?") -> str:
    """Ask the user in the web app, and greet."""
    from scopeflow import api

    name = await api.prompt(question, "Ada")
    return f"Hello, {name}"


@op(title="Curve")
def curve(points: int = 5) -> str:
    """Send a small line plot to the web app."""
    from scopeflow import api

    xs = list(range(points))
    series = {"train": [1 / (x + 1) for x in xs], "held-out": [1.2 / (x + 1) for x in xs]}
    api.createWindow({"type": "scopeflow/plot", "name": "demo curve", "data": {"x": xs, "series": series}})
    return f"{points} points"
