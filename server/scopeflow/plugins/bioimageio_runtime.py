"""Runs a bioimage.io model package inside a plugin's kernel (the plugin files that
:mod:`scopeflow.plugins.model_packages` writes call :func:`predict`).

bioimage.io's own library, bioimageio.core, does the work: it reads the description, applies the declared
preprocessing and postprocessing, loads the weights in the chosen format and, for large images, predicts in
blocks with the halo the package declares. An image that fits in one block goes through as it is, without
the halo's padding, as ``bioimageio test`` reproduces a package's test outputs. What is added here is what
an image from a user needs first: its axes put in the model's order (a single channel and the batch axis
added), its size padded (mirrored) up to one the model accepts (``min + n * step``) and the prediction
cropped back. The kernel's environment holds bioimageio.core and the weights' runtime; the hub never
imports this module's dependencies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

TILE = 512  # the spatial block edge aimed at when an image is predicted in blocks
BLOCK_ABOVE = 1024  # images with a spatial axis longer than this go through in blocks
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def port_letter(axis_type: str, axis_id: str, channels: int) -> str:
    """The image axis a package's axis becomes on the op's port ('' when it is dropped)."""
    if axis_type == "batch" or (axis_type == "channel" and channels == 1):
        return ""
    return {"channel": "c", "time": "t"}.get(axis_type, axis_id)


def to_port_axes(array: np.ndarray, model_axes: list[str], port_axes: str) -> np.ndarray:
    """An array in the model's axes (batch, channel, ...) with the port's axes: dropped axes removed (of a
    batch, its first item)."""
    kept = _kept(model_axes, port_axes)
    index = tuple(slice(None) if keep else 0 for keep in kept)
    return np.ascontiguousarray(np.asarray(array)[index])


def to_model_axes(array: np.ndarray, model_axes: list[str], port_axes: str) -> np.ndarray:
    """An image with the port's axes given the model's: the dropped axes put back with size 1."""
    array = np.asarray(array)
    if array.ndim != len(port_axes):
        raise ValueError(
            f"the model takes images with axes {port_axes!r} ({len(port_axes)} dimensions), "
            f"this one has {array.ndim} (shape {list(array.shape)})"
        )
    kept = _kept(model_axes, port_axes)
    return array.reshape([array.shape[sum(kept[:i])] if keep else 1 for i, keep in enumerate(kept)])


def _kept(model_axes: list[str], port_axes: str) -> list[bool]:
    letters = {"channel": "c", "time": "t"}
    kept, wanted = [], list(port_axes)
    for axis in model_axes:
        letter = letters.get(axis, axis)
        keep = bool(wanted) and wanted[0] == letter
        if keep:
            wanted.pop(0)
        kept.append(keep)
    if wanted:
        raise ValueError(f"axes {port_axes!r} do not map onto the model's {model_axes}")
    return kept


def _valid(size: int, spec: Any) -> int:
    """The smallest size at least ``size`` that an axis of this size spec accepts."""
    if isinstance(spec, int):
        return max(spec, size) if size <= spec else size
    low, step = getattr(spec, "min", None), getattr(spec, "step", None)
    if low is None or not step:
        return size
    return low + max(0, math.ceil((size - low) / step)) * step


def _load(folder: Path, sha256: str, weights: str) -> tuple[Any, Any]:
    key = (str(folder), sha256, weights)
    if key not in _LOADED:
        from bioimageio.core import create_prediction_pipeline, load_description

        model: Any = load_description(folder / "rdf.yaml", perform_io_checks=False)
        if not hasattr(model, "inputs"):
            raise RuntimeError(
                f"{folder / 'rdf.yaml'}: not a model package this version of bioimageio.core reads"
            )
        chosen: Any = weights
        pipeline = create_prediction_pipeline(model, weight_format=chosen)
        pipeline.load()  # kept loaded: bioimageio.core's predict() loads and unloads the weights every call
        _LOADED[key] = (model, pipeline)
    return _LOADED[key]


def predict(folder: Path, sha256: str, weights: str, image: Any) -> Any:
    """The package's outputs for ``image`` (one array, or a tuple of one per output)."""
    from bioimageio.core.digest_spec import create_sample_for_model

    model, pipeline = _load(Path(folder), sha256, weights)
    tensor = model.inputs[0]
    model_axes = [str(a.id) for a in tensor.axes]
    letters = [port_letter(str(a.type), str(a.id), _channels(a)) for a in tensor.axes]
    port_axes = "".join(letters)
    data = np.asarray(image)
    if data.dtype.kind not in "biuf":
        raise ValueError(f"the model takes numeric images, not {data.dtype}")
    x = to_model_axes(data, model_axes, port_axes).astype(str(tensor.data.type), copy=False)
    original = dict(zip(model_axes, x.shape, strict=True))
    sizes: dict[str, Any] = {str(a.id): getattr(a, "size", None) for a in tensor.axes}
    space = [str(a.id) for a in tensor.axes if str(a.type) == "space"]
    padded = {axis: _valid(original[axis], sizes[axis]) for axis in space}
    pad = [(0, padded.get(axis, n) - n) for axis, n in zip(model_axes, x.shape, strict=True)]
    if any(after for _, after in pad):
        x = np.pad(
            x,
            pad,
            mode="reflect" if all(n > after for n, (_, after) in zip(x.shape, pad, strict=True)) else "edge",
        )
    blocks = None
    if any(padded[axis] > BLOCK_ABOVE for axis in space):
        steps = [getattr(sizes[a], "step", None) for a in space]
        if all(steps):  # parametrized sizes: blocks of about TILE a side
            blocks = max(0, min((TILE - int(sizes[a].min)) // int(sizes[a].step) for a in space))
    sample = create_sample_for_model(model, inputs={tensor.id: x}, sample_id="image")
    if blocks is None:  # one block: as `bioimageio test` reproduces the package's test outputs
        sample = pipeline.predict_sample_without_blocking(
            sample, skip_input_padding=True, skip_output_cropping=True
        )
    else:  # blocks that overlap by the halo the package declares
        sample = pipeline.predict_sample_with_blocking(sample, ns=blocks)
    results = []
    for out in model.outputs:
        array = np.asarray(sample.members[out.id].data)
        out_axes = [str(a.id) for a in out.axes]
        crop = tuple(
            slice(0, original[axis]) if axis in padded and n == padded[axis] else slice(None)
            for axis, n in zip(out_axes, array.shape, strict=True)
        )
        out_letters = "".join(port_letter(str(a.type), str(a.id), _channels(a)) for a in out.axes)
        results.append(to_port_axes(array[crop], out_axes, out_letters))
    return results[0] if len(results) == 1 else tuple(results)


def _channels(axis: Any) -> int:
    names = getattr(axis, "channel_names", None)
    return len(names) if names is not None else 0
