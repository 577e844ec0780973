"""Pins: the plugins table a workflow document pins, and how it compares with the registry."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scopeflow.plugins.registry import Registry
from scopeflow.workflows.document import WorkflowDoc
from scopeflow.workflows.pins import make_pins, pin_states


def document(wf_registry: Registry) -> dict[str, Any]:
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "nodes": [{"id": "make", "plugin": "wf-ops", "op": "make"}],
        "plugins": make_pins(wf_registry, ["wf-ops"]),
    }


def test_pins_ok_changed_missing(wf_registry: Registry) -> None:
    doc = document(wf_registry)
    pin = doc["plugins"]["wf-ops"]
    assert pin["version"] == "1.0.0" and pin["builtin"] is False and pin["url"] is None
    assert pin["sha256"] == wf_registry.get("wf-ops").sha256
    assert [s["state"] for s in pin_states(WorkflowDoc.model_validate(doc).plugins, wf_registry)] == ["ok"]
    changed = copy.deepcopy(doc)
    changed["plugins"]["wf-ops"]["sha256"] = "0" * 64
    changed["plugins"]["gone"] = {"version": "1", "sha256": "1" * 64, "builtin": False, "url": None}
    workflow = WorkflowDoc.model_validate(changed)
    states = {s["plugin"]: s for s in pin_states(workflow.plugins, wf_registry)}
    assert states["wf-ops"]["state"] == "changed"
    assert states["wf-ops"]["current"]["sha256"] == pin["sha256"]
    assert states["wf-ops"]["pinned"]["sha256"] == "0" * 64
    assert states["gone"] == {
        "plugin": "gone",
        "state": "missing",
        "pinned": changed["plugins"]["gone"],
        "current": None,
    }
    with pytest.raises(KeyError):
        make_pins(wf_registry, ["gone"])


def test_a_pin_keeps_the_resolved_packages_and_says_when_the_hub_resolves_them_otherwise(
    wf_registry: Registry,
) -> None:
    here = {"tabulate": "0.9.0", "termcolor": "3.3.0"}
    doc = document(wf_registry)
    doc["plugins"] = make_pins(wf_registry, ["wf-ops"], lambda plugin_id: dict(here))
    assert doc["plugins"]["wf-ops"]["environment"] == here
    pins = WorkflowDoc.model_validate(doc).plugins
    assert [s["state"] for s in pin_states(pins, wf_registry, lambda plugin_id: dict(here))] == ["ok"]
    elsewhere = {"tabulate": "0.8.10", "termcolor": "3.3.0"}
    [state] = pin_states(pins, wf_registry, lambda plugin_id: elsewhere)
    assert state["state"] == "environment" and state["changes"] == ["tabulate 0.9.0 → 0.8.10"]
    # unknown until the plugin's environment is built: nothing to say yet
    assert [s["state"] for s in pin_states(pins, wf_registry, lambda plugin_id: None)] == ["ok"]
