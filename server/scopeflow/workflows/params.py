"""Parameters: whether a value given to an op's ``value`` input fits the input's JSON schema.

:func:`value_problem` checks the parts of JSON Schema that op inputs declare (``type``, ``anyOf``, ``enum``,
``const``, bounds, lengths, ``items``) and says why a value does not fit, naming the input. NaN and infinity
never fit: JSON has neither, so a document holding them could not be written back.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["value_problem"]

_TYPES: dict[str, Any] = {
    "integer": int,
    "number": (int, float),
    "string": str,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def value_problem(name: str, value: Any, schema: dict[str, Any]) -> str:
    """Why ``value`` does not fit a port's JSON schema (type, enum, bounds, lengths; ``""``: it does)."""
    if not _finite(value):  # JSON has no NaN or infinity: a document with them could not be written back
        return f"{name} must not hold NaN or infinity"
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, t) for t in allowed):
            return f"{name} must be {' or '.join(allowed)}, got {json.dumps(value)}"
    if "anyOf" in schema and isinstance(schema["anyOf"], list):
        problems = [value_problem(name, value, s) for s in schema["anyOf"] if isinstance(s, dict)]
        if problems and all(problems):
            return problems[0]
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(json.dumps(v) for v in schema["enum"])
        return f"{name} must be one of {choices}, got {json.dumps(value)}"
    if "const" in schema and value != schema["const"]:
        return f"{name} must be {json.dumps(schema['const'])}, got {json.dumps(value)}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        bounds = (
            ("minimum", lambda v, b: v >= b, "≥"),
            ("maximum", lambda v, b: v <= b, "≤"),
            ("exclusiveMinimum", lambda v, b: v > b, ">"),
            ("exclusiveMaximum", lambda v, b: v < b, "<"),
        )
        for key, fits, sign in bounds:
            bound = schema.get(key)
            if isinstance(bound, int | float) and not isinstance(bound, bool) and not fits(value, bound):
                return f"{name} must be {sign} {bound}, got {value}"
    if isinstance(value, str | list):
        low, high = ("minLength", "maxLength") if isinstance(value, str) else ("minItems", "maxItems")
        unit = "characters" if isinstance(value, str) else "items"
        if isinstance(schema.get(low), int) and len(value) < schema[low]:
            return f"{name} must have at least {schema[low]} {unit}"
        if isinstance(schema.get(high), int) and len(value) > schema[high]:
            return f"{name} must have at most {schema[high]} {unit}"
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = value_problem(f"{name}[{i}]", item, schema["items"])
            if problem:
                return problem
    return ""


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    expected = _TYPES.get(name)
    return expected is None or isinstance(value, expected)
