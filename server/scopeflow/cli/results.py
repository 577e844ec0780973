"""Workflow results on disk: images as TIFF (OME axes) or PNG, tables as CSV, values as JSON.

Each file carries its provenance (:mod:`scopeflow.cli.provenance`): images in their metadata, tables and
values in a sidecar ``NAME.provenance.json``. Files are written atomically (a ``.part`` file renamed into
place).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from scopeflow._util import write_atomic
from scopeflow.images.formats import write_image

__all__ = ["as_table", "default_axes", "table_to_csv", "write_result"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def default_axes(ndim: int) -> str | None:
    return {2: "yx", 3: "zyx", 4: "czyx", 5: "tczyx"}.get(ndim)


def as_table(value: Any) -> tuple[list[str], list[list[Any]]] | None:
    """A table (a dict of equal-length columns, or a list of row dicts) as (columns, rows); else None."""
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        columns: list[str] = []
        for row in value:
            columns += [str(key) for key in row if str(key) not in columns]
        return columns, [[row.get(column) for column in columns] for row in value]
    if isinstance(value, dict) and value:
        cells = {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in value.items()}
        if not all(isinstance(v, list) for v in cells.values()):
            return None
        lengths = {len(v) for v in cells.values()}
        if len(lengths) != 1:
            return None
        length = lengths.pop()
        return list(cells), [[cells[c][i] for c in cells] for i in range(length)]
    return None


def _cell(value: Any) -> str:
    """One CSV cell, as the web app's export writes it: text that a spreadsheet would run is quoted with '."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        text = str(int(value))
    elif isinstance(value, list | tuple):
        text = ",".join(_cell(v) if not isinstance(v, str) else v for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value)
    else:
        text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        text = "'" + text
    if any(c in text for c in '",\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def table_to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    lines = [",".join(_cell(c) for c in columns)]
    lines += [",".join(_cell(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"bytes": len(value)}
    return value


def write_result(
    value: Any,
    directory: Path,
    name: str,
    provenance: dict[str, Any],
    axes: str | None = None,
    image_format: str = "tiff",
    columns: list[str] | None = None,
) -> list[Path]:
    """Write one output named ``name`` into ``directory``; returns the files written.

    Arrays become ``NAME.tif`` (or ``NAME.png``: 2D, or 2D with 1/3/4 channels; otherwise TIFF), tables
    ``NAME.csv`` and anything else ``NAME.json``; the last two with ``NAME.provenance.json`` beside them.
    ``columns``: the table's column order, for a value that may have lost it (a table sent through JSON).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        if axes is None or len(axes) != value.ndim:
            axes = default_axes(value.ndim)
        suffix = "png" if image_format == "png" and _fits_png(value, axes) else "tif"
        path = directory / f"{name}.{suffix}"
        write_image(value, path, axes=axes, metadata=provenance)
        return [path]
    table = as_table(value)
    if table is not None:
        if columns and sorted(columns) == sorted(table[0]):
            where = [table[0].index(c) for c in columns]
            table = columns, [[row[i] for i in where] for row in table[1]]
        path = directory / f"{name}.csv"
        write_atomic(path, table_to_csv(*table))
    else:
        path = directory / f"{name}.json"
        write_atomic(path, json.dumps(_jsonable(value), indent=2, allow_nan=True) + "\n")
    sidecar = directory / f"{name}.provenance.json"
    write_atomic(sidecar, json.dumps(provenance, indent=2) + "\n")
    return [path, sidecar]


def _fits_png(array: np.ndarray, axes: str | None) -> bool:
    if array.ndim == 2:
        return True
    return array.ndim == 3 and axes is not None and "c" in axes and array.shape[axes.index("c")] in (1, 3, 4)
