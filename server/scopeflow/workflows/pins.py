"""Pins: a workflow document's ``plugins`` table, plugin id → version, sha256, built-in or not, and URL.

:func:`make_pins` writes the table from the registry as it is now; :func:`pin_states` compares a
document's table with the registry (``ok``, ``changed`` or ``missing``), which is how loading a workflow
says that a plugin it pins has changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from scopeflow.plugins.manifest import PluginManifest
from scopeflow.plugins.registry import Registry


class Pin(Protocol):
    """A pin as a workflow document holds it (``PluginPin`` of :mod:`scopeflow.workflows.document`)."""

    sha256: str

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...

__all__ = ["make_pins", "pin_of", "pin_states"]


def pin_of(registry: Registry, manifest: PluginManifest) -> dict[str, Any]:
    return {
        "version": manifest.version,
        "sha256": manifest.sha256,
        "builtin": registry.is_builtin(manifest),
        "url": manifest.source_url,
    }


def make_pins(registry: Registry, plugin_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The ``plugins`` table for these plugins as the registry has them now (:class:`KeyError` if unknown)."""
    return {plugin_id: pin_of(registry, registry.get(plugin_id)) for plugin_id in sorted(set(plugin_ids))}


def pin_states(pinned: Mapping[str, Pin], registry: Registry) -> list[dict[str, Any]]:
    """Per pinned plugin (a document's ``plugins`` table): ``ok``, ``changed`` (another sha256 now) or
    ``missing``, with both versions."""
    states = []
    for plugin_id, pin in sorted(pinned.items()):
        manifest = registry.resolve(plugin_id)
        current = pin_of(registry, manifest) if manifest is not None else None
        state = "missing" if current is None else ("ok" if current["sha256"] == pin.sha256 else "changed")
        states.append(
            {"plugin": plugin_id, "state": state, "pinned": pin.model_dump(mode="json"), "current": current}
        )
    return states
