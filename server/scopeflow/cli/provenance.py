"""Provenance: what made a result — the workflow, the plugins that really ran, the inputs, the version.

Every file ``scopeflow run`` writes carries one provenance record: images in their metadata (the TIFF's
description, the PNG's ``scopeflow`` text chunk), tables and values in a sidecar ``NAME.provenance.json``.
:func:`scopeflow.images.formats.read_provenance` reads it back from any of them.
"""

from __future__ import annotations

from typing import Any

from scopeflow import __version__
from scopeflow._util import canonical_json, sha256_hex, utc_stamp

FORMAT = "scopeflow.provenance"

__all__ = ["FORMAT", "record", "workflow_hash"]


def workflow_hash(doc: dict[str, Any]) -> str:
    """sha256 of the workflow document's canonical JSON, layout (positions) included."""
    return sha256_hex(canonical_json(doc))


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
        "created": utc_stamp(),
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
