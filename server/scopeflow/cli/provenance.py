"""Provenance: what made a result — the workflow, the plugins that really ran, the inputs, the version.

Every file ``scopeflow run`` writes carries one provenance record: images in their metadata (the TIFF's
description, the PNG's ``scopeflow`` text chunk), tables and values in a sidecar ``NAME.provenance.json``.
:func:`scopeflow.images.formats.read_provenance` reads it back from any of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np

from scopeflow import __version__
from scopeflow.workflows.cache import array_hash, canonical

FORMAT = "scopeflow.provenance"

__all__ = ["FORMAT", "canonical_json", "content_hash", "file_hash", "record", "workflow_hash"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """sha256 of an array's dtype, shape and bytes; of a table's or value's canonical JSON.

    The same hash the runner gives the value (:mod:`scopeflow.workflows.cache`), so a recorded input hash is
    the one its nodes' cache keys were made of; arrays are hashed in little-endian order, as they travel.
    """
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        return array_hash(array)
    return hashlib.sha256(canonical(value)).hexdigest()


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def workflow_hash(doc: dict[str, Any]) -> str:
    """sha256 of the workflow document's canonical JSON, layout (positions) included."""
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def record(
    doc: dict[str, Any],
    run: dict[str, Any],
    inputs: dict[str, dict[str, Any]],
    output: str,
) -> dict[str, Any]:
    """The provenance of one workflow output.

    ``run`` is the runner's run record (its ``plugins`` table says which version and sha256 really ran);
    ``inputs`` maps each input name to how it was given and its content hash (``{"sha256", "source"}``).
    """
    spec = (run.get("outputs") or {}).get(output) or {}
    node = (run.get("nodes") or {}).get(spec.get("node")) or {}
    return {
        "format": FORMAT,
        "version": 1,
        "scopeflow": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "output": {
            "name": output,
            "node": spec.get("node"),
            "port": spec.get("port"),
            "key": spec.get("key"),
            "cached": bool(node.get("cached")),
        },
        "run": {"id": run.get("id"), "state": run.get("state"), "seconds": run.get("seconds")},
        "plugins": run.get("plugins") or {},
        "pins": run.get("pins") or [],
        "inputs": inputs,
        "workflow_sha256": workflow_hash(doc),
        "workflow": doc,
    }
