"""Ports: type hints and declared JSON-schema fragments → the fields of a ``PortSpec``.

Pure functions over ``ast`` nodes, shared by both plugin formats; nothing here imports plugin code.
``Image``, ``Image["yx"]`` and ``np.ndarray`` become ``ndarray`` ports (with axes and dtypes when given),
``Table`` a ``table`` port; ``int``, ``float``, ``str``, ``bool``, ``Literal``, ``list`` and ``dict`` are
JSON values, anything else any value; ``X | None`` makes a port optional.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any, Literal


class PortError(ValueError):
    """A declaration that cannot become a port; the message says where."""


def output_ports(returns: ast.expr | None, declared: Any, where: str) -> list[dict[str, Any]]:
    hints: list[Hint] | None = None
    if isinstance(returns, ast.Constant) and returns.value is None:
        hints = []
    elif (
        isinstance(returns, ast.Subscript)
        and last_name(returns.value) in ("tuple", "Tuple")
        and isinstance(returns.slice, ast.Tuple)
        and not is_ellipsis(returns.slice.elts[-1])
    ):
        hints = [read_hint(element) for element in returns.slice.elts]
    elif returns is not None:
        hints = [read_hint(returns)]
    if declared is None:
        names = ["result"] if hints is None or len(hints) == 1 else [f"result{i}" for i in range(len(hints))]
    elif isinstance(declared, dict) or (
        isinstance(declared, list) and all(isinstance(n, str) for n in declared)
    ):
        names = list(declared)
    else:
        raise PortError(f"{where}: must be a list of names or a dict name → schema")
    hints = hints or [Hint() for _ in names]  # no annotation, or `-> None` with declared outputs
    if len(names) != len(hints):
        raise PortError(f"{where}: {len(names)} names for {len(hints)} returned values")
    fragments = read_fragments(declared if isinstance(declared, dict) else None, where)
    return [
        merge_fragment(make_port(out, hint, None, not hint.optional), fragments.get(out))
        for out, hint in zip(names, hints, strict=True)
    ]


def read_fragments(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict | str) for v in value.values()):
        raise PortError(f"{where}: must be a dict of name → JSON-schema dict")
    return {key: item if isinstance(item, dict) else {"description": item} for key, item in value.items()}


def merge_fragment(port: dict[str, Any], fragment: dict[str, Any] | None) -> dict[str, Any]:
    """Lay a declared fragment over a port derived from a type hint (pydantic checks the types later)."""
    rest = dict(fragment or {})
    for key in ("description", "default", "axes", "dtype"):
        if key in rest:
            port[key] = rest.pop(key)
    port["required"] = port["required"] and "default" not in (fragment or {})
    port["dtype"] = [port["dtype"]] if isinstance(port["dtype"], str) else port["dtype"]
    port["schema"] = {**port["schema"], **rest}
    return port


@dataclass
class Hint:
    kind: Literal["value", "ndarray", "table"] = "value"
    schema: dict[str, Any] = field(default_factory=dict)
    axes: str | None = None
    dtype: list[str] | None = None
    optional: bool = False


def make_port(name: str, hint: Hint, default: Any, required: bool) -> dict[str, Any]:
    schema = {"type": "object", "format": hint.kind} if hint.kind != "value" else dict(hint.schema)
    port = {"name": name, "kind": hint.kind, "schema": schema, "axes": hint.axes, "dtype": hint.dtype}
    return port | {"description": "", "default": default, "required": required}


_JSON_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}
_JSON_TYPES |= dict.fromkeys(("list", "List", "Sequence", "tuple", "Tuple", "set", "Set"), "array")
_JSON_TYPES |= dict.fromkeys(("dict", "Dict", "Mapping"), "object")
_NDARRAYS = ("Image", "ndarray", "NDArray")
_DTYPES = {"bool", "float16", "float32", "float64", "complex64", "complex128"}
_DTYPES |= {f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)}


def read_hint(node: ast.expr | None) -> Hint:
    """Map a type annotation to a port kind and JSON schema (unknown annotations: any value)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return Hint()
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return union_hint([node.left, node.right])
    base, args = node, []
    if isinstance(node, ast.Subscript):
        base, args = node.value, node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    last = last_name(base)
    if last in ("Optional", "Union"):
        return union_hint(args + ([ast.Constant(None)] if last == "Optional" else []))
    if last == "Annotated" and args:
        return read_hint(args[0])
    if last == "Literal":
        values = [literal_value(arg, "", strict=False) for arg in args]
        types = {_JSON_TYPES.get(type(value).__name__) for value in values}
        same_type = len(types) == 1 and None not in types
        return Hint(schema={"enum": values} | ({"type": types.pop()} if same_type else {}))
    if last in _JSON_TYPES:
        schema: dict[str, Any] = {"type": _JSON_TYPES[last]}
        if schema["type"] == "array" and args and (len(args) == 1 or is_ellipsis(args[-1])):
            schema |= {"items": items} if (items := read_hint(args[0]).schema) else {}
        return Hint(schema=schema)
    if last in _NDARRAYS:
        axes = [arg.value for arg in args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        dtypes = [last_name(arg) for arg in args if last_name(arg) in _DTYPES]
        return Hint("ndarray", axes=axes[0] if axes else None, dtype=dtypes or None)
    return Hint("table") if last == "Table" else Hint()


def union_hint(members: list[ast.expr]) -> Hint:
    rest = [member for member in members if not (isinstance(member, ast.Constant) and member.value is None)]
    hint = read_hint(rest[0]) if len(rest) == 1 else Hint()  # a union of several types: any value
    hint.optional = hint.optional or len(rest) < len(members)
    return hint


def literal_value(node: ast.expr, where: str, *, strict: bool = True) -> Any:
    """A literal as JSON data (tuples become lists); else an error, or None if not strict."""
    try:
        return json.loads(json.dumps(ast.literal_eval(node)))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        if strict:
            raise PortError(f"{where}: must be a literal of JSON-like data") from None
        return None


def is_ellipsis(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def dotted(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    parent = dotted(node.value) if isinstance(node, ast.Attribute) else None
    return f"{parent}.{node.attr}" if parent and isinstance(node, ast.Attribute) else None


def last_name(node: ast.expr | None) -> str:
    return (dotted(node) or "").rsplit(".", 1)[-1]
