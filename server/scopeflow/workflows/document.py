"""Workflow documents (format version 1): the model, its JSON Schema, and checks against the registry.

A workflow is plugin ops as nodes and typed data as edges (see ``docs/workflows.md``). :func:`check`
returns every problem of a document at once, each as ``{"node", "field", "message"}`` naming where it is
(a parameter's value is checked by :mod:`.params`); :func:`validate` adds how the document's ``plugins``
table compares with the registry (:mod:`.pins`). Nothing here runs plugin code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scopeflow.plugins.manifest import OpSpec, PortSpec
from scopeflow.plugins.registry import Registry
from scopeflow.workflows.params import value_problem
from scopeflow.workflows.pins import EnvironmentOf, pin_states

__all__ = [
    "FORMAT",
    "INPUT",
    "VERSION",
    "Checked",
    "WorkflowDoc",
    "check",
    "compatible",
    "json_schema",
    "order",
]

FORMAT = "scopeflow.workflow"
VERSION = 1
INPUT = "$input"  # the source of an edge from a workflow input
NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
SCHEMA_PATH = Path(__file__).parent / "workflow.schema.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Position(_Model):
    x: float
    y: float


class WorkflowInput(_Model):
    """A named input of the workflow, given at run time or taken from its default."""

    name: str = Field(pattern=NAME)
    kind: Literal["ndarray", "table", "value"]
    axes: str | None = Field(default=None, description="Axes of an ndarray input, e.g. `yx`.")
    dtype: list[str] | None = Field(default=None, description="Possible dtypes of an ndarray input.")
    description: str = ""
    default: Any = Field(
        default=None, description='ndarray: {"sample": "<sample id>"}; value: any JSON value; null: none.'
    )
    position: Position | None = None


class Node(_Model):
    """One call of a plugin's op."""

    id: str = Field(pattern=NAME)
    plugin: str = Field(description="Plugin id.")
    op: str = Field(description="Op name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Values of inputs not fed by edges.")
    position: Position | None = None
    label: str | None = None


class Edge(_Model):
    """Data from an output port (or a workflow input) to an input port."""

    from_: tuple[str, str] = Field(alias="from", description='[node id | "$input", port or input name]')
    to: tuple[str, str] = Field(description="[node id, input port]")


class WorkflowOutput(_Model):
    name: str = Field(pattern=NAME)
    from_: tuple[str, str] = Field(alias="from", description="[node id, output port]")
    position: Position | None = None


class PluginPin(_Model):
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    builtin: bool = False
    url: str | None = None
    environment: dict[str, str] | None = Field(
        default=None,
        description="The package versions the plugin's requirements resolved to when it was pinned "
        "(name → version); a hub that resolves them otherwise says so.",
    )


class WorkflowDoc(_Model):
    """A scopeflow workflow document, format version 1."""

    format: Literal["scopeflow.workflow"]
    version: Literal[1]
    title: str = ""
    description: str = Field(default="", description="Markdown shown in the gallery.")
    inputs: list[WorkflowInput] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    outputs: list[WorkflowOutput] = Field(default_factory=list)
    plugins: dict[str, PluginPin] = Field(default_factory=dict, description="Plugin id → pinned version.")


def json_schema() -> dict[str, Any]:
    schema = WorkflowDoc.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://scopeflow.dev/workflow.schema.json"
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class Checked:
    """The result of :func:`check`: the parsed workflow (None if its structure is invalid) and the errors."""

    def __init__(self, workflow: WorkflowDoc | None, errors: list[dict[str, Any]]) -> None:
        self.workflow = workflow
        self.errors = errors

    @property
    def ok(self) -> bool:
        return self.workflow is not None and not self.errors


def _error(node: str | None, field: str, message: str) -> dict[str, Any]:
    return {"node": node, "field": field, "message": message}


def _field(loc: Iterable[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _parse(doc: Any) -> tuple[WorkflowDoc | None, list[dict[str, Any]]]:
    if not isinstance(doc, dict):
        return None, [_error(None, "", f"a workflow is a JSON object, not {type(doc).__name__}")]
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        message = (
            f"workflow format version {version} is newer than this hub reads ({VERSION}): update scopeflow"
        )
        return None, [_error(None, "version", message)]
    try:
        return WorkflowDoc.model_validate(doc), []
    except ValidationError as exc:
        errors = []
        nodes: list[Any] = doc["nodes"] if isinstance(doc.get("nodes"), list) else []
        for item in exc.errors():
            loc = list(item["loc"])
            node = None
            if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int) and loc[1] < len(nodes):
                raw = nodes[loc[1]]
                node = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r}"
            elif item["type"] == "missing":
                message = f"{loc[-1]} is required"
            where = f"node {node}: " if node else ""
            errors.append(_error(node, _field(loc), f"{where}{message}"))
        return None, errors


def check(doc: Any, registry: Registry, samples: Iterable[str] = ()) -> Checked:
    """Every problem of ``doc`` against the plugins of ``registry`` (``samples``: known sample ids)."""
    workflow, errors = _parse(doc)
    if workflow is None:
        return Checked(None, errors)
    return Checked(workflow, _Graph(workflow, registry, set(samples)).errors())


class _Graph:
    def __init__(self, workflow: WorkflowDoc, registry: Registry, samples: set[str]) -> None:
        self.wf = workflow
        self.registry = registry
        self.samples = samples
        self.out: list[dict[str, Any]] = []
        self.ops: dict[str, OpSpec] = {}  # node id → op, for nodes whose plugin and op exist

    def add(self, node: str | None, field: str, message: str) -> None:
        self.out.append(_error(node, field, f"node {node}: {message}" if node else message))

    def errors(self) -> list[dict[str, Any]]:
        self._names()
        self._nodes()
        fed = self._edges()
        self._params(fed)
        self._outputs()
        self._cycles()
        return self.out

    def _names(self) -> None:
        named: list[tuple[str, str, list[str]]] = [
            ("input", "name", [p.name for p in self.wf.inputs]),
            ("output", "name", [p.name for p in self.wf.outputs]),
            ("node", "id", [n.id for n in self.wf.nodes]),
        ]
        for what, key, names in named:
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name in seen:
                    self.add(None, f"{what}s[{i}].{key}", f"two {what}s are named {name!r}")
                seen.add(name)
        for i, put in enumerate(self.wf.inputs):
            field = f"inputs[{i}].default"
            if put.kind == "ndarray" and put.default is not None:
                sample = put.default.get("sample") if isinstance(put.default, dict) else None
                if not isinstance(sample, str) or set(put.default) != {"sample"}:
                    self.add(
                        None, field, f'input {put.name}: an array default is {{"sample": "<sample id>"}}'
                    )
                elif self.samples and sample not in self.samples:
                    self.add(None, field, f"input {put.name}: no sample {sample!r}")
            if put.kind == "table" and put.default is not None and not isinstance(put.default, dict | list):
                self.add(None, field, f"input {put.name}: a table default is a dict or a list")

    def _nodes(self) -> None:
        unpinned: set[str] = set()
        for i, node in enumerate(self.wf.nodes):
            manifest = self.registry.resolve(node.plugin)
            if manifest is None:
                self.add(node.id, f"nodes[{i}].plugin", f"unknown plugin {node.plugin!r}")
                continue
            if manifest.lang != "python":
                self.add(node.id, f"nodes[{i}].plugin", f"{node.plugin} runs in the browser, not in a kernel")
                continue
            op = next((o for o in manifest.ops if o.name == node.op), None)
            if op is None:
                names = ", ".join(o.name for o in manifest.ops) or "none"
                self.add(node.id, f"nodes[{i}].op", f"{node.plugin} has no op {node.op!r} (it has {names})")
                continue
            self.ops[node.id] = op
            if node.plugin not in self.wf.plugins and node.plugin not in unpinned:
                unpinned.add(node.plugin)
                self.add(
                    node.id, f"plugins.{node.plugin}", f"plugin {node.plugin} is not in the plugins table"
                )

    def _source(self, ref: tuple[str, str], field: str) -> tuple[str, PortSpec | WorkflowInput] | None:
        """The source of an edge: (what to call it, its port), or None after recording why not."""
        node_id, port = ref
        if node_id == INPUT:
            put = next((p for p in self.wf.inputs if p.name == port), None)
            if put is None:
                self.add(None, field, f"no workflow input {port!r}")
                return None
            return f"input {port}", put
        node = next((n for n in self.wf.nodes if n.id == node_id), None)
        if node is None:
            self.add(None, field, f"no node {node_id!r}")
            return None
        op = self.ops.get(node_id)
        if op is None:
            return None  # its plugin or op is unknown: reported already
        found = next((p for p in op.outputs if p.name == port), None)
        if found is None:
            names = ", ".join(p.name for p in op.outputs) or "none"
            self.add(node_id, field, f"{node.op} has no output {port!r} (it has {names})")
            return None
        return node.op, found

    def _edges(self) -> dict[str, set[str]]:
        fed: dict[str, set[str]] = {}
        for i, edge in enumerate(self.wf.edges):
            field = f"edges[{i}]"
            source = self._source(edge.from_, f"{field}.from")
            node_id, port = edge.to
            node = next((n for n in self.wf.nodes if n.id == node_id), None)
            if node is None:
                self.add(None, f"{field}.to", f"no node {node_id!r}")
                continue
            op = self.ops.get(node_id)
            if op is None:
                continue
            target = next((p for p in op.inputs if p.name == port), None)
            if target is None:
                names = ", ".join(p.name for p in op.inputs) or "none"
                self.add(node_id, f"{field}.to", f"{node.op} has no input {port!r} (it has {names})")
                continue
            if port in fed.setdefault(node_id, set()):
                self.add(node_id, f"{field}.to", f"input {port} already has an edge (one edge per input)")
            fed[node_id].add(port)
            if port in node.params:
                self.add(node_id, f"{field}.to", f"input {port} is fed by an edge and also set in params")
            if source is not None:
                problem = compatible(source[1], target, source[0], node.op)
                if problem:
                    self.add(node_id, field, problem)
        return fed

    def _params(self, fed: dict[str, set[str]]) -> None:
        for i, node in enumerate(self.wf.nodes):
            op = self.ops.get(node.id)
            if op is None:
                continue
            ports = {p.name: p for p in op.inputs}
            for name, value in node.params.items():
                field = f"nodes[{i}].params.{name}"
                port = ports.get(name)
                if port is None:
                    self.add(node.id, field, f"{node.op} has no input {name!r}")
                elif port.kind != "value":
                    self.add(node.id, field, f"{name} is an {port.kind} input: connect it with an edge")
                else:
                    problem = value_problem(name, value, port.schema_)
                    if problem:
                        self.add(node.id, field, problem)
            for port in op.inputs:
                if port.required and port.name not in node.params and port.name not in fed.get(node.id, ()):
                    how = "connect it" if port.kind != "value" else "connect it or give it a value"
                    self.add(
                        node.id, f"nodes[{i}].params.{port.name}", f"input {port.name} is required: {how}"
                    )

    def _outputs(self) -> None:
        for i, out in enumerate(self.wf.outputs):
            self._source(out.from_, f"outputs[{i}].from")

    def _cycles(self) -> None:
        ids = {n.id for n in self.wf.nodes}
        edges = [(e.from_[0], e.to[0]) for e in self.wf.edges if e.from_[0] in ids and e.to[0] in ids]
        left = _kahn(ids, edges)[1]
        if left:
            names = ", ".join(sorted(left))
            self.add(None, "edges", f"the edges make a cycle through {names}")


def _kahn(
    ids: set[str], edges: list[tuple[str, str]], ranks: dict[str, int] | None = None
) -> tuple[list[str], set[str]]:
    """Topological order of ``ids`` (ties by ``ranks``) and the ids left over (those on cycles)."""
    ranks = ranks or {}
    incoming = {i: 0 for i in ids}
    after: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        incoming[b] += 1
        after[a].append(b)
    ready = sorted((i for i in ids if incoming[i] == 0), key=lambda i: (ranks.get(i, 0), i))
    ordered: list[str] = []
    while ready:
        current = ready.pop(0)
        ordered.append(current)
        for nxt in after[current]:
            incoming[nxt] -= 1
            if incoming[nxt] == 0:
                ready.append(nxt)
                ready.sort(key=lambda i: (ranks.get(i, 0), i))
    return ordered, ids - set(ordered)


def order(workflow: WorkflowDoc) -> list[str]:
    """Node ids in an order where every node comes after those it depends on (document order on ties)."""
    ids = {n.id for n in workflow.nodes}
    ranks = {n.id: i for i, n in enumerate(workflow.nodes)}
    edges = [(e.from_[0], e.to[0]) for e in workflow.edges if e.from_[0] in ids and e.to[0] in ids]
    ordered, left = _kahn(ids, edges, ranks)
    if left:
        raise ValueError(f"the edges make a cycle through {', '.join(sorted(left))}")
    return ordered


def upstream(workflow: WorkflowDoc, node_id: str) -> set[str]:
    """``node_id`` and every node it depends on."""
    parents: dict[str, set[str]] = {}
    for edge in workflow.edges:
        if edge.from_[0] != INPUT:
            parents.setdefault(edge.to[0], set()).add(edge.from_[0])
    found, todo = set(), [node_id]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(parents.get(current, ()))
    return found


def compatible(source: PortSpec | WorkflowInput, target: PortSpec, source_name: str, target_name: str) -> str:
    """Why data from ``source`` cannot go to ``target`` (``""``: it can)."""
    if _is_any(source) or _is_any(target):
        return ""
    if source.kind != target.kind:
        return f"{source_name} gives {_a(source.kind)}, {target_name} expects {_a(target.kind)}"
    if source.axes and target.axes and source.axes != target.axes:
        return f"{source_name} gives {source.axes}, {target_name} expects {target.axes}"
    if source.dtype and target.dtype:
        extra = [d for d in source.dtype if d not in target.dtype]
        if extra:
            return (
                f"{source_name} gives {', '.join(extra)}, {target_name} expects {' or '.join(target.dtype)}"
            )
    return ""


def _a(kind: str) -> str:
    return {"ndarray": "an array", "table": "a table"}.get(kind, "a value")


def _is_any(port: PortSpec | WorkflowInput) -> bool:
    return isinstance(port, PortSpec) and port.kind == "value" and not port.schema_


def validate(
    doc: Any, registry: Registry, samples: Iterable[str] = (), environment_of: EnvironmentOf | None = None
) -> dict[str, Any]:
    """``{"ok", "errors", "pins"}``: what the ``validate`` method and ``POST /api/workflows/check`` return."""
    checked = check(doc, registry, samples)
    pins = (
        pin_states(checked.workflow.plugins, registry, environment_of) if checked.workflow is not None else []
    )
    return {"ok": checked.ok, "errors": checked.errors, "pins": pins}


def dump(workflow: WorkflowDoc) -> dict[str, Any]:
    return workflow.model_dump(mode="json", by_alias=True, exclude_none=False)


def _main() -> None:  # python -m scopeflow.workflows.document: rewrite the schema file
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH.name}")


if __name__ == "__main__":
    _main()
