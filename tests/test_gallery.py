"""The example workflows in plugins/workflows: valid documents, pinned to the built-ins as they are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scopeflow import data, gallery
from scopeflow.manifest import parse_plugin

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
NAMES = gallery.names()


def manifests() -> dict[str, object]:
    out = {}
    for file in (ROOT / "plugins").iterdir():
        if gallery.is_plugin_file(file):
            manifest = parse_plugin(file.read_bytes(), file.name)
            out[manifest.id] = manifest
    return out


def problems(doc: dict) -> list[str]:
    """What makes a document invalid against the built-in plugins' ops (the rules of docs/workflows.md)."""
    found = []
    plugins = manifests()
    if doc.get("format") != "scopeflow.workflow" or doc.get("version") != 1:
        found.append("format/version")
    if not doc.get("title") or not doc.get("description"):
        found.append("a gallery workflow needs a title and a description")
    inputs = {i["name"]: i for i in doc["inputs"]}
    samples = {s["id"] for s in data.list_samples()}
    for spec in doc["inputs"]:
        assert NAME.match(spec["name"]), spec["name"]
        default = spec.get("default")
        if spec["kind"] == "ndarray" and (
            not isinstance(default, dict) or default.get("sample") not in samples
        ):
            found.append(f"input {spec['name']}: needs a built-in sample as its default")
        if spec["kind"] == "value" and "default" not in spec:
            found.append(f"input {spec['name']}: needs a default")
    ops = {}
    for node in doc["nodes"]:
        assert NAME.match(node["id"]), node["id"]
        manifest = plugins.get(node["plugin"])
        op = next((o for o in manifest.ops if o.name == node["op"]), None) if manifest else None
        if op is None:
            found.append(f"node {node['id']}: no op {node['plugin']}.{node['op']}")
            continue
        ops[node["id"]] = op
        for param in node.get("params", {}):
            if param not in {p.name for p in op.inputs if p.kind == "value"}:
                found.append(f"node {node['id']}: {param} is not a value input of {node['op']}")
    if len(ops) != len(doc["nodes"]) or len({n["id"] for n in doc["nodes"]}) != len(doc["nodes"]):
        found.append("node ids must be unique and name real ops")
    fed: dict[tuple[str, str], object] = {}
    for edge in doc["edges"]:
        (source, out), (target, port) = edge["from"], edge["to"]
        if source == "$input":
            spec = inputs.get(out)
            source_kind, source_axes = (spec["kind"], spec.get("axes")) if spec else (None, None)
        else:
            port_spec = (
                next((p for p in ops[source].outputs if p.name == out), None) if source in ops else None
            )
            source_kind, source_axes = (port_spec.kind, port_spec.axes) if port_spec else (None, None)
        target_spec = next((p for p in ops[target].inputs if p.name == port), None) if target in ops else None
        if source_kind is None or target_spec is None:
            found.append(f"edge {edge}: unknown port")
            continue
        if target_spec.schema_ and source_kind != target_spec.kind:
            found.append(f"edge {edge}: {source_kind} into {target_spec.kind}")
        if source_axes and target_spec.axes and source_axes != target_spec.axes:
            found.append(f"edge {edge}: axes {source_axes} into {target_spec.axes}")
        if (target, port) in fed or port in doc["nodes"][[n["id"] for n in doc["nodes"]].index(target)][
            "params"
        ]:
            found.append(f"edge {edge}: the port is fed twice")
        fed[(target, port)] = edge
    for node_id, op in ops.items():
        for port in op.inputs:
            if port.required and (node_id, port.name) not in fed:
                found.append(f"node {node_id}: required input {port.name} is not fed")
    for output in doc["outputs"]:
        node_id, port = output["from"]
        if node_id not in ops or port not in {p.name for p in ops[node_id].outputs}:
            found.append(f"output {output['name']}: no port {node_id}.{port}")
    return found


def test_the_gallery_has_at_least_three_workflows():
    assert len(NAMES) >= 3, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_gallery_workflow_is_valid(name):
    doc = json.loads((gallery.GALLERY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert problems(doc) == []


@pytest.mark.parametrize("name", NAMES)
def test_gallery_pins_match_the_built_in_plugins(name):
    doc = json.loads((gallery.GALLERY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert gallery.stale_pins(doc) == [], f"run scripts/pin-workflows: {gallery.stale_pins(doc)}"
    assert set(doc["plugins"]) == set(gallery.used_plugins(doc))


def test_a_broken_document_is_caught():
    doc = json.loads((gallery.GALLERY_DIR / f"{NAMES[0]}.json").read_text(encoding="utf-8"))
    doc["nodes"][0]["op"] = "no_such_op"
    doc["edges"].append({"from": ["$input", "nothing"], "to": [doc["nodes"][-1]["id"], "image"]})
    assert len(problems(doc)) >= 2


def test_a_changed_plugin_makes_the_pin_stale_and_the_script_repins(tmp_path):
    doc = json.loads((gallery.GALLERY_DIR / f"{NAMES[0]}.json").read_text(encoding="utf-8"))
    plugin = gallery.used_plugins(doc)[0]
    changed = dict(gallery.pins())
    changed[plugin] = {**changed[plugin], "sha256": "0" * 64}
    stale = gallery.stale_pins(doc, changed)
    assert len(stale) == 1 and stale[0].startswith(f"{plugin}: pinned")
    assert gallery.stale_pins(gallery.repin(doc, changed), changed) == []
    unpinned = {**doc, "plugins": {}}
    assert len(gallery.stale_pins(unpinned)) == len(gallery.used_plugins(doc))


def test_pin_script_reports_the_gallery_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pin-workflows"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("up to date") == len(NAMES)
