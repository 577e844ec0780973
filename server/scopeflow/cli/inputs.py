"""Workflow inputs from the command line: ``NAME=PATH``, ``NAME='folder/*.tif'``, ``NAME=sample:ID``, JSON.

Each given input becomes what the runner takes (a numpy array, a table, a JSON value, ``{"sample": id}``) and
what the provenance records about it (where it came from, its content hash). A glob pattern makes a batch:
the workflow runs once per matching file.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scopeflow._util import content_hash
from scopeflow._util import sha256_hex as file_hash
from scopeflow.images import formats as data

__all__ = ["Given", "InputError", "defaults", "parse", "read_item"]

GLOB_CHARS = "*?["


class InputError(ValueError):
    """An input that cannot be used; the message names it."""


@dataclass
class Given:
    """One input as sent to the runner, with its provenance."""

    value: Any
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    fixed: dict[str, Given]
    batch_name: str | None = None
    batch_files: list[Path] = field(default_factory=list)


def _declared(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        i["name"]: i
        for i in doc.get("inputs") or []
        if isinstance(i, dict) and isinstance(i.get("name"), str)
    }


def parse(pairs: list[str], doc: dict[str, Any], cwd: Path | None = None) -> Parsed:
    """Read every ``NAME=VALUE`` pair against the document's inputs (InputError on the first bad one)."""
    declared = _declared(doc)
    parsed = Parsed(fixed={})
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InputError(
                f"--input {pair!r}: write NAME=VALUE (a file, 'folder/*.tif', sample:ID or JSON)"
            )
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise InputError(f"--input {name}: the workflow has no input of that name (its inputs: {known})")
        if name in parsed.fixed or name == parsed.batch_name:
            raise InputError(f"--input {name}: given twice")
        kind = declared[name].get("kind", "value")
        if kind != "value" and any(c in text for c in GLOB_CHARS) and not Path(text).exists():
            if parsed.batch_name is not None:
                raise InputError(
                    f"--input {name}: only one input can be a batch pattern ({parsed.batch_name} is)"
                )
            files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not files:
                raise InputError(f"--input {name}: no file matches {text!r}")
            parsed.batch_name, parsed.batch_files = name, files
            continue
        parsed.fixed[name] = read_value(name, kind, text, declared[name])
    return parsed


def read_value(name: str, kind: str, text: str, spec: dict[str, Any]) -> Given:
    if text.startswith("sample:"):
        sample = text.removeprefix("sample:")
        try:
            array, _ = data.load_sample(sample)
        except KeyError as exc:
            raise InputError(f"--input {name}: {exc.args[0]}") from None
        return Given({"sample": sample}, {"source": f"sample:{sample}", "sha256": content_hash(array)})
    if kind == "ndarray":
        return read_item(name, Path(text), spec)
    if kind == "table":
        return _read_table(name, Path(text))
    try:
        value = json.loads(text)
    except ValueError:
        value = text  # a bare word is a string
    return Given(value, {"source": "value", "value": value, "sha256": content_hash(value)})


def read_item(name: str, path: Path, spec: dict[str, Any]) -> Given:
    """An image file as an ndarray input (InputError: missing, unreadable, or axes unlike the input's)."""
    if not path.is_file():
        raise InputError(f"--input {name}: no such file: {path}")
    raw = path.read_bytes()
    try:
        array, axes = data.read_image(raw, name=path.name)
    except data.ImageError as exc:
        raise InputError(str(exc)) from None
    want = spec.get("axes")
    if isinstance(want, str) and want and want != axes:
        raise InputError(f"{path.name}: the image's axes are {axes}, input {name} expects {want}")
    return Given(
        array,
        {"source": str(path), "file_sha256": file_hash(raw), "sha256": content_hash(array), "axes": axes},
    )


def _read_table(name: str, path: Path) -> Given:
    if not path.is_file():
        raise InputError(f"--input {name}: no such file: {path}")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        columns = rows[0] if rows else {}
        table: Any = {column: _typed([row.get(column) for row in rows]) for column in columns}
    else:
        try:
            table = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--input {name}: {path.name} is not JSON ({exc})") from None
    return Given(table, {"source": str(path), "sha256": content_hash(table)})


def _typed(cells: list[str | None]) -> list[Any]:
    """A CSV column as numbers when every filled cell is one (integers when all are whole numbers written so,
    empty cells None), else as the text it is."""
    filled = [cell for cell in cells if cell not in (None, "")]
    for kind in (int, float):
        try:
            numbers = iter([kind(cell) for cell in filled])
        except ValueError:
            continue
        return [next(numbers) if cell not in (None, "") else None for cell in cells]
    return cells


def defaults(doc: dict[str, Any], given: dict[str, Given]) -> dict[str, dict[str, Any]]:
    """Provenance of the inputs left to their defaults (samples hashed here)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in _declared(doc).items():
        if name in given or "default" not in spec:
            continue
        default = spec["default"]
        entry: dict[str, Any] = {"source": "default", "default": default}
        if isinstance(default, dict) and isinstance(default.get("sample"), str):
            with contextlib.suppress(KeyError):
                entry["sha256"] = content_hash(data.load_sample(default["sample"])[0])
        else:
            entry["sha256"] = content_hash(default)
        out[name] = entry
    return out
