"""``scopeflow run``: a workflow, headless, once or over a folder of files, with resume.

The workflow runs on a hub through its ``workflows`` service: a hub given by ``--hub``, or one started for
the run (``scopeflow serve`` on a free loopback port with a random token) and stopped at the end. Results go
to the output folder with their provenance (:mod:`scopeflow.cli.results`).

A batch (``--input NAME='folder/*.tif'``) runs the workflow once per file, writes ``DIR/<file stem>/...``,
and records each finished item in ``DIR/scopeflow-batch.json`` by its input's content hash, the workflow's
hash and the other inputs: running the same command again skips them. A failed item does not stop the batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from scopeflow._http import redact
from scopeflow._util import canonical_json, sha256_hex, utc_stamp, write_atomic
from scopeflow.cli import inputs, provenance
from scopeflow.cli.progress import Progress
from scopeflow.cli.results import write_result
from scopeflow.workflows import gallery

__all__ = ["BatchState", "UsageError", "load_workflow", "main"]

STATE_FILE = "scopeflow-batch.json"
EXIT_FAILED, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad arguments, a bad workflow, or a refusal (--strict): exit code 2, nothing ran."""


@dataclass
class Options:
    workflow: str
    inputs: list[str]
    output: Path
    data_dir: str
    strict: bool = False
    hub: str | None = None
    token: str | None = None
    image_format: str = "tiff"
    cache: bool = True
    dask: str | None = None  # local, local:N or a scheduler address: the batch runs on Dask workers
    shared_storage: bool = True  # Dask workers see the items and the output folder (else: bytes travel)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    out: TextIO = field(default_factory=lambda: sys.stdout)


def load_workflow(spec: str) -> dict[str, Any]:
    """A workflow document from a file or a gallery name (UsageError: missing, not JSON, not an object)."""
    path = Path(spec)
    if not path.is_file():
        found = gallery.find(spec)
        if found is None:
            names = ", ".join(gallery.names()) or "none"
            raise UsageError(
                f"{spec}: no such file, and no gallery workflow of that name (the gallery: {names})"
            )
        path = found
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: a workflow is a JSON object, not {type(doc).__name__}")
    return doc


class BatchState:
    """The finished items of a batch, in ``DIR/scopeflow-batch.json`` (written atomically after each item)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE
        self.items: dict[str, dict[str, Any]] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("items"), dict):
                self.items = loaded["items"]
        except (OSError, ValueError):
            pass

    @staticmethod
    def key(workflow_sha256: str, input_sha256: str, context: dict[str, Any]) -> str:
        return sha256_hex(canonical_json([workflow_sha256, input_sha256, context]))

    def finished(self, key: str) -> dict[str, Any] | None:
        """The record of a finished item whose files are all still there, else None."""
        entry = self.items.get(key)
        if not entry:
            return None
        if not all((self.path.parent / f).is_file() for f in entry.get("files", [])):
            return None
        return entry

    def folder_for(self, key: str, stem: str, taken: set[str]) -> str:
        """The item's output folder: the one it had before, else ``stem``, ``stem-2``, ... that no other
        item of this batch (now or in an earlier invocation) has."""
        earlier = self.items.get(key, {}).get("folder")
        if isinstance(earlier, str) and earlier and earlier not in taken:
            return earlier
        claimed = taken | {e.get("folder") for k, e in self.items.items() if k != key}
        folder, n = stem, 1
        while folder in claimed:
            n += 1
            folder = f"{stem}-{n}"
        return folder

    def claim(
        self, key: str, path: Path, taken: set[str], counts: dict[str, int], label: str, out: Any
    ) -> str | None:
        """The folder of the item in ``path`` (added to ``taken``), or None when an earlier run finished it:
        then it is counted and reported as skipped."""
        folder = self.folder_for(key, path.stem.removesuffix(".ome") or "item", taken)
        taken.add(folder)
        previous = self.finished(key)
        if previous is None:
            return folder
        counts["skipped"] += 1
        print(
            f"{label}: skipped (finished {previous.get('finished')}, in {previous.get('folder')}/)", file=out
        )
        return None

    def record(self, key: str, entry: dict[str, Any]) -> None:
        self.items[key] = entry
        body = {"format": "scopeflow.batch-state", "version": 1, "items": self.items}
        write_atomic(self.path, json.dumps(body, indent=2) + "\n")


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def port_axes(url: str, token: str) -> dict[tuple[Any, Any, Any], str]:
    """(plugin, op, output port) → the axes the port declares, from ``GET /api/plugins``."""
    try:
        listing = _get_json(url + "/api/plugins", token)
    except (OSError, ValueError):
        return {}
    out = {}
    for plugin in listing.get("plugins", []):
        for op in plugin.get("ops") or []:
            for port in op.get("outputs") or []:
                if port.get("axes"):
                    out[(plugin.get("id"), op.get("name"), port.get("name"))] = port["axes"]
    return out


def _output_axes(doc: dict[str, Any], axes: dict[tuple[Any, Any, Any], str]) -> dict[str, str]:
    nodes = {n.get("id"): n for n in doc.get("nodes") or [] if isinstance(n, dict)}
    out = {}
    for output in doc.get("outputs") or []:
        node_id, port = (output.get("from") or [None, None])[:2]
        node = nodes.get(node_id) or {}
        found = axes.get((node.get("plugin"), node.get("op"), port))
        if found:
            out[output.get("name")] = found
    return out


def _node_counts(record: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for node in (record.get("nodes") or {}).values():
        state = "cached" if node.get("cached") else str(node.get("state"))
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _run_error(record: dict[str, Any]) -> str:
    for node_id, node in (record.get("nodes") or {}).items():
        if node.get("state") == "error":
            message = str(node.get("error") or "failed").strip().splitlines()
            return f"node {node_id}: {message[-1] if message else 'failed'}"
    return f"the run ended {record.get('state')}"


async def _tick(bar: Progress) -> None:
    """Redraw the bar twice a second, so that its clock runs while a node does."""
    while True:
        await asyncio.sleep(0.5)
        bar.draw()


class BatchRun:
    """One connection to a hub's workflows service, running one document for many inputs."""

    def __init__(self, options: Options, doc: dict[str, Any], service: Any, axes: dict[str, str]) -> None:
        self.options, self.doc, self.service, self.axes = options, doc, service, axes

    async def run(self, given: dict[str, inputs.Given], directory: Path, prefix: str = "") -> dict[str, Any]:
        """Run once and write the outputs into ``directory``; returns state, seconds, files and record."""
        node_ids = [str(n.get("id")) for n in self.doc.get("nodes") or [] if isinstance(n, dict)]
        bar = Progress(node_ids, stream=self.options.err, prefix=prefix)
        started = time.monotonic()
        ticker = asyncio.ensure_future(_tick(bar)) if bar.tty else None
        try:
            record = await self.service.run(
                self.doc,
                {name: g.value for name, g in given.items()},
                None if self.options.cache else {"cache": False},
                bar.event,
            )
        finally:
            if ticker is not None:
                ticker.cancel()
            bar.close()
        record = dict(record)
        input_record = {name: g.provenance for name, g in given.items()}
        input_record.update(inputs.defaults(self.doc, given))
        files: list[Path] = []
        directory.mkdir(parents=True, exist_ok=True)
        nodes = record.get("nodes") or {}
        for output in self.doc.get("outputs") or []:
            name = output.get("name")
            spec = (record.get("outputs") or {}).get(name) or {}
            node_state = (nodes.get(spec.get("node") or (output.get("from") or [None])[0]) or {}).get("state")
            if record.get("state") != "done" and node_state not in ("done", "cached"):
                continue
            value = await self.service.run_output(record["id"], name)
            meta = provenance.record(self.doc, record, input_record, name)
            columns = (spec.get("summary") or {}).get("columns")
            files += write_result(
                value,
                directory,
                name,
                meta,
                self.axes.get(name),
                image_format=self.options.image_format,
                columns=columns if isinstance(columns, list) else None,
            )
        record.pop("events", None)
        run_file = directory / "run.json"
        run_file.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        return {
            "state": record.get("state"),
            "seconds": time.monotonic() - started,
            "files": files,
            "record": record,
            "error": None if record.get("state") == "done" else _run_error(record),
        }


async def _check(options: Options, doc: dict[str, Any], service: Any) -> None:
    """Validate on the hub; print pin warnings, or refuse under --strict (UsageError)."""
    _judge(options, dict(await service.validate(doc)))


def _judge(options: Options, result: dict[str, Any]) -> None:
    """A validation's result: refuse an invalid workflow, print pin warnings or refuse them (--strict)."""
    if not result.get("ok"):
        lines = []
        for error in result.get("errors") or []:
            where = [f"node {error['node']}"] if error.get("node") else []
            where += [f"field {error['field']}"] if error.get("field") else []
            lines.append(f"  {', '.join(where) or 'workflow'}: {error.get('message')}")
        raise UsageError("the workflow is not valid:\n" + "\n".join(lines))
    stale = [p for p in result.get("pins") or [] if p.get("state") != "ok"]
    for pin in stale:
        pinned = (pin.get("pinned") or {}).get("sha256") or "none"
        current = (pin.get("current") or {}).get("sha256") or "none"
        text = (
            f"plugin {pin.get('plugin')} is {pin.get('state')}: "
            f"pinned sha256 {pinned[:12]}, the hub has {current[:12]}"
        )
        if options.strict:
            raise UsageError(f"{text} (--strict refuses to run a changed or missing plugin)")
        print(f"warning: {text}", file=options.err)


async def _on_hub(options: Options, doc: dict[str, Any], parsed: inputs.Parsed, url: str, token: str) -> int:
    from scopeflow.rpc.client import connect

    server = await connect(url, token=token, reconnect=False, method_timeout=7 * 24 * 3600)
    try:
        service = await server.get_service("workflows")
        await _check(options, doc, service)
        runner = BatchRun(
            options, doc, service, _output_axes(doc, await asyncio.to_thread(port_axes, url, token))
        )
        if parsed.batch_name is None:
            return await _single(runner, parsed)
        return await _batch(runner, parsed)
    finally:
        await server.disconnect()


async def _single(runner: BatchRun, parsed: inputs.Parsed) -> int:
    out, err = runner.options.out, runner.options.err
    result = await runner.run(parsed.fixed, runner.options.output)
    record = result["record"]
    print(
        f"{record.get('state')} in {result['seconds']:.2f} s ({_node_counts(record)}), "
        f"run {record.get('id')}",
        file=out,
    )
    for path in result["files"]:
        print(f"  wrote {path}", file=out)
    if result["error"]:
        for node_id, node in (record.get("nodes") or {}).items():
            if node.get("state") == "error" and node.get("traceback"):
                print(f"{node_id}: {str(node['traceback']).rstrip()}", file=err)
        print(f"error: {result['error']}", file=err)
        return EXIT_FAILED
    return 0


async def _batch(runner: BatchRun, parsed: inputs.Parsed) -> int:
    options = runner.options
    out = options.out
    assert parsed.batch_name is not None
    name, files = parsed.batch_name, parsed.batch_files
    spec = next(i for i in runner.doc.get("inputs") or [] if i.get("name") == name)
    state = BatchState(options.output)
    options.output.mkdir(parents=True, exist_ok=True)
    workflow_sha = provenance.workflow_hash(runner.doc)
    context = {
        "input": name,
        "fixed": {k: g.provenance.get("sha256") for k, g in sorted(parsed.fixed.items())},
        "format": options.image_format,
    }
    used: set[str] = set()  # folders given out in this invocation
    counts = {"done": 0, "failed": 0, "skipped": 0}
    seconds: list[float] = []
    started = time.monotonic()
    for index, path in enumerate(files, 1):
        label = f"[{index}/{len(files)}] {path.name}"
        try:
            raw = path.read_bytes()
        except OSError as exc:
            counts["failed"] += 1
            print(f"{label}: failed: {exc}", file=out, flush=True)
            continue
        key = BatchState.key(workflow_sha, sha256_hex(raw), context)
        folder = state.claim(key, path, used, counts, label, out)
        if folder is None:
            continue
        item_started = time.monotonic()
        try:
            given = {**parsed.fixed, name: inputs.read_item(name, path, spec)}
            result = await runner.run(given, options.output / folder, prefix=f"  {path.name} ")
        except inputs.InputError as exc:
            result = {"state": "error", "error": str(exc), "files": []}
        except Exception as exc:  # a remote error for this item must not stop the batch
            result = {"state": "error", "error": f"{type(exc).__name__}: {exc}", "files": []}
        took = time.monotonic() - item_started
        if result["state"] == "done":
            counts["done"] += 1
            seconds.append(took)
            record = result["record"]
            print(f"{label}: done in {took:.2f} s ({_node_counts(record)}) → {folder}/", file=out, flush=True)
            state.record(
                key,
                {
                    "item": str(path),
                    "folder": folder,
                    "input_sha256": sha256_hex(raw),
                    "workflow_sha256": workflow_sha,
                    "run": record.get("id"),
                    "seconds": round(took, 3),
                    "finished": utc_stamp(),
                    "files": [str(p.relative_to(options.output)) for p in result["files"]],
                },
            )
        else:
            counts["failed"] += 1
            print(f"{label}: failed: {result['error']}", file=out, flush=True)
    return summary(options, len(files), counts, seconds, time.monotonic() - started)


def summary(
    options: Options, items: int, counts: dict[str, int], seconds: list[float], total: float, where: str = ""
) -> int:
    """Print a batch's last lines; its exit code (failed items: 1)."""
    mean = f", {sum(seconds) / len(seconds):.2f} s per item run" if seconds else ""
    print(
        f"{items} items: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
        f"in {total:.2f} s{where}{mean}",
        file=options.out,
        flush=True,
    )
    if counts["failed"]:
        print(f"error: {counts['failed']} of {items} items failed", file=options.err)
    return EXIT_FAILED if counts["failed"] else 0


def main(options: Options) -> int:
    """Run ``scopeflow run``; returns the exit code (0 ok, 1 a run or an item failed, 2 refused)."""
    from scopeflow.cli.launcher import LocalHub

    # a damaged file is reported once, as that item's failure; not also as the reader's log warnings
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        doc = load_workflow(options.workflow)
        parsed = inputs.parse(options.inputs, doc)
        if options.image_format not in ("tiff", "png"):
            raise UsageError(f"--format {options.image_format}: use tiff or png")
        if options.dask:
            from scopeflow.cli import dask_batch

            return dask_batch.main(options, doc, parsed, options.dask)
        if options.hub:
            token = options.token or os.environ.get("SCOPEFLOW_TOKEN") or ""
            return asyncio.run(_on_hub(options, doc, parsed, options.hub.rstrip("/"), token))
        with LocalHub(options.data_dir) as hub:
            return asyncio.run(_on_hub(options, doc, parsed, hub.url, hub.token))
    except (UsageError, inputs.InputError) as exc:
        print(f"error: {exc}", file=options.err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=options.err)
        return 130
    except (OSError, RuntimeError, urllib.error.URLError) as exc:
        print(f"error: {redact(str(exc))}", file=options.err)
        return EXIT_FAILED
    except Exception as exc:  # a remote error (the hub refused a call): say what it was
        print(f"error: {type(exc).__name__}: {redact(str(exc))}", file=options.err)
        return EXIT_FAILED
