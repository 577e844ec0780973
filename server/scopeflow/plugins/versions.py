"""Plugin versions the hub writes on a user's behalf: a network fine-tuned on their annotations, as a plugin.

The ``finetune`` op of a built-in plugin (nuclei-segmentation) runs in that plugin's kernel and, when done,
calls ``register_finetune(request, weights)`` of the hub's ``plugin-versions`` service. The hub, not the
kernel, writes the new plugin: the weights go to ``DATA_DIR/plugins/weights/<sha256>.pt``, and the plugin
file is made from :data:`TEMPLATE` (its ops delegate to the built-in plugin, with these weights). The kernel
sends data only (the weights, loaded with ``weights_only``; a checked name; the model card, a docstring,
checked to stay one), never code. The file is installed as plugins installed from source are
(:meth:`Registry.install_source`: atomically, earlier versions kept by content hash), and the index
records its origin (``"origin": {"kind": "fine-tune", ...}``): it is trusted because the hub wrote it from
its own template for the user's own fine-tune. Only the kernel of a built-in plugin that offers fine-tuning
may call this (a kernel alone may connect as its plugin's id).

The new plugin's id is ``<base id>-<name>`` (the registry keys plugins by id and an installed file of a
built-in's id would shadow it: the shipped network stays, and versions of several names sit side by side),
its version ``<base version>+ft.<first 8 hex of the weights' sha256>``; its file names the weights' full
sha256 and loads nothing else, so a workflow pinning the file's sha256 pins the weights too.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from scopeflow._util import sha256_hex, write_atomic
from scopeflow.plugins.registry import Registry

__all__ = ["BASES", "PluginVersions", "render"]

BASES = {"nuclei-segmentation": "scopeflow.builtin_plugins.nuclei_segmentation"}  # id → importable module
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
MAX_WEIGHTS = 64 * 2**20
MAX_CARD = 100_000

TEMPLATE = '''"""{docs}"""

import importlib
from pathlib import Path
from typing import Any

from scopeflow import Image, op

PLUGIN = {plugin}
BASE = {base}
WEIGHTS_SHA256 = {weights}


@op(
    title="Segment nuclei",
    inputs={{
        "diameter": {{
            "minimum": 0, "maximum": 1000, "description": "typical nucleus diameter in pixels; 0: measure it"
        }},
        "probability": {{
            "minimum": 0, "maximum": 0.95, "description": "foreground threshold; 0: the model's own"
        }},
        "seed_height": {{
            "minimum": 0, "maximum": 1, "description": "lower splits touching nuclei; 0: the model's own"
        }},
        "min_area": {{"minimum": 0, "description": "objects smaller than this are dropped (px²)"}},
    }},
)
def segment(
    image: Image["yx"],
    diameter: float = 0.0,
    probability: float = 0.0,
    seed_height: float = 0.0,
    min_area: int = 15,
) -> Image["yx"]:
    """Label every nucleus (int32, same shape) with the fine-tuned weights."""
    return _base().segment(image, diameter, probability, seed_height, min_area)


@op(title="Check an image against the training data")
def assess(image: Image["yx"], diameter: float = 0.0) -> dict:
    """Statistics of the image and of its segmentation beside the trained ranges, and the warnings."""
    return _base().assess(image, diameter)


def _base() -> Any:
    """The built-in plugin's code, segmenting with this version's weights (their sha256 checked)."""
    module = importlib.import_module(BASE["module"])
    weights = Path(__file__).resolve().parent / "weights" / f"{{WEIGHTS_SHA256}}.pt"
    module.use_weights(weights, WEIGHTS_SHA256)
    return module
'''


def render(
    base: dict[str, str], name: str, weights_sha256: str, card: str, description: str
) -> tuple[str, dict[str, Any]]:
    """The plugin file of a fine-tuned version, and its ``PLUGIN`` dict."""
    plugin = {
        "id": f"{base['id']}-{name}",
        "name": f"{base['name']} ({name})",
        "version": f"{base['version']}+ft.{weights_sha256[:8]}",
        "description": description,
        "requirements": ["torch", "numpy", "scipy", "scikit-image"],
        "tags": ["segmentation", "deep learning", "nuclei", "fine-tuned"],
    }
    docs = card.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    source = TEMPLATE.format(
        docs=docs,
        plugin=json.dumps(plugin, ensure_ascii=False, indent=4),
        base=json.dumps(base, indent=4),
        weights=json.dumps(weights_sha256),
    )
    tree = ast.parse(source)
    if ast.get_docstring(tree, clean=False) != card:  # the card stays text: nothing of it becomes code
        raise ValueError("the model card does not fit in a docstring")
    return source, plugin


class PluginVersions:
    """The ``plugin-versions`` service of the hub: new plugin versions written on a user's behalf."""

    def __init__(self, registry: Registry, engine: Any = None) -> None:
        self.registry = registry
        self.engine = engine  # to stop a kernel still running an earlier version of the same id
        self.weights_dir = registry.installed_dir / "weights"

    def service(self) -> dict[str, Any]:
        return {
            "id": "plugin-versions",
            "name": "scopeflow plugin versions",
            "type": "scopeflow-plugin-versions",
            "description": "New plugin versions the hub writes for a user, e.g. a fine-tuned network",
            "config": {"visibility": "public", "require_context": True},
            "register_finetune": self.register_finetune,
        }

    def fine_tuned(self, plugin_id: str) -> bool:
        """Whether the installed plugin ``plugin_id`` is a version this service wrote."""
        try:
            index = json.loads(self.registry.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        entry = index.get(plugin_id) if isinstance(index, dict) else None
        origin = entry.get("origin") if isinstance(entry, dict) else None
        return isinstance(origin, dict) and origin.get("kind") == "fine-tune"

    async def register_finetune(self, request: Any, weights: Any, context: Any = None) -> dict[str, Any]:
        """Write and install the plugin of a fine-tuned network; returns its id, name, version, sha256 and
        the weights' sha256."""
        caller = str((context or {}).get("from") or "").split("/")[-1]
        base = self.registry.known(caller)
        if base is None or not self.registry.is_builtin(base) or base.id not in BASES:
            raise PermissionError(
                f"{caller or 'this client'} may not register fine-tuned versions: only the kernel of a "
                f"built-in plugin that fine-tunes ({', '.join(BASES)}) may"
            )
        if not isinstance(request, dict):
            raise ValueError("register_finetune needs a request {name, card, summary} and the weights")
        name, card = request.get("name"), request.get("card")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"name {name!r}: 1-40 lower-case letters, digits and '-'")
        if not isinstance(card, str) or len(card) > MAX_CARD:
            raise ValueError(f"the model card must be text of at most {MAX_CARD} characters")
        data = bytes(weights) if isinstance(weights, bytes | bytearray | memoryview) else None
        if data is None or not 0 < len(data) <= MAX_WEIGHTS or not data.startswith(b"PK\x03\x04"):
            raise ValueError(f"the weights must be a torch.save file (a zip) of at most {MAX_WEIGHTS} bytes")
        digest = sha256_hex(data)
        stored = self.weights_dir / f"{digest}.pt"
        if not stored.is_file():
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(stored, data)
        origin = {
            "id": base.id,
            "name": base.name,
            "version": base.version,
            "sha256": base.sha256,
            "module": BASES[base.id],
        }
        summary = request.get("summary")
        after = summary.get("after") if isinstance(summary, dict) else None
        after = after.get("validation_f1") if isinstance(after, dict) else None
        description = f"{base.name} fine-tuned on your annotations ({name})" + (
            f": validation F1@0.5 {after:.3f}" if isinstance(after, int | float) else ""
        )
        source, plugin = render(origin, name, digest, card, description)
        if self.registry.known(plugin["id"]) is not None and not self.fine_tuned(plugin["id"]):
            raise ValueError(
                f"a plugin {plugin['id']} exists that is not a fine-tuned version: choose another name"
            )
        if self.engine is not None and self.registry.known(plugin["id"]) is not None:
            await self.engine.stop(plugin["id"])  # a kernel of an earlier version of this name
        manifest = self.registry.install_source(
            source,
            f"{plugin['id']}.py",
            origin={"kind": "fine-tune", "base": origin, "weights_sha256": digest, "by": "hub"},
        )
        return {
            "id": manifest.id,
            "name": manifest.name,
            "version": manifest.version,
            "sha256": manifest.sha256,
            "weights_sha256": digest,
            "weights": str(Path("weights") / stored.name),
        }
