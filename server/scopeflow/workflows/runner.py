"""The workflow runner: the hub's ``workflows`` service.

A run calls each node's plugin op through the workspace manager, as soon as the nodes it depends on are
done, so independent branches run at once. Every node's result goes to the cache under a key made of its
plugin, op, parameters and the content hashes of its inputs; a node whose key is cached does not call its
plugin. An error stops what is downstream of it (``cancelled``); other branches finish. Each change of a
node's state is an event, sent to the run's ``on_event`` callback and kept in the run record, which is
saved under ``<data dir>/runs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from scopeflow._util import disk_full, plain
from scopeflow.images import formats as data
from scopeflow.plugins.engine import KernelEngine
from scopeflow.plugins.manifest import OpSpec
from scopeflow.plugins.registry import Registry
from scopeflow.sdk import CALL_KEYWORD
from scopeflow.workflows.cache import Cache, CacheEntry, code_digest, hash_off_loop, node_key, value_summary
from scopeflow.workflows.document import INPUT, WorkflowDoc, check, order, upstream, validate
from scopeflow.workflows.events import EVENT_TIMEOUT, fraction, node_event, publish, send_events
from scopeflow.workflows.pins import pin_states
from scopeflow.workflows.runs import NodeFailed, Run, RunStore, new_run_id, remote_error_text, run_summary

__all__ = ["WorkflowRunner"]

log = logging.getLogger("scopeflow.workflows.runner")

OUTPUT_HOLD = 3600  # seconds a run's outputs stay out of eviction, for its caller to read them


class WorkspaceCalls(Protocol):
    """What the runner needs of the hub's workspace manager: to call plugins' services as itself, and to
    hear of UI calls (progress) made by the op calls it started."""

    peer_id: str
    ui_listeners: list[Callable[[str, str, list[Any], str | None], None]]
    call_owners: list[Callable[[str], str | None]]

    async def get_service(self, query: str, context: Any = None) -> Any: ...


class WorkflowRunner:
    """Runs workflows for every client; served as ``workflows`` on the hub's RPC."""

    def __init__(
        self, manager: WorkspaceCalls, engine: KernelEngine, registry: Registry, cache: Cache, store: RunStore
    ) -> None:
        self.manager = manager
        self.engine = engine
        self.registry = registry
        self.cache = cache
        self.store = store
        self.runs: dict[str, Run] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # per plugin: restarts of a kernel whose file changed
        self.samples = list(data.SAMPLES)
        manager.ui_listeners.append(self._ui_call)
        manager.call_owners.append(self._owner_of)

    def service(self) -> dict[str, Any]:
        return {
            "id": "workflows",
            "name": "scopeflow workflows",
            "type": "scopeflow-workflows",
            "description": "Validate and run workflow documents; results are cached on the hub",
            "config": {"visibility": "public", "require_context": True},  # who starts a run (Run.client)
            "validate": self.validate,
            "start": self.start,
            "run": self.run,
            "wait": self.wait,
            "cancel": self.cancel,
            "get_run": self.get_run,
            "list_runs": self.list_runs,
            "output": self.output,
            "run_output": self.run_output,
        }

    # -- service methods ---------------------------------------------------------------------------------
    async def validate(self, doc: Any, context: Any = None) -> dict[str, Any]:
        doc = _plain_doc(doc)
        self.refresh(doc)
        return validate(doc, self.registry, self.samples)

    def refresh(self, doc: Any) -> None:
        """Rescan the registry if a plugin file the document uses changed (or appeared) since the last scan,
        so that pins and cache keys name the code that really runs."""
        nodes = doc.get("nodes") if isinstance(doc, dict) else None
        found = [n.get("plugin") for n in nodes if isinstance(n, dict)] if isinstance(nodes, list) else []
        for plugin_id in sorted({i for i in found if isinstance(i, str)}):
            manifest = self.registry.resolve(plugin_id)
            try:
                current = manifest is not None and file_sha256(manifest.path) == manifest.sha256
            except OSError:
                current = False
            if not current:
                self.registry.scan()
                return

    async def start(
        self, doc: Any, inputs: Any = None, options: Any = None, on_event: Any = None, context: Any = None
    ) -> str:
        doc = _plain_doc(doc)
        self.refresh(doc)
        options = dict(options or {})
        checked = check(doc, self.registry, self.samples)
        if checked.workflow is None or checked.errors:
            raise ValueError("invalid workflow: " + "; ".join(e["message"] for e in checked.errors))
        workflow = checked.workflow
        needed = order(workflow)
        until = options.get("until")
        if until is not None:
            if until not in {n.id for n in workflow.nodes}:
                raise ValueError(f"until: no node {until!r}")
            wanted = upstream(workflow, until)
            needed = [n for n in needed if n in wanted]
        run = Run(new_run_id(), workflow, needed, options)
        run.client = context.get("from") if isinstance(context, dict) else None
        run.values[INPUT], run.hashes[INPUT] = await self._inputs(workflow, dict(inputs or {}))
        used = sorted({run.nodes[n].plugin for n in needed})
        for node_id in needed:
            node = run.nodes[node_id]
            manifest = self.registry.get(node.plugin)
            run.shas[node.plugin] = manifest.sha256
            run.code[node.plugin] = code_digest(manifest.sha256, manifest.path)
            run.ops[node_id] = next(o for o in manifest.ops if o.name == node.op)
        run.record = {
            "id": run.id,
            "title": workflow.title,
            "state": "running",
            "started": time.time(),
            "finished": None,
            "seconds": None,
            "options": {k: v for k, v in options.items() if k in ("until", "cache")},
            "nodes": {
                n: {
                    "state": "queued",
                    "key": None,
                    "seconds": None,
                    "cached": False,
                    "outputs": {},
                    "error": None,
                    "traceback": None,
                }
                for n in needed
            },
            "outputs": {},
            "pins": pin_states(workflow.plugins, self.registry, self.engine.environment_of),
            "plugins": {p: self._ran(p, run.shas[p]) for p in used},
            "events": [],
        }
        if isinstance(on_event, dict):  # {"_rintf": true, "on_event": fn}: imjoy-rpc keeps fn after start
            on_event = on_event.get("on_event")
        run.on_event = on_event if callable(on_event) else None
        try:  # first: a run that cannot be recorded does not start at all
            self.store.save(run.record)
        except OSError as exc:
            raise disk_full(exc, self.store.root, "recording the run") or exc from None
        if run.on_event is not None:
            run.sender = asyncio.ensure_future(send_events(run))
        self.runs[run.id] = run
        for node_id in needed:
            self._event(run, node_id, "queued")
        for node_id in needed:
            run.tasks[node_id] = asyncio.ensure_future(self._node(run, node_id))
        run.finisher = asyncio.ensure_future(self._finish(run))
        return run.id

    async def run(
        self, doc: Any, inputs: Any = None, options: Any = None, on_event: Any = None, context: Any = None
    ) -> dict[str, Any]:
        return await self.wait(await self.start(doc, inputs, options, on_event, context))

    async def wait(self, run_id: str, context: Any = None) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is not None:
            await asyncio.shield(run.finished)
            return run.record
        return self.store.load(run_id)

    async def cancel(self, run_id: str, context: Any = None) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None:
            return self.store.load(run_id)  # finished already (or unknown: KeyError)
        if not run.finished.done():
            run.cancelled = True
            for task in run.tasks.values():
                task.cancel()
            await asyncio.shield(run.finished)
        return run.record

    async def shutdown(self) -> None:
        """The hub stops: live runs are cancelled and their records saved saying so."""
        live = [run for run in self.runs.values() if not run.finished.done()]
        for run in live:
            run.reason = "the hub stopped during the run"
        await asyncio.gather(*(self.cancel(run.id) for run in live), return_exceptions=True)

    async def get_run(self, run_id: str, context: Any = None) -> dict[str, Any]:
        run = self.runs.get(run_id)
        return run.record if run is not None else self.store.load(run_id)

    async def list_runs(self, limit: int = 50, context: Any = None) -> list[dict[str, Any]]:
        live = {run_id for run_id, run in self.runs.items() if not run.finished.done()}
        found = self.store.latest(max(1, min(int(limit), 10_000)), live)
        return [run_summary(self.runs[s["id"]].record) if s["id"] in self.runs else s for s in found]

    async def output(self, key: str, port: str, context: Any = None) -> Any:
        entry = self.cache.get(key)
        if entry is None:
            raise KeyError(f"no cached result {key!r} (evicted, or never computed)")
        if port not in entry.outputs:
            raise KeyError(
                f"the result {key[:12]}… has no output {port!r} (it has {', '.join(entry.outputs)})"
            )
        value = entry.load(port)
        return np.asarray(value) if isinstance(value, np.ndarray) else value

    async def run_output(self, run_id: str, name: str, context: Any = None) -> Any:
        record = await self.get_run(run_id)
        found = (record.get("outputs") or {}).get(name)
        if found is None:
            names = ", ".join(record.get("outputs") or {}) or "none yet"
            raise KeyError(f"run {run_id} has no output {name!r} (it has {names})")
        if found.get("key") is None:
            raise KeyError(f"output {name!r} of run {run_id} is a workflow input: the caller gave it")
        return await self.output(found["key"], found["port"])

    # -- running ------------------------------------------------------------------------------------------
    async def _inputs(
        self, workflow: WorkflowDoc, given: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        unknown = sorted(set(given) - {i.name for i in workflow.inputs})
        if unknown:
            raise ValueError(f"the workflow has no input {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for put in workflow.inputs:
            value = given.get(put.name, put.default)
            if value is None:
                if put.kind == "value" and put.name in given:
                    values[put.name] = None
                    continue
                raise ValueError(f"input {put.name} has no default: give it a value")
            if put.kind == "ndarray":
                if isinstance(value, dict) and isinstance(value.get("sample"), str):
                    try:
                        value = (await asyncio.to_thread(data.load_sample, value["sample"]))[0]
                    except KeyError as exc:
                        raise ValueError(f"input {put.name}: {exc.args[0]}") from None
                value = np.asarray(value)
                if value.dtype.hasobject:
                    raise ValueError(f"input {put.name}: not a numeric array")
            values[put.name] = value
        hashes = {name: await hash_off_loop(value) for name, value in values.items()}
        return values, hashes

    def _parents(self, run: Run, node_id: str) -> list[str]:
        return sorted({e.from_[0] for e in run.workflow.edges if e.to[0] == node_id and e.from_[0] != INPUT})

    async def _node(self, run: Run, node_id: str) -> None:
        started = time.monotonic()
        try:
            parents = [run.tasks[p] for p in self._parents(run, node_id) if p in run.tasks]
            if parents:
                await asyncio.wait(parents)
            started = time.monotonic()  # a node's time is its own, not its parents' as well
            failed = [
                p
                for p in self._parents(run, node_id)
                if run.record["nodes"][p]["state"] not in ("done", "cached")
            ]
            if failed:
                self._event(run, node_id, "cancelled", error=f"{failed[0]} did not finish")
                return
            await self._compute(run, node_id, started)
        except asyncio.CancelledError:
            self._event(run, node_id, "cancelled", seconds=time.monotonic() - started, error=run.reason)
        except Exception as exc:
            message, trace = remote_error_text(exc)
            if not trace and not str(exc).startswith("RemoteError:") and not isinstance(exc, NodeFailed):
                trace = "".join(traceback.format_exception(exc))
            log.info("workflow node %s failed: %s", node_id, message)
            self._event(
                run, node_id, "error", seconds=time.monotonic() - started, error=message, traceback=trace
            )

    async def _compute(self, run: Run, node_id: str, started: float) -> None:
        node, op = run.nodes[node_id], run.ops[node_id]
        edges = {e.to[1]: e.from_ for e in run.workflow.edges if e.to[0] == node_id}
        args, fed = [], []
        for port in op.inputs:
            if port.name in edges:
                source, out = edges[port.name]
                args.append(run.values[source][out])
                fed.append([port.name, run.hashes[source][out]])
            elif port.name in node.params:
                args.append(node.params[port.name])
            else:
                args.append(port.default)
        key = node_key(run.code[node.plugin], op.name, node.params, fed)
        run.record["nodes"][node_id]["key"] = key
        entry = self.cache.get(key) if run.options.get("cache", True) is not False else None
        if entry is not None and set(entry.outputs) == {p.name for p in op.outputs}:
            try:
                values = {
                    p: np.asarray(v) if isinstance(v, np.ndarray) else v for p, v in entry.load_all().items()
                }
            except (OSError, ValueError) as exc:
                log.warning("cache entry %s is unreadable (%s): computing it again", key, exc)
                self.cache.discard(key)
            else:
                self._outputs(run, node_id, entry, values)
                self._event(run, node_id, "cached", seconds=time.monotonic() - started, key=key, cached=True)
                return
        self._event(run, node_id, "running", progress=0.0, key=key)
        active = run.active.setdefault(node.plugin, [])
        active.append(node_id)
        try:
            tag = f"{run.id}/{node_id}"
            result = await self._call(node.plugin, op.name, args, run.shas[node.plugin], tag)
        finally:
            active.remove(node_id)
        values = split_result(result, op)
        entry = await self.cache.put(key, {p.name: (p.kind, values[p.name]) for p in op.outputs})
        # downstream gets what a cached run would give it: arrays, and tables and values as JSON
        values = {p: v if isinstance(v, np.ndarray) else plain(v) for p, v in values.items()}
        self._outputs(run, node_id, entry, values)
        self._event(run, node_id, "done", seconds=time.monotonic() - started, key=key)

    def _ran(self, plugin: str, sha256: str) -> dict[str, Any]:
        """What a run record says of a plugin it used: version, sha256 and resolved packages."""
        manifest = self.registry.get(plugin)
        return {
            "version": manifest.version,
            "sha256": sha256,
            "environment": self.engine.environment_of(manifest.id),
        }

    async def call_op(self, plugin: str, op: str, args: list[Any], sha256: str, tag: str = "") -> Any:
        """Call one op of a plugin as a node would: in the kernel running the file with this sha256."""
        return await self._call(plugin, op, args, sha256, tag)

    async def _call(self, plugin: str, op: str, args: list[Any], sha256: str, tag: str = "") -> Any:
        plugin = self.registry.get(plugin).id  # a document may name a plugin by its name, as ImJoy does
        engine = self.engine
        kernel = engine.plugins.get(plugin)
        if kernel is not None and kernel.state == "ready" and kernel.sha256 not in (None, sha256):
            async with self._locks.setdefault(plugin, asyncio.Lock()):  # its file changed: start it again
                if kernel.state == "ready" and kernel.sha256 not in (None, sha256):
                    log.info("restarting %s: its file changed since its kernel started", plugin)
                    await engine.stop(plugin)
        context = {"from": self.manager.peer_id, "to": self.manager.peer_id}
        service = await self.manager.get_service(f"{plugin}:default", context=context)
        started = getattr(kernel := engine.plugins.get(plugin), "sha256", None)
        if kernel is not None and started not in (None, sha256):  # the file changed as its kernel started
            raise NodeFailed(
                f"{plugin} changed during this run (its kernel runs {started[:12]}…, the run uses "
                f"{sha256[:12]}…): run the workflow again"
            )
        function = service.get(op) if isinstance(service, dict) else None
        if not callable(function):
            raise NodeFailed(f"{plugin} offers no function {op}")
        if tag and service.get("type") == "scopeflow-plugin":  # its progress is then this node's alone
            return await function(*args, **{CALL_KEYWORD: tag})
        return await function(*args)

    def _outputs(self, run: Run, node_id: str, entry: CacheEntry, values: dict[str, Any]) -> None:
        run.values[node_id] = values
        run.hashes[node_id] = {port: stored.hash for port, stored in entry.outputs.items()}
        run.record["nodes"][node_id]["outputs"] = {port: s.summary for port, s in entry.outputs.items()}
        for out in run.workflow.outputs:
            if out.from_[0] == node_id and out.from_[1] in entry.outputs:
                self.cache.hold(entry.key, OUTPUT_HOLD)  # the caller reads it after the run
                stored = entry.outputs[out.from_[1]]
                run.record["outputs"][out.name] = {
                    "node": node_id,
                    "port": out.from_[1],
                    "key": entry.key,
                    "summary": stored.summary,
                }

    async def _finish(self, run: Run) -> None:
        if run.tasks:
            await asyncio.wait(list(run.tasks.values()))
        states = [run.record["nodes"][n]["state"] for n in run.needed]
        if run.cancelled:
            state = "cancelled"
        elif "error" in states:
            state = "error"
        elif "cancelled" in states:
            state = "cancelled"
        else:
            state = "done"
        seconds = time.monotonic() - run.started
        for workflow_output in run.workflow.outputs:  # outputs fed straight from an input
            if workflow_output.from_[0] == INPUT and workflow_output.from_[1] in run.values[INPUT]:
                value = run.values[INPUT][workflow_output.from_[1]]
                kind = "ndarray" if isinstance(value, np.ndarray) else "value"
                run.record["outputs"][workflow_output.name] = {
                    "node": INPUT,
                    "port": workflow_output.from_[1],
                    "key": None,
                    "summary": value_summary(value, kind),
                }
        run.record.update({"state": state, "finished": time.time(), "seconds": round(seconds, 4)})
        if run.cancelled and run.reason != "cancelled":
            run.record["error"] = run.reason
        publish(run, {"run": run.id, "type": "run", "state": state, "seconds": round(seconds, 4)})
        try:
            await asyncio.to_thread(self.store.save, run.record)
            await asyncio.to_thread(self.store.prune)
        except OSError as exc:
            log.warning("could not save run %s: %s", run.id, exc)
        if run.sender is not None:
            run.outbox.put_nowait(None)
            with contextlib.suppress(Exception):  # the hub stopping does not wait for slow listeners
                await asyncio.wait_for(run.sender, 1 if run.reason != "cancelled" else EVENT_TIMEOUT)
        run.values.clear()
        if not run.finished.done():
            run.finished.set_result(None)
        self._forget_old()

    def _forget_old(self, keep: int = 20) -> None:
        """Finished runs stay in memory a while (their records are on disk)."""
        done = [run_id for run_id, run in self.runs.items() if run.finished.done()]
        for run_id in done[:-keep]:
            del self.runs[run_id]

    # -- events ------------------------------------------------------------------------------------------
    def _event(self, run: Run, node_id: str, state: str, **details: Any) -> None:
        node_event(run, self.store, node_id, state, **details)

    def _owner_of(self, tag: str) -> str | None:
        """The client that started the run of a node's op call (tagged ``<run>/<node>``)."""
        run = self.runs.get(tag.partition("/")[0])
        return run.client if run is not None else None

    def _ui_call(self, caller: str, name: str, args: list[Any], tag: str | None = None) -> None:
        """``api.showProgress`` from a plugin that runs a node: a ``running`` event with that progress for
        the node whose call made it (``tag``); untagged (ImJoy plugins): for every node running the plugin."""
        if name != "showProgress" or not args:
            return
        progress = fraction(args[0])
        if tag is not None:
            run_id, _, node_id = tag.partition("/")
            tagged = self.runs.get(run_id)
            if tagged is not None and not tagged.finished.done() and node_id in tagged.active.get(caller, []):
                self._event(tagged, node_id, "running", progress=progress)
            return
        for run in self.runs.values():
            nodes = run.active.get(caller)
            if nodes and not run.finished.done():
                self._event(run, nodes[-1], "running", progress=progress)


def file_sha256(path: str | None) -> str:
    if not path:
        raise OSError("no file")
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_result(result: Any, op: OpSpec) -> dict[str, Any]:
    """An op's result by output port: none, one value, or a list/tuple of one value per output."""
    ports = [p.name for p in op.outputs]
    if not ports:
        return {}
    if len(ports) == 1:
        return {ports[0]: result}
    if not isinstance(result, list | tuple) or len(result) != len(ports):
        raise NodeFailed(
            f"{op.name} should return {len(ports)} values ({', '.join(ports)}), got {type(result).__name__}"
        )
    return dict(zip(ports, result, strict=True))


def _plain_doc(doc: Any) -> Any:
    """A document received over RPC (dotdicts, tuples) as plain JSON types."""
    if isinstance(doc, dict):
        return {str(k): _plain_doc(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_plain_doc(v) for v in doc]
    return doc
