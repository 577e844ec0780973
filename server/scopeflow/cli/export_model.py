"""``scopeflow export-model nuclei-segmentation out.zip``: the project's network as a bioimage.io model
package (format 0.5), which BioEngine, napari, ilastik, deepImageJ and ``bioimageio test`` read.

The package holds the weights twice (a PyTorch state dict with its architecture's source, ``unet.py``, and
TorchScript), test tensors from a real sample (a 256x256 crop of the DSB2018 image ``nuclei-2d``, and the
network's output on it), the plugin's model card as its documentation, a cover (the test input beside the
foreground the network finds), the licence and the citations. The preprocessing the plugin does (the 1st and
99.8th percentiles to 0 and 1) is declared as ``scale_range``; the output is the network's two maps
(foreground logit, normalised distance to the edge): turning them into labelled nuclei (seeded watershed) is
the plugin's post-processing, which bioimage.io cannot declare, and the documentation says how.

noise2void is not exported: it ships no trained network, it trains one on each image it denoises.
Written here without bioimageio.spec (the hub does not need it); ``tests/cli/test_export_model.py`` checks
the package with ``bioimageio.core``'s own test.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scopeflow import __version__
from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.images import formats

__all__ = ["EXPORTABLE", "export_model", "main"]

EXPORTABLE = ("nuclei-segmentation",)
FORMAT_VERSION = "0.5.4"
TEST_SIZE = 256
HALO = 32  # pixels of context a block needs on each side: the plugin's own tiles overlap by as much
CITATIONS = [
    {
        "text": "Ronneberger, Fischer and Brox. U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation. MICCAI 2015.",
        "doi": "10.1007/978-3-319-24574-4_28",
    },
    {
        "text": "Caicedo et al. Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl. "
        "Nature Methods 16, 1247-1253 (2019). The test image comes from its stage 1 data.",
        "doi": "10.1038/s41592-019-0612-7",
    },
]


def _plugin() -> Any:
    path = BUILTIN_PLUGINS / "nuclei_segmentation.py"
    spec = importlib.util.spec_from_file_location("scopeflow_export_nuclei", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _cover(image: np.ndarray, foreground: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    low, high = np.percentile(image, [1, 99.8])
    left = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    right = foreground.astype(np.float64)
    pair = np.concatenate([left, np.ones((left.shape[0], 8)), right], axis=1)
    buffer = io.BytesIO()
    PILImage.fromarray((pair * 255).astype(np.uint8)).resize((pair.shape[1] * 2, pair.shape[0] * 2)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def export_model(plugin_id: str, target: Path) -> dict[str, Any]:
    """Write the bioimage.io package of ``plugin_id`` to ``target`` (a .zip); returns its rdf as a dict."""
    import torch

    if plugin_id not in EXPORTABLE:
        raise ValueError(
            f"{plugin_id}: only {', '.join(EXPORTABLE)} can be exported (noise2void ships no trained "
            "network: it trains one on each image)"
        )
    plugin = _plugin()
    model = plugin.load_model().to("cpu").eval()
    info = model.info
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    files: dict[str, bytes] = {}
    weights = io.BytesIO()
    torch.save(state, weights)
    files["weights.pt"] = weights.getvalue()
    files["unet.py"] = (plugin.FOLDER / "unet.py").read_bytes()

    image = np.asarray(formats.load_sample("nuclei-2d")[0], dtype=np.float32)
    top = (image.shape[0] - TEST_SIZE) // 2
    crop = np.ascontiguousarray(image[top : top + TEST_SIZE, top : top + TEST_SIZE])
    test_input = crop[None, None]  # batch, channel, y, x
    with torch.inference_mode():
        normalised = torch.from_numpy(plugin.normalise(crop)[None, None])
        test_output = model(normalised).numpy().astype(np.float32)
        traced = torch.jit.trace(model, normalised)
    script = io.BytesIO()
    torch.jit.save(traced, script)
    files["weights.torchscript"] = script.getvalue()
    files["test_input.npy"] = _npy(test_input)
    files["test_output.npy"] = _npy(test_output)
    files["cover.png"] = _cover(crop, 1 / (1 + np.exp(-test_output[0, 0])) > 0.5)
    manifest = plugin.PLUGIN
    docs = (
        f"# {manifest['name']} {manifest['version']}\n\n"
        "Exported from scopeflow's built-in plugin `nuclei-segmentation` "
        f"(scopeflow {__version__}).\n\n"
        "**Outputs.** Two maps per pixel: channel 0 the foreground logit (sigmoid > 0.5: inside a nucleus), "
        "channel 1 the distance to the nucleus' edge divided by its largest value. Labelled nuclei come "
        "from them by a seeded watershed: seeds are the h-maxima of the distance map (height "
        f"{info['postprocessing']['seed_height']}) inside the foreground, grown over the negated distance "
        "(scopeflow's plugin does this, and rescales images whose nuclei are far from "
        f"{info['trained']['diameter_median']:.0f} px across).\n\n" + str(plugin.__doc__ or "")
    )
    files["README.md"] = docs.encode("utf-8")
    space = {"min": 2 * HALO + 16, "step": 8}  # a block keeps 16 px beside its halo; 3 poolings: steps of 8
    pytorch_version = torch.__version__.split("+")[0]
    rdf: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "type": "model",
        "name": "scopeflow nuclei segmentation",
        "description": "U-Net for 2D fluorescence nuclei: foreground and normalised distance maps, "
        "from which a seeded watershed gives one label per nucleus.",
        "version": manifest["version"],
        "authors": [{"name": "the scopeflow authors"}],
        "cite": CITATIONS,
        "license": "MIT",
        "documentation": "README.md",
        "covers": ["cover.png"],
        "tags": ["nuclei", "segmentation", "fluorescence", "2d", "unet", "pytorch", "scopeflow"],
        "inputs": [
            {
                "id": "raw",
                "description": "a 2D fluorescence image of nuclei, any intensity range",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["nuclei"]},
                    {"type": "space", "id": "y", "size": space},
                    {"type": "space", "id": "x", "size": space},
                ],
                "test_tensor": {"source": "test_input.npy", "sha256": _sha256(files["test_input.npy"])},
                "data": {"type": "float32"},
                "preprocessing": [
                    {
                        "id": "scale_range",
                        "kwargs": {"axes": ["y", "x"], "min_percentile": 1.0, "max_percentile": 99.8},
                    }
                ],
            }
        ],
        "outputs": [
            {
                "id": "maps",
                "description": "channel 0: foreground logit; channel 1: distance to the edge / its maximum",
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": ["foreground_logit", "distance"]},
                    {"type": "space", "id": "y", "size": {"tensor_id": "raw", "axis_id": "y"}, "halo": HALO},
                    {"type": "space", "id": "x", "size": {"tensor_id": "raw", "axis_id": "x"}, "halo": HALO},
                ],
                "test_tensor": {"source": "test_output.npy", "sha256": _sha256(files["test_output.npy"])},
                "data": {"type": "float32"},
            }
        ],
        "weights": {
            "pytorch_state_dict": {
                "source": "weights.pt",
                "sha256": _sha256(files["weights.pt"]),
                "architecture": {
                    "source": "unet.py",
                    "sha256": _sha256(files["unet.py"]),
                    "callable": "UNet",
                    "kwargs": dict(info["architecture"]),
                },
                "pytorch_version": pytorch_version,
            },
            "torchscript": {
                "source": "weights.torchscript",
                "sha256": _sha256(files["weights.torchscript"]),
                "parent": "pytorch_state_dict",
                "pytorch_version": pytorch_version,
            },
        },
        "config": {"scopeflow": {"plugin": plugin_id, "training": json.loads(json.dumps(info["trained"]))}},
    }
    files["rdf.yaml"] = yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True).encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part,
        zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as package,
    ):
        for name in ["rdf.yaml", *sorted(n for n in files if n != "rdf.yaml")]:
            package.writestr(name, files[name])
    Path(part.name).replace(target)
    return rdf


def main(plugin_id: str, target: Path) -> int:
    try:
        rdf = export_model(plugin_id, target)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    weights = ", ".join(rdf["weights"])
    print(f"wrote {target}: {rdf['name']} {rdf['version']} (bioimage.io format {FORMAT_VERSION}; {weights})")
    return 0
