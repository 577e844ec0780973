"""Events: how a run tells what its nodes do.

Each change of a node's state updates the node in the run record and becomes an event (:func:`node_event`);
every event is kept in the record (the newest :data:`~.runs.MAX_EVENTS`) and queued for the run's
``on_event`` callback (:func:`publish`), which :func:`send_events` calls one event at a time, in order. A
node's end is final, and it is saved with the record at most every :data:`SAVE_EVERY` seconds while the run
goes on. ``api.showProgress`` from a plugin becomes a ``running`` event with a :func:`fraction` as progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from scopeflow.workflows.runs import MAX_EVENTS, Run, RunStore

__all__ = ["EVENT_TIMEOUT", "SAVE_EVERY", "TERMINAL", "fraction", "node_event", "publish", "send_events"]

log = logging.getLogger("scopeflow.workflows.runner")  # these are the runner's messages, as before

TERMINAL = ("cached", "done", "error", "cancelled")
SAVE_EVERY = 1.0  # seconds: a running run's record is written at most this often (and when it ends)
EVENT_TIMEOUT = 30  # seconds an on_event callback may take before the run stops calling it


def node_event(
    run: Run,
    store: RunStore,
    node_id: str,
    state: str,
    *,
    progress: float | None = None,
    seconds: float | None = None,
    key: str | None = None,
    cached: bool = False,
    error: str | None = None,
    traceback: str | None = None,
) -> None:
    """``node_id`` is now in ``state``: update its record, publish the event, save the record if it ended."""
    record = run.record["nodes"][node_id]
    if record["state"] in TERMINAL:
        return  # a node's end is final
    record["state"] = state
    if state in TERMINAL:
        record.update({"seconds": None if seconds is None else round(seconds, 4), "cached": cached})
        record.update({"error": error, "traceback": traceback})
    event = {
        "run": run.id,
        "type": "node",
        "node": node_id,
        "state": state,
        "progress": 1.0 if state in ("done", "cached") else progress,
        "seconds": None if seconds is None else round(seconds, 4),
        "key": key or record.get("key"),
        "outputs": record["outputs"] if state in ("done", "cached") else None,
        "error": error,
        "traceback": traceback,
    }
    publish(run, event)
    if state in TERMINAL and time.monotonic() - run.saved > SAVE_EVERY:  # the end is always saved
        run.saved = time.monotonic()
        try:
            store.save(run.record)
        except OSError as exc:
            log.warning("could not save run %s: %s", run.id, exc)


def publish(run: Run, event: dict[str, Any]) -> None:
    events = run.record["events"]
    events.append(event)
    if len(events) > MAX_EVENTS + 100:
        del events[:-MAX_EVENTS]
    if run.sender is not None:
        run.outbox.put_nowait(event)


async def send_events(run: Run) -> None:
    """Events go to ``on_event`` one at a time, in order; a callback that fails is not called again."""
    while (event := await run.outbox.get()) is not None:
        try:
            sent = run.on_event(event)
            if asyncio.isfuture(sent) or asyncio.iscoroutine(sent):
                await asyncio.wait_for(sent, EVENT_TIMEOUT)
        except Exception as exc:
            log.info("run %s: on_event failed (%s); no more events go to it", run.id, exc)
            return


def fraction(value: Any) -> float:
    """A progress as given to ``api.showProgress`` (a fraction, or a percentage above 1) as a fraction."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    if number != number:  # NaN
        return 0.0
    return max(0.0, min(1.0, number / 100 if number > 1 else number))
