"""Pins: a workflow document's ``plugins`` table, plugin id → version, sha256, built-in or not, and URL.

:func:`make_pins` writes the table from the registry as it is now; :func:`pin_states` compares a
document's table with the registry (``ok``, ``changed`` or ``missing``), which is how loading a workflow
says that a plugin it pins has changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from scopeflow.plugins.manifest import PluginManifest
from scopeflow.plugins.registry import Registry


class Pin(Protocol):
    """A pin as a workflow document holds it (``PluginPin`` of :mod:`scopeflow.workflows.document`)."""

    sha256: str

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


__all__ = ["EnvironmentOf", "environment_changes", "make_pins", "pin_of", "pin_states"]


EnvironmentOf = Callable[[str], "dict[str, str] | None"]  # plugin id → its resolved packages, if known


def pin_of(
    registry: Registry, manifest: PluginManifest, environment_of: EnvironmentOf | None = None
) -> dict[str, Any]:
    pin: dict[str, Any] = {
        "version": manifest.version,
        "sha256": manifest.sha256,
        "builtin": registry.is_builtin(manifest),
        "url": manifest.source_url,
    }
    environment = environment_of(manifest.id) if environment_of is not None else None
    if environment:
        pin["environment"] = environment
    return pin


def make_pins(
    registry: Registry, plugin_ids: Iterable[str], environment_of: EnvironmentOf | None = None
) -> dict[str, dict[str, Any]]:
    """The ``plugins`` table for these plugins as the registry has them now (:class:`KeyError` if unknown)."""
    return {
        plugin_id: pin_of(registry, registry.get(plugin_id), environment_of)
        for plugin_id in sorted(set(plugin_ids))
    }


def environment_changes(pinned: dict[str, str] | None, current: dict[str, str] | None) -> list[str]:
    """``name pinned → now`` for each pinned package the hub resolves otherwise (nothing when either is
    unknown)."""
    if not pinned or current is None:
        return []
    return [
        f"{name} {version} → {current.get(name, 'absent')}"
        for name, version in sorted(pinned.items())
        if current.get(name) != version
    ]


def pin_states(
    pinned: Mapping[str, Pin], registry: Registry, environment_of: EnvironmentOf | None = None
) -> list[dict[str, Any]]:
    """Per pinned plugin (a document's ``plugins`` table): ``ok``, ``changed`` (another sha256 now),
    ``missing``, or ``environment`` (the same file, but its requirements resolve to other versions here),
    with both pins."""
    states = []
    for plugin_id, pin in sorted(pinned.items()):
        manifest = registry.resolve(plugin_id)
        current = pin_of(registry, manifest, environment_of) if manifest is not None else None
        state = "missing" if current is None else ("ok" if current["sha256"] == pin.sha256 else "changed")
        entry: dict[str, Any] = {
            "plugin": plugin_id,
            "state": state,
            "pinned": {
                k: v for k, v in pin.model_dump(mode="json").items() if v is not None or k != "environment"
            },
            "current": current,
        }
        changes = environment_changes(entry["pinned"].get("environment"), (current or {}).get("environment"))
        if state == "ok" and changes:
            entry.update(state="environment", changes=changes)
        states.append(entry)
    return states
