"""The example workflows (``builtin_plugins/workflows/*.json``, package data): finding them by name and
pinning their plugins.

A gallery document pins every plugin it uses by the sha256 of the built-in plugin file; ``pins`` gives the
current pins of the built-ins, ``stale_pins`` the plugins whose pin no longer matches, and ``repin``
rewrites a document's ``plugins`` table (``scripts/pin-workflows`` does this for the whole gallery).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scopeflow._util import BUILTIN_PLUGINS, GALLERY
from scopeflow.plugins.manifest import ManifestError, is_plugin_file, parse_plugin

PLUGINS_DIR = BUILTIN_PLUGINS
GALLERY_DIR = GALLERY

__all__ = ["GALLERY_DIR", "dump", "find", "names", "pins", "repin", "stale_pins", "used_plugins"]


def names(directory: Path = GALLERY_DIR) -> list[str]:
    """The gallery's workflow names (file stems), sorted."""
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def find(name: str, directory: Path = GALLERY_DIR) -> Path | None:
    """The gallery file called ``name`` (with or without ``.json``), or None."""
    stem = name.removesuffix(".json")
    if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
        return None
    path = directory / f"{stem}.json"
    return path if path.is_file() else None


def pins(plugins_dir: Path = PLUGINS_DIR) -> dict[str, dict[str, Any]]:
    """Plugin id → the pin of the built-in plugin file as it is now (version, sha256, builtin, url)."""
    out: dict[str, dict[str, Any]] = {}
    for file in sorted(plugins_dir.iterdir()):
        if not is_plugin_file(file):
            continue
        try:
            manifest = parse_plugin(file.read_bytes(), file.name, path=str(file))
        except (ManifestError, OSError):
            continue
        out[manifest.id] = {
            "version": manifest.version,
            "sha256": manifest.sha256,
            "builtin": True,
            "url": None,
        }
    return out


def used_plugins(doc: dict[str, Any]) -> list[str]:
    """The plugin ids a document's nodes use, in order of first use."""
    seen: list[str] = []
    for node in doc.get("nodes") or []:
        plugin = node.get("plugin") if isinstance(node, dict) else None
        if isinstance(plugin, str) and plugin not in seen:
            seen.append(plugin)
    return seen


def stale_pins(doc: dict[str, Any], current: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Why the document's pins differ from the built-ins: one sentence per plugin (empty when all match)."""
    current = pins() if current is None else current
    table = doc.get("plugins") or {}
    problems = []
    for plugin in used_plugins(doc):
        pin, now = table.get(plugin), current.get(plugin)
        if now is None:
            problems.append(f"{plugin}: not a built-in plugin")
        elif not isinstance(pin, dict):
            problems.append(f"{plugin}: not pinned")
        elif pin.get("sha256") != now["sha256"] or pin.get("version") != now["version"]:
            problems.append(
                f"{plugin}: pinned {pin.get('version')} sha256 {str(pin.get('sha256'))[:12]}…, "
                f"the built-in is {now['version']} sha256 {now['sha256'][:12]}…"
            )
    problems += [
        f"{plugin}: pinned but no node uses it" for plugin in table if plugin not in used_plugins(doc)
    ]
    return problems


def repin(doc: dict[str, Any], current: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document with its ``plugins`` table set to the built-ins it uses (KeyError for an unknown one)."""
    current = pins() if current is None else current
    missing = [p for p in used_plugins(doc) if p not in current]
    if missing:
        raise KeyError(f"not built-in plugins: {', '.join(missing)}")
    return {**doc, "plugins": {plugin: dict(current[plugin]) for plugin in used_plugins(doc)}}


def dump(doc: dict[str, Any]) -> str:
    """A document as the gallery stores it: indented JSON, keys in their given order, a final newline."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
