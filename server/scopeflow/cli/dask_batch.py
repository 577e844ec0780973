"""``scopeflow run WF --input NAME='folder/*.tif' --dask local[:N] | tcp://HOST:PORT``: a batch on Dask.

Dask distributed runs the items; nothing here schedules. Each worker keeps one headless hub of its own
(:class:`HubOnWorker`, a Dask worker plugin: ``scopeflow serve`` on the worker's loopback with its own token
and data dir, so its kernels stay warm and its cache grows across items and batches), and each item is one
task that runs the workflow there with the same code as a local run (:class:`~scopeflow.cli.batch.BatchRun`:
the runner, its cache, the provenance). The driver keeps the batch's state in ``DIR/scopeflow-batch.json``
exactly as a local batch does, so either resumes the other: finished items are skipped, a failed item is
tried once more and then reported.

Workers read the items and write the results by path: on other machines, the folders must be on storage
they all see, or ``--no-shared-storage`` ships each item's bytes with its task and its result files back in
the answer. No token goes to a worker: the driver starts no hub, and each worker's hub has its own.
GPUs: start workers with ``dask worker ... --resources GPU=1``; each worker's kernels then see that GPU
(``CUDA_VISIBLE_DEVICES`` per worker, as Dask's docs describe) and run on CUDA.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from scopeflow._util import sha256_hex, utc_stamp
from scopeflow.cli import inputs, provenance
from scopeflow.cli.batch import (
    BatchRun,
    BatchState,
    Options,
    UsageError,
    _judge,
    _node_counts,
    _output_axes,
    port_axes,
    summary,
)

__all__ = ["HubOnWorker", "main"]

PLUGIN_NAME = "scopeflow-hub"
TRIES = 2  # a failed item is tried once more before it is reported


class HubOnWorker(WorkerPlugin):
    """A Dask worker plugin: one headless hub per worker, started with the worker, stopped with it."""

    name = PLUGIN_NAME

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.hub: Any = None

    def setup(self, worker: Any) -> None:
        from scopeflow.cli.launcher import LocalHub

        folder = re.sub(r"[^A-Za-z0-9._-]", "_", str(worker.name)) or "worker"
        self.hub = LocalHub(Path(self.data_dir).expanduser() / "dask-workers" / folder)
        self.hub.__enter__()

    def teardown(self, worker: Any) -> None:
        if self.hub is not None:
            self.hub.stop()
            self.hub = None


def _hub() -> Any:
    from distributed import get_worker

    plugin: Any = get_worker().plugins[PLUGIN_NAME]
    if plugin.hub is None:
        raise RuntimeError("this worker's scopeflow hub is not running")
    return plugin.hub


def validate_on_worker(doc: dict[str, Any]) -> dict[str, Any]:
    """A task: the workflow checked by a worker's hub (validity and pins), as ``workflows.validate``."""
    return asyncio.run(_validate(doc))


async def _validate(doc: dict[str, Any]) -> dict[str, Any]:
    from scopeflow.rpc.client import connect

    hub = _hub()
    server = await connect(hub.url, token=hub.token, reconnect=False)
    try:
        return dict(await (await server.get_service("workflows")).validate(doc))
    finally:
        await server.disconnect()


def run_on_worker(
    doc: dict[str, Any],
    fixed: dict[str, inputs.Given],
    name: str,
    spec: dict[str, Any],
    item: str,
    folder: str,
    image_format: str,
    cache: bool,
    shipped: bytes | None = None,
) -> dict[str, Any]:
    """A task: one item, run by this worker's hub, its results written to ``folder``. With ``shipped`` (the
    item's bytes, when the workers do not see the driver's files) the results come back in the answer."""
    from distributed import get_worker

    started = time.monotonic()
    scratch = tempfile.TemporaryDirectory(prefix="scopeflow-item-") if shipped is not None else None
    try:
        where, target = Path(item), Path(folder)
        if scratch is not None:
            where = Path(scratch.name) / "in" / Path(item).name
            where.parent.mkdir()
            where.write_bytes(shipped or b"")
            target = Path(scratch.name) / "out"
        result = asyncio.run(_run(doc, fixed, name, spec, where, target, image_format, cache, item))
        if scratch is not None:
            result["payload"] = {
                str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()
            }
    except inputs.InputError as exc:
        result = {"state": "error", "error": str(exc), "files": [], "record": {}}
    except Exception as exc:  # this item's failure, reported by the driver
        result = {"state": "error", "error": f"{type(exc).__name__}: {exc}", "files": [], "record": {}}
    finally:
        if scratch is not None:
            scratch.cleanup()
    record = result.get("record") or {}
    return {
        "payload": result.get("payload"),
        "state": result["state"],
        "error": result.get("error"),
        "files": [str(p) for p in result.get("files") or []],
        "run": record.get("id"),
        "counts": _node_counts(record) if record else "",
        "seconds": time.monotonic() - started,
        "worker": str(get_worker().name),
    }


async def _run(
    doc: dict[str, Any],
    fixed: dict[str, inputs.Given],
    name: str,
    spec: dict[str, Any],
    item: Path,
    folder: Path,
    image_format: str,
    cache: bool,
    source: str,
) -> dict[str, Any]:
    from scopeflow.rpc.client import connect

    hub = _hub()
    quiet = io.StringIO()
    options = Options(
        workflow="", inputs=[], output=folder, data_dir="", image_format=image_format, cache=cache,
        err=quiet, out=quiet,
    )  # fmt: skip
    server = await connect(hub.url, token=hub.token, reconnect=False, method_timeout=7 * 24 * 3600)
    try:
        service = await server.get_service("workflows")
        axes = _output_axes(doc, await asyncio.to_thread(port_axes, hub.url, hub.token))
        read = inputs.read_item(name, item, spec)
        read.provenance["source"] = source  # the driver's path, also when the bytes were shipped
        given = {**fixed, name: read}
        return await BatchRun(options, doc, service, axes).run(given, folder)
    finally:
        await server.disconnect()


def client_for(address: str) -> tuple[Any, Any]:
    """``(client, cluster or None)`` for ``local``, ``local:N`` (a LocalCluster of N workers) or a
    scheduler address such as ``tcp://HOST:8786``."""
    from distributed import Client, LocalCluster

    found = re.fullmatch(r"local(?::(\d+))?", address)
    if found:
        workers = int(found.group(1) or 2)
        if workers < 1:
            raise UsageError("--dask local:N needs at least one worker")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=40,
        )  # fmt: skip
        return Client(cluster), cluster
    if not re.match(r"^(tcp|tls|inproc|ucx)://", address):
        raise UsageError(f"--dask {address}: use local, local:N or a scheduler address (tcp://HOST:8786)")
    return Client(address, timeout="30s"), None


def main(options: Options, doc: dict[str, Any], parsed: inputs.Parsed, address: str) -> int:
    if parsed.batch_name is None:
        raise UsageError("--dask spreads a batch over workers: give --input NAME='folder/*.tif'")
    client, cluster = client_for(address)
    try:
        client.register_plugin(HubOnWorker(options.data_dir), name=PLUGIN_NAME)
        _judge(options, client.submit(validate_on_worker, doc, pure=False).result())
        return _batch(options, doc, parsed, client, options.shared_storage)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _batch(
    options: Options, doc: dict[str, Any], parsed: inputs.Parsed, client: Any, shared: bool = True
) -> int:
    from distributed import as_completed

    out = options.out
    assert parsed.batch_name is not None
    name, files = parsed.batch_name, parsed.batch_files
    spec = next(i for i in doc.get("inputs") or [] if i.get("name") == name)
    state = BatchState(options.output)
    options.output.mkdir(parents=True, exist_ok=True)
    workflow_sha = provenance.workflow_hash(doc)
    context = {
        "input": name,
        "fixed": {k: g.provenance.get("sha256") for k, g in sorted(parsed.fixed.items())},
        "format": options.image_format,
    }
    used: set[str] = set()
    counts = {"done": 0, "failed": 0, "skipped": 0}
    pending: dict[Any, tuple[int, Path, str, str, str, int]] = {}
    started = time.monotonic()

    def submit(index: int, path: Path, key: str, folder: str, digest: str, attempt: int) -> Any:
        shipped = path.read_bytes() if not shared else None
        target = str((options.output / folder).resolve())
        future = client.submit(
            run_on_worker, doc, parsed.fixed, name, spec, str(path.resolve()), target,
            options.image_format, options.cache, shipped, pure=False,
        )  # fmt: skip
        pending[future] = (index, path, key, folder, digest, attempt)
        return future

    futures = []
    for index, path in enumerate(files, 1):
        label = f"[{index}/{len(files)}] {path.name}"
        try:
            digest = sha256_hex(path.read_bytes())
        except OSError as exc:
            counts["failed"] += 1
            print(f"{label}: failed: {exc}", file=out, flush=True)
            continue
        key = BatchState.key(workflow_sha, digest, context)
        folder = state.claim(key, path, used, counts, label, out)
        if folder is None:
            continue
        futures.append(submit(index, path, key, folder, digest, 1))
    seconds: list[float] = []
    queue = as_completed(futures)
    for future in queue:
        index, path, key, folder, digest, attempt = pending.pop(future)
        label = f"[{index}/{len(files)}] {path.name}"
        try:
            result = future.result()
        except Exception as exc:  # the worker died or the task could not run
            result = {"state": "error", "error": f"{type(exc).__name__}: {exc}", "worker": "?"}
        if result["state"] != "done" and attempt < TRIES:
            print(f"{label}: failed on {result.get('worker')}, trying again: {result['error']}", file=out)
            queue.add(submit(index, path, key, folder, digest, attempt + 1))
            continue
        if result.get("payload") is not None:  # no shared storage: the results came back in the answer
            result["files"] = []
            for relative, content in result["payload"].items():
                written = (options.output / folder / relative).resolve()
                written.parent.mkdir(parents=True, exist_ok=True)
                written.write_bytes(content)
                result["files"].append(str(written))
        if result["state"] == "done":
            counts["done"] += 1
            seconds.append(result["seconds"])
            print(
                f"{label}: done in {result['seconds']:.2f} s on worker {result['worker']} "
                f"({result['counts']}) → {folder}/",
                file=out,
                flush=True,
            )
            state.record(
                key,
                {
                    "item": str(path),
                    "folder": folder,
                    "input_sha256": digest,
                    "workflow_sha256": workflow_sha,
                    "run": result["run"],
                    "seconds": round(result["seconds"], 3),
                    "finished": utc_stamp(),
                    "worker": result["worker"],
                    "files": [os.path.relpath(p, options.output.resolve()) for p in result["files"]],
                },
            )
        else:
            counts["failed"] += 1
            print(f"{label}: failed: {result['error']}", file=out, flush=True)
    workers = f" on {len(client.scheduler_info()['workers'])} Dask workers"
    return summary(options, len(files), counts, seconds, time.monotonic() - started, workers)
