"""What the nuclei-segmentation network learns from a label image, and how: its targets (foreground,
normalised distance, contact weights), the augmentation of training crops and the loss. Shared by the
training script (``train.py``) and the fine-tuning of the plugin (``finetune.py``); numpy, scipy and torch
only."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage


def distance_target(labels: np.ndarray) -> np.ndarray:
    """Each object's distance to its own edge, divided by its maximum: 1 at its centre, → 0 at its edge."""
    out = np.zeros(labels.shape, dtype=np.float32)
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        padded = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found)
        mask = labels[padded] == index
        edt = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
        if edt.max() > 0:
            out[padded][mask] = (edt / edt.max())[mask]
    return out


def contact_weight(labels: np.ndarray, extra: float = 4.0, reach: int = 5) -> np.ndarray:
    """1 everywhere, ``1 + extra`` where two different nuclei are within ``reach`` px (contacts and gaps)."""
    none = np.iinfo(np.int32).max
    highest = ndimage.maximum_filter(labels, reach)
    lowest = ndimage.minimum_filter(np.where(labels > 0, labels, none), reach)
    contact = (highest > 0) & (lowest != none) & (lowest < highest)
    return (1 + extra * contact).astype(np.float32)


def augment(
    rng: np.random.Generator, batch: list[np.ndarray], photometric: bool = False, dim: float = 0.0
) -> list[np.ndarray]:
    """Rotations and flips of every array; exposure and offset jitter of the image and, with
    ``photometric``, per crop: a gamma (half of them), a blur and added noise (a third each). A share
    ``dim`` of the crops is seen 1.4-4 times dimmer: nuclei far below the top of the normalised range, as
    in a field where a few very bright (mitotic) nuclei set its 99.8th percentile."""
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    out = []
    for array in batch:
        array = np.rot90(array, k, axes=(-2, -1))
        out.append(np.ascontiguousarray(np.flip(array, -1) if flip else array))
    if photometric:
        for image in out[0]:
            if rng.random() < 0.5:
                image[:] = np.clip(image, 0, None) ** rng.uniform(0.6, 1.6)
            if rng.random() < 0.33:
                image[:] = ndimage.gaussian_filter(image, rng.uniform(0.5, 1.5))
            if rng.random() < 0.33:
                image += rng.normal(0, rng.uniform(0.01, 0.1), image.shape).astype(np.float32)
    gain = rng.uniform(0.7, 1.4, (len(out[0]), 1, 1)).astype(np.float32)  # exposure and offset jitter
    if dim:
        dimmed = rng.random(len(out[0])) < dim
        gain[dimmed] = np.exp(rng.uniform(np.log(0.25), np.log(0.7), (int(dimmed.sum()), 1, 1)))
    out[0] = out[0] * gain + rng.uniform(-0.1, 0.1, (len(out[0]), 1, 1)).astype(np.float32)
    return out


def loss_fn(output: Any, foreground: Any, distance: Any, weight: Any) -> Any:
    """Cross entropy of the foreground plus squared error of the distance map, both stressed at contacts."""
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(output[:, 0], foreground, weight=weight)
    mse = (((output[:, 1] - distance) ** 2) * (0.2 + foreground) * weight).mean()
    return bce + 2 * mse
