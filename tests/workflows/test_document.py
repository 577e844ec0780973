"""Workflow documents: the model, every problem named by node and field, graph checks, the schema."""

from __future__ import annotations

import json
from typing import Any

from scopeflow.plugins.registry import Registry
from scopeflow.workflows.document import SCHEMA_PATH, check, order, schema_text, validate
from scopeflow.workflows.pins import make_pins


def document(wf_registry: Registry) -> dict[str, Any]:
    """make → scale → total, with an input feeding a second branch."""
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": "Make, scale, sum",
        "inputs": [{"name": "image", "kind": "ndarray", "axes": "yx", "default": {"sample": "nuclei-2d"}}],
        "nodes": [
            {"id": "make", "plugin": "wf-ops", "op": "make", "params": {"value": 3}},
            {"id": "scale", "plugin": "wf-ops", "op": "scale", "params": {"factor": 2}},
            {"id": "sum", "plugin": "wf-ops", "op": "total"},
            {"id": "other", "plugin": "wf-ops", "op": "scale"},
        ],
        "edges": [
            {"from": ["make", "result"], "to": ["scale", "image"]},
            {"from": ["scale", "result"], "to": ["sum", "image"]},
            {"from": ["$input", "image"], "to": ["other", "image"]},
        ],
        "outputs": [{"name": "sum", "from": ["sum", "result"]}],
        "plugins": make_pins(wf_registry, ["wf-ops"]),
    }


def errors(doc: Any, wf_registry: Registry) -> list[dict[str, Any]]:
    return check(doc, wf_registry, ["nuclei-2d"]).errors


def test_a_good_document_passes(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    result = validate(doc, wf_registry, ["nuclei-2d"])
    assert result == {"ok": True, "errors": [], "pins": result["pins"]}
    assert [p["state"] for p in result["pins"]] == ["ok"]
    checked = check(doc, wf_registry)
    assert checked.workflow is not None
    assert order(checked.workflow) == ["make", "scale", "sum", "other"]


def test_structure_errors_name_node_and_field_all_at_once(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["nodes"][1]["colour"] = "red"
    doc["nodes"][2]["id"] = "bad id!"
    del doc["nodes"][0]["op"]
    doc["edges"][0]["from"] = ["make"]
    found = errors(doc, wf_registry)
    where = {(e["node"], e["field"]) for e in found}
    assert ("scale", "nodes[1].colour") in where
    assert (None, "nodes[2].id") in where or ("bad id!", "nodes[2].id") in where
    assert ("make", "nodes[0].op") in where
    assert any(e["field"].startswith("edges[0].from") for e in found)
    colour = next(e for e in found if e["field"] == "nodes[1].colour")
    assert "scale" in colour["message"] and "colour" in colour["message"]


def test_newer_format_is_refused_with_a_reason(wf_registry: Registry) -> None:
    doc = document(wf_registry) | {"version": 2}
    [error] = errors(doc, wf_registry)
    assert error["field"] == "version" and "newer" in error["message"]
    assert errors([1, 2], wf_registry)[0]["message"].startswith("a workflow is a JSON object")


def test_params_are_checked_against_the_op_schema(wf_registry: Registry) -> None:
    doc = document(wf_registry)  # what a value must be: test_params.py
    doc["nodes"][0]["params"] = {"value": 180, "height": "tall", "colour": 1}
    doc["nodes"][3]["params"] = {"image": 1}
    found = {e["field"]: e for e in errors(doc, wf_registry)}
    assert found["nodes[0].params.value"]["message"] == "node make: value must be ≤ 100, got 180"
    assert found["nodes[0].params.value"]["node"] == "make"
    assert "height must be integer" in found["nodes[0].params.height"]["message"]
    assert "no input 'colour'" in found["nodes[0].params.colour"]["message"]
    assert "connect it with an edge" in found["nodes[3].params.image"]["message"]


def test_unknown_plugin_op_port_and_duplicates(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["nodes"].append({"id": "x", "plugin": "nope", "op": "make"})
    doc["nodes"].append({"id": "y", "plugin": "wf-ops", "op": "nope"})
    doc["nodes"].append({"id": "make", "plugin": "wf-ops", "op": "make"})
    doc["edges"].append({"from": ["make", "nothing"], "to": ["other", "factor"]})
    doc["edges"].append({"from": ["ghost", "result"], "to": ["sum", "journal"]})
    doc["edges"].append({"from": ["$input", "missing"], "to": ["scale", "journal"]})
    found = errors(doc, wf_registry)
    messages = [e["message"] for e in found]
    assert "node x: unknown plugin 'nope'" in messages
    assert any(m.startswith("node y: wf-ops has no op 'nope'") for m in messages)
    assert "two nodes are named 'make'" in messages
    assert any("make has no output 'nothing'" in m for m in messages)
    assert "no node 'ghost'" in messages
    assert "no workflow input 'missing'" in messages


def test_one_edge_per_input_and_required_inputs(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["edges"].append({"from": ["$input", "image"], "to": ["scale", "image"]})
    doc["edges"] = [e for e in doc["edges"] if e["to"] != ["sum", "image"]]
    doc["nodes"][3]["params"] = {"journal": "x"}
    doc["edges"].append({"from": ["$input", "image"], "to": ["other", "journal"]})
    found = errors(doc, wf_registry)
    messages = [e["message"] for e in found]
    assert "node scale: input image already has an edge (one edge per input)" in messages
    assert "node sum: input image is required: connect it" in messages
    assert "node other: input journal is fed by an edge and also set in params" in messages


def test_cycles_are_found(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["edges"].append({"from": ["sum", "result"], "to": ["make", "journal"]})
    found = errors(doc, wf_registry)
    cycle = [e for e in found if "cycle" in e["message"]]
    assert cycle and "make" in cycle[0]["message"] and "scale" in cycle[0]["message"]


def test_port_compatibility(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["nodes"].append({"id": "regions", "plugin": "wf-ops", "op": "regions"})
    doc["nodes"].append({"id": "bytes", "plugin": "wf-ops", "op": "bytes_only"})
    doc["nodes"].append({"id": "stack", "plugin": "wf-ops", "op": "stack"})
    doc["nodes"].append({"id": "total2", "plugin": "wf-ops", "op": "total"})
    doc["edges"] += [
        {"from": ["scale", "result"], "to": ["regions", "image"]},  # yx → cyx
        {"from": ["make", "result"], "to": ["bytes", "image"]},  # float32 → uint8
        {"from": ["sum", "result"], "to": ["stack", "image"]},  # value → ndarray
        {"from": ["regions", "result"], "to": ["total2", "image"]},  # table → ndarray
    ]
    found = {e["node"]: e for e in errors(doc, wf_registry)}
    assert found["regions"]["message"] == "node regions: scale gives yx, regions expects cyx"
    assert found["regions"]["field"] == "edges[3]"
    assert found["bytes"]["message"] == "node bytes: make gives float32, bytes_only expects uint8"
    assert "expects an array" in found["stack"]["message"]
    assert found["total2"]["message"] == "node total2: regions gives a table, total expects an array"
    ok = document(wf_registry)  # cyx → cyx, any dtype, ndarray input with matching axes
    ok["nodes"] += [
        {"id": "stack", "plugin": "wf-ops", "op": "stack"},
        {"id": "regions", "plugin": "wf-ops", "op": "regions"},
    ]
    ok["edges"] += [
        {"from": ["$input", "image"], "to": ["stack", "image"]},
        {"from": ["stack", "result"], "to": ["regions", "image"]},
    ]
    assert errors(ok, wf_registry) == []
    bad_input = document(wf_registry)
    bad_input["inputs"][0]["axes"] = "zyx"
    [error] = errors(bad_input, wf_registry)
    assert error["message"] == "node other: input image gives zyx, scale expects yx"


def test_input_defaults_and_outputs(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["inputs"][0]["default"] = {"sample": "no-such-sample"}
    doc["inputs"].append({"name": "n", "kind": "ndarray", "default": 3})
    doc["outputs"].append({"name": "bad", "from": ["sum", "nothing"]})
    messages = [e["message"] for e in errors(doc, wf_registry)]
    assert "input image: no sample 'no-such-sample'" in messages
    assert 'input n: an array default is {"sample": "<sample id>"}' in messages
    assert any("total has no output 'nothing'" in m for m in messages)


def test_every_used_plugin_is_pinned(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    doc["plugins"] = {}
    [error] = errors(doc, wf_registry)
    assert error["field"] == "plugins.wf-ops" and error["node"] == "make"


def test_schema_file_is_in_sync_with_the_model() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "workflow.schema.json is stale: run python -m scopeflow.workflows.document"
    )
    schema = json.loads(schema_text())
    assert schema["additionalProperties"] is False
    assert {"format", "version"} <= set(schema["required"])
