"""Type hints → ports, read from source without importing anything."""

from __future__ import annotations

import ast

import pytest

from scopeflow.plugins.ports import PortError, output_ports, read_hint


def hint_of(annotation: str):
    return read_hint(ast.parse(annotation, mode="eval").body)


@pytest.mark.parametrize(
    ("annotation", "kind", "schema", "axes", "optional"),
    [
        ("int", "value", {"type": "integer"}, None, False),
        ("float | None", "value", {"type": "number"}, None, True),
        ("Optional[str]", "value", {"type": "string"}, None, True),
        ("Literal['otsu', 'li']", "value", {"enum": ["otsu", "li"], "type": "string"}, None, False),
        ("list[float]", "value", {"type": "array", "items": {"type": "number"}}, None, False),
        ('Image["cyx"]', "ndarray", {}, "cyx", False),
        ("np.ndarray", "ndarray", {}, None, False),
        ("Table", "table", {}, None, False),
        ("SomethingElse", "value", {}, None, False),
    ],
)
def test_hints(annotation, kind, schema, axes, optional):
    hint = hint_of(annotation)
    assert (hint.kind, hint.schema, hint.axes, hint.optional) == (kind, schema, axes, optional)


def test_tuple_returns_name_their_outputs():
    ports = output_ports(ast.parse("tuple[Image, Table]", mode="eval").body, ["labels", "table"], "f")
    assert [(p["name"], p["kind"]) for p in ports] == [("labels", "ndarray"), ("table", "table")]
    with pytest.raises(PortError, match="2 returned values"):
        output_ports(ast.parse("tuple[Image, Table]", mode="eval").body, ["only"], "f")
