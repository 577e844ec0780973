"""Parameters: what a value given to an op's value input must be, by the input's JSON schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scopeflow.plugins.registry import Registry
from scopeflow.workflows.params import value_problem

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"


@pytest.fixture
def schemas(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The JSON schemas of the inputs of wf-ops' ``make`` op."""
    registry = Registry(None, [PLUGINS], tmp_path / "data")
    registry.scan()
    make = next(o for o in registry.get("wf-ops").ops if o.name == "make")
    return {p.name: p.schema_ for p in make.inputs}


def test_values_fit_the_type_and_bounds_of_their_input(schemas: dict[str, dict[str, Any]]) -> None:
    assert value_problem("value", 3, schemas["value"]) == ""
    assert value_problem("value", 180, schemas["value"]) == "value must be ≤ 100, got 180"
    assert value_problem("value", -1, schemas["value"]) == "value must be ≥ 0, got -1"
    assert value_problem("height", "tall", schemas["height"]).startswith("height must be integer")


def test_nan_and_infinity_never_fit(schemas: dict[str, dict[str, Any]]) -> None:
    # json.loads and msgpack let NaN through
    assert value_problem("value", float("nan"), schemas["value"]) == "value must not hold NaN or infinity"
