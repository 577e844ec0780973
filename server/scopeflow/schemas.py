"""JSON Schemas of what the hub sends the web app, from which ``web/scripts/gen-types.mjs`` writes its types.

``python -m scopeflow.schemas`` rewrites the schema files that are out of date; ``--check`` rewrites nothing
and exits 1 naming each stale file. The files:

- ``web/src/generated/schemas/plugin-manifest.schema.json``: :class:`PluginManifest` with its ``OpSpec`` and
  ``PortSpec``, as ``GET /api/plugins`` sends each plugin (``model_dump(mode="json", by_alias=True)``: every
  field is always present, so every field is required). The ``status`` the hub adds is not a model.
- ``server/scopeflow/workflows/workflow.schema.json``: the workflow document (package data, see
  :mod:`scopeflow.workflows.document`).

``--out DIR`` writes (or checks) the manifest schema in another folder than the web app's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scopeflow.plugins.manifest import PluginManifest
from scopeflow.workflows import document

__all__ = ["GENERATED_DIR", "manifest_schema", "schema_files"]

REPO = Path(__file__).resolve().parents[2]
GENERATED_DIR = REPO / "web" / "src" / "generated" / "schemas"
FIX = "cd web && npm run gen-types  (it runs python -m scopeflow.schemas, then writes the TypeScript)"


def _every_field_required(schema: dict[str, Any]) -> None:
    """``model_dump`` (no ``exclude_*``) sends every field, defaults included: mark them all required."""
    for model in [schema, *schema.get("$defs", {}).values()]:
        if "properties" in model:
            model["required"] = list(model["properties"])


def manifest_schema() -> dict[str, Any]:
    """The schema of one plugin manifest as the hub serializes it."""
    schema = PluginManifest.model_json_schema(by_alias=True, mode="serialization")
    _every_field_required(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://scopeflow.dev/plugin-manifest.schema.json",
        **schema,
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files(out: Path = GENERATED_DIR) -> dict[Path, Callable[[], str]]:
    """Each schema file → a function giving the text it should hold."""
    return {
        out / "plugin-manifest.schema.json": lambda: _text(manifest_schema()),
        document.SCHEMA_PATH: document.schema_text,
    }


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scopeflow.schemas", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    parser.add_argument("--out", type=Path, default=GENERATED_DIR, help="folder of the manifest schema")
    args = parser.parse_args(argv)
    stale = []
    for path, text in schema_files(args.out).items():
        wanted = text()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == wanted:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
            print(f"wrote {_shown(path)}")
    if args.check and stale:
        for path in stale:
            print(f"{_shown(path)} is stale: the Python models have changed", file=sys.stderr)
        print(f"regenerate it: {FIX}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
