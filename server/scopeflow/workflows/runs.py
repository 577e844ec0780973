"""Runs: a run in the hub's memory (:class:`Run`), and run records on disk, one JSON file per run under
``<data dir>/runs/``, so that history survives a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from scopeflow._util import write_atomic
from scopeflow.plugins.manifest import OpSpec
from scopeflow.workflows.document import WorkflowDoc

__all__ = ["NodeFailed", "Run", "RunStore", "new_run_id", "remote_error_text"]

RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9]{3}-[0-9a-f]{6}$")
MAX_EVENTS = 2000  # per record; the newest are kept
MAX_RUNS = 1000  # records kept; older ones are removed as new runs end


def new_run_id() -> str:
    """Sortable by start time: ``YYYYMMDD-HHMMSS-mmm-xxxxxx`` (UTC)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{secrets.token_hex(3)}"


def run_summary(record: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for node in (record.get("nodes") or {}).values():
        counts[node.get("state", "?")] = counts.get(node.get("state", "?"), 0) + 1
    keys = ("id", "title", "state", "started", "finished", "seconds")
    return {key: record.get(key) for key in keys} | {"nodes": counts}


class RunStore:
    """Reads and writes run records; a record still ``running`` that no live run owns ended with the hub."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise KeyError(f"no run {run_id!r}")
        return self.root / f"{run_id}.json"

    def save(self, record: dict[str, Any]) -> None:
        events = record.get("events") or []
        if len(events) > MAX_EVENTS:
            record = record | {"events": events[-MAX_EVENTS:]}
        write_atomic(self.path(record["id"]), json.dumps(record, default=str).encode("utf-8"))

    def load(self, run_id: str, live: bool = False) -> dict[str, Any]:
        """The record (:class:`KeyError` if there is none); ``live``: a run of this hub owns it."""
        try:
            record: dict[str, Any] = json.loads(self.path(run_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyError(f"no run {run_id!r}") from None
        except (OSError, ValueError) as exc:
            raise KeyError(f"run {run_id!r} cannot be read: {exc}") from None
        if record.get("state") == "running" and not live:
            record = self.orphaned(record)
        return record

    def orphaned(self, record: dict[str, Any]) -> dict[str, Any]:
        """A run the hub stopped during: unfinished nodes and the run become ``cancelled``."""
        for node in (record.get("nodes") or {}).values():
            if node.get("state") in ("queued", "running"):
                node["state"] = "cancelled"
                node["error"] = "the hub stopped during the run"
        record["state"] = "cancelled"
        record["error"] = "the hub stopped during the run"
        record["finished"] = record.get("finished") or record.get("started")
        with contextlib.suppress(OSError):
            self.save(record)
        return record

    def ids(self) -> list[str]:
        """Run ids, newest first."""
        return sorted((p.stem for p in self.root.glob("*.json") if RUN_ID.match(p.stem)), reverse=True)

    def prune(self, keep: int = MAX_RUNS) -> list[str]:
        """Remove all but the newest ``keep`` records; returns the ids removed."""
        old = self.ids()[keep:]
        for run_id in old:
            with contextlib.suppress(OSError):
                self.path(run_id).unlink()
        return old

    def latest(self, limit: int, live: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for run_id in self.ids():
            if len(found) >= limit:
                break
            try:
                found.append(run_summary(self.load(run_id, live=run_id in live)))
            except KeyError:
                continue
        return found


class NodeFailed(Exception):
    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace


def remote_error_text(exc: BaseException) -> tuple[str, str]:
    """(message, traceback) of an exception; imjoy-rpc's RemoteError carries the plugin's traceback."""
    text = str(exc)
    if text.startswith("RemoteError:"):
        text = text.removeprefix("RemoteError:").strip()
        lines = [line for line in text.splitlines() if line.strip() and not line[0].isspace()]
        message = lines[-1] if lines else type(exc).__name__
        if "\n" in text and text.count("Traceback (most recent call last)") > 1:  # the trace told twice
            text = text[: text.index("Traceback (most recent call last)", 1)].rstrip()
            text = text.removesuffix("Exception:").rstrip()
        return message, text if "\n" in text else ""
    if isinstance(exc, NodeFailed):
        return text, exc.trace
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__, ""


class Run:
    """One run in this hub's memory: its workflow, values, tasks and record."""

    def __init__(
        self, run_id: str, workflow: WorkflowDoc, needed: list[str], options: dict[str, Any]
    ) -> None:
        self.id = run_id
        self.workflow = workflow
        self.needed = needed
        self.options = options
        self.nodes = {n.id: n for n in workflow.nodes}
        self.ops: dict[str, OpSpec] = {}
        self.shas: dict[str, str] = {}
        self.code: dict[str, str] = {}  # plugin → digest of its file and its folder (cache keys)
        self.values: dict[str, dict[str, Any]] = {}  # node id (or "$input") → port → value
        self.hashes: dict[str, dict[str, str]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.active: dict[str, list[str]] = {}  # plugin id → nodes it is running now
        self.started = time.monotonic()
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_event: Any = None
        self.client: str | None = None  # who started it (its plugins' prompts and messages go there)
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.sender: asyncio.Task[None] | None = None
        self.finisher: asyncio.Future[None] | None = None
        self.cancelled = False
        self.reason = "cancelled"
        self.saved = time.monotonic()  # when the record was last written
        self.record: dict[str, Any] = {}
