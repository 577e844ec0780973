"""The port-compatibility rule, case by case: the table web/src/workflow/doc.test.ts also runs (in TS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scopeflow.plugins.manifest import PortSpec
from scopeflow.workflows.document import WorkflowInput, compatible

pytestmark = pytest.mark.unit

CASES = json.loads((Path(__file__).parent / "port-cases.json").read_text(encoding="utf-8"))["cases"]


def source(end: dict[str, Any]) -> tuple[PortSpec | WorkflowInput, str]:
    """A case's source as the validator sees it: an op's output port, or a workflow input."""
    if "input" in end:
        put = WorkflowInput.model_validate(end["input"])
        return put, f"input {put.name}"
    return PortSpec.model_validate(end["port"]), end["op"]


def test_the_table_is_sound() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names are unique"
    assert all(set(case) == {"name", "source", "target", "expected"} for case in CASES)
    assert any(case["expected"] == "compatible" for case in CASES)
    assert any(case["expected"] != "compatible" for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_compatible(case: dict[str, Any]) -> None:
    port, name = source(case["source"])
    target = PortSpec.model_validate(case["target"]["port"])
    reason = compatible(port, target, name, case["target"]["op"])
    assert (reason or "compatible") == case["expected"]
