"""Parameters: whether a value given to an op's ``value`` input fits the input's JSON schema.

:func:`value_problem` validates with :mod:`jsonschema` (Draft 2020-12 unless the schema names its own
``$schema``) and turns the first error into a sentence naming the input, e.g. ``sigma must be ≤ 50, got 70``.
NaN and infinity never fit: JSON has neither, so a document holding them could not be written back.

A schema that is not valid JSON Schema (a plugin's mistake, e.g. ``"minimum": "5"``) checks nothing: every
value fits, and a warning saying why is logged once per schema. The plugin author can fix it; the user of a
workflow could not.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from scopeflow._util import canonical_json

__all__ = ["value_problem"]

log = logging.getLogger("scopeflow.workflows.params")

# Which error to report first when a value breaks several keywords at one place (as the checks ran before)
_FIRST = (
    "type", "anyOf", "oneOf", "enum", "const",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
)  # fmt: skip
_BOUNDS = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
_LENGTHS = {
    "minLength": ("at least", "characters"),
    "maxLength": ("at most", "characters"),
    "minItems": ("at least", "items"),
    "maxItems": ("at most", "items"),
    "minProperties": ("at least", "keys"),
    "maxProperties": ("at most", "keys"),
}
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def value_problem(name: str, value: Any, schema: dict[str, Any]) -> str:
    """Why ``value`` does not fit a port's JSON schema (``""``: it does), naming the input ``name``."""
    if not _finite(value):  # JSON has no NaN or infinity: a document with them could not be written back
        return f"{name} must not hold NaN or infinity"
    if not schema:
        return ""
    try:
        text = canonical_json(schema).decode()  # the cache key: equal schemas, equal text
    except (TypeError, ValueError) as e:  # values JSON cannot hold
        _warn_once(repr(schema), f"is not JSON ({e})")
        return ""
    validator = _validator(text)
    if validator is None:
        return ""
    try:
        errors = list(validator.iter_errors(value))
    except Exception as e:  # e.g. a $ref that resolves nowhere (nothing is fetched over the network)
        _warn_once(text, f"cannot be checked: {e}")
        return ""
    return _say(name, _first(errors)) if errors else ""


@functools.lru_cache(maxsize=512)
def _validator(text: str) -> Validator | None:
    """A validator for a schema given as canonical JSON text; None (after a warning) if it is malformed."""
    schema = json.loads(text)
    try:
        cls = validator_for(schema, default=Draft202012Validator)
        cls.check_schema(schema)
    except SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        _warn_once(text, f"is not valid JSON Schema ({where + ': ' if where else ''}{e.message})")
        return None
    except Exception as e:  # an unknown $schema, say
        _warn_once(text, f"is not valid JSON Schema ({e})")
        return None
    return cls(schema)


@functools.lru_cache(maxsize=512)
def _warn_once(schema: str, why: str) -> None:
    log.warning("an input's schema %s %s: its values are not checked", schema[:200], why)


def _first(errors: Iterable[ValidationError]) -> ValidationError:
    """The error to report: the outermost place first, then in the order of ``_FIRST``, then as found."""

    def key(error: ValidationError) -> tuple[Any, ...]:
        path = tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)
        rank = _FIRST.index(str(error.validator)) if error.validator in _FIRST else len(_FIRST)
        return len(path), path, rank

    return min(errors, key=key)  # min keeps the first of equals: the validator's own order


def _say(name: str, error: ValidationError) -> str:
    """One error as a sentence naming the input (and where inside it: ``name[2]``, ``name.key``)."""
    where = name + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" if _KEY.match(str(p)) else f"[{_show(p)}]"
        for p in error.absolute_path
    )
    got = _show(error.instance)
    need = _requirement(error)
    if need is not None:
        return f"{where} must be {need}, got {got}"
    kind, bound = str(error.validator), error.validator_value
    if kind in ("anyOf", "oneOf") and error.context:
        return _alternatives(name, where, got, error)
    if kind == "oneOf":
        return f"{where} must fit exactly one of {len(bound)} alternatives, got {got} which fits several"
    if kind in _LENGTHS:
        which, unit = _LENGTHS[kind]
        return f"{where} must have {which} {bound} {unit}, got {got}"
    if kind == "pattern":
        return f"{where} must match the pattern {_show(bound)}, got {got}"
    if kind == "required" and isinstance(error.instance, dict):
        missing = [key for key in bound if key not in error.instance] or ["?"]
        return f"{where} must have the key {_show(missing[0])}, got {got}"
    if kind == "uniqueItems":
        return f"{where} must not repeat items, got {got}"
    if kind == "not":
        return f"{where} must not fit {_show(bound)}, got {got}"
    return f"{where}: {error.message}"  # additionalProperties, contains, ...: jsonschema's words


def _requirement(error: ValidationError) -> str | None:
    """What the value must be, for errors said as ``must be …`` (``None``: said otherwise)."""
    kind, bound = str(error.validator), error.validator_value
    if kind == "type":
        return " or ".join([bound] if isinstance(bound, str) else bound)
    if kind == "enum":
        return "one of " + ", ".join(_show(v) for v in bound)
    if kind == "const":
        return _show(bound)
    if kind in _BOUNDS:
        return f"{_BOUNDS[kind]} {bound}"
    if kind == "multipleOf":
        return f"a multiple of {bound}"
    return None


def _alternatives(name: str, where: str, got: str, error: ValidationError) -> str:
    """``anyOf``/``oneOf`` that nothing fits: every alternative's wish at once if each is a plain ``must be``
    at this very place (``must be ≥ 0 or null``), else the problem with the first alternative whose type
    the value has (it is likely the one meant), else with the first alternative."""
    firsts: dict[int, ValidationError] = {}
    for index in sorted({int(sub.relative_schema_path[0]) for sub in error.context}):
        firsts[index] = _first(sub for sub in error.context if sub.relative_schema_path[0] == index)
    here = list(error.absolute_path)
    needs = [_requirement(sub) if list(sub.absolute_path) == here else None for sub in firsts.values()]
    if all(need is not None for need in needs):
        return f"{where} must be {' or '.join(dict.fromkeys(n for n in needs if n))}, got {got}"
    meant = [s for s in firsts.values() if not (s.validator == "type" and list(s.absolute_path) == here)]
    return _say(name, (meant or list(firsts.values()))[0])


def _show(value: Any) -> str:
    """A value as JSON, shortened if long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"
