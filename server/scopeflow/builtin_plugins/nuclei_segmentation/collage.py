"""Crowded fields of real nuclei: real nuclei cut out of labelled images and set against each other.

The real training images (mnfinder's) show textured nuclei as a microscope sees them, but mostly apart; the
synthetic ones (synthetic.py) are crowded, but drawn. A collage has both: a crop of a real image, then more
real nuclei of the same images (same scale) placed against the nuclei already there, until a random share of
the field is covered. Each pasted nucleus keeps its own pixels, mask and blurred rim (feathered edge, no
hard seam), is turned and flipped at random and made brighter or dimmer; where it meets a neighbour the
brighter of the two shows, as touching nuclei do in fluorescence, and the neighbour keeps its pixels. This
is copy-paste augmentation (Ghiasi et al., CVPR 2021) for touching nuclei.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

MARGIN = 3  # px of the rim kept around each cut-out nucleus


def cut_out(image: np.ndarray, labels: np.ndarray, min_area: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(pixels, mask)`` of every whole nucleus of a labelled image (those cut by the border are left out),
    with a rim of ``MARGIN`` px."""
    out = []
    height, width = labels.shape
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        ys, xs = found
        if ys.start == 0 or xs.start == 0 or ys.stop == height or xs.stop == width:
            continue
        box = (
            slice(max(ys.start - MARGIN, 0), min(ys.stop + MARGIN, height)),
            slice(max(xs.start - MARGIN, 0), min(xs.stop + MARGIN, width)),
        )
        mask = labels[box] == index
        if mask.sum() < min_area:
            continue
        pixels = image[box].astype(np.float32)
        others = (labels[box] > 0) & ~mask  # a neighbour's edge in the rim: background instead
        if others.any():
            pixels[others] = np.median(pixels[labels[box] == 0]) if (labels[box] == 0).any() else 0
        out.append((pixels, mask))
    return out


def collage(
    rng: np.random.Generator,
    base: tuple[np.ndarray, np.ndarray],
    nuclei: list[tuple[np.ndarray, np.ndarray]],
    size: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` square crop of ``base`` (image, labels) with nuclei of ``nuclei`` pasted against its own
    until a random 30-65 % of it is covered: (image float32, int32 labels, consecutive)."""
    image, labels = base
    y = int(rng.integers(0, max(image.shape[0] - size, 0) + 1))
    x = int(rng.integers(0, max(image.shape[1] - size, 0) + 1))
    canvas = np.zeros((size, size), dtype=np.float32)
    found = np.zeros((size, size), dtype=np.int32)
    crop = image[y : y + size, x : x + size]
    canvas[: crop.shape[0], : crop.shape[1]] = crop
    canvas[crop.shape[0] :, :] = np.median(crop)
    canvas[:, crop.shape[1] :] = np.median(crop)
    found[: crop.shape[0], : crop.shape[1]] = labels[y : y + size, x : x + size]
    found, _, _ = _consecutive(found)
    centres = [c for c in ndimage.center_of_mass(found > 0, found, range(1, found.max() + 1))]
    radii = list(np.sqrt(np.bincount(found.ravel())[1:] / np.pi))
    cover = rng.uniform(0.3, 0.65)
    attached = rng.uniform(0.6, 0.95)  # chance that a nucleus is placed against one already there
    label = int(found.max())
    for _ in range(400):
        if (found > 0).mean() >= cover or not nuclei:
            break
        pixels, mask = nuclei[int(rng.integers(len(nuclei)))]
        k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        pixels, mask = np.rot90(pixels, k), np.rot90(mask, k)
        if flip:
            pixels, mask = pixels[:, ::-1], mask[:, ::-1]
        radius = float(np.sqrt(mask.sum() / np.pi))
        if centres and rng.random() < attached:
            which = int(rng.integers(len(centres)))
            angle = rng.uniform(0, 2 * np.pi)
            gap = (radii[which] + radius) * rng.uniform(0.8, 1.05)
            cy = centres[which][0] + gap * np.sin(angle)
            cx = centres[which][1] + gap * np.cos(angle)
        else:
            cy, cx = rng.uniform(0, size, 2)
        top = int(np.rint(cy - mask.shape[0] / 2))
        left = int(np.rint(cx - mask.shape[1] / 2))
        placed = _place(canvas, found, pixels * float(rng.lognormal(0, 0.25)), mask, top, left, label + 1)
        if placed is None:
            continue
        label += 1
        centres.append(placed)
        radii.append(radius)
    out, _, _ = _consecutive(found)
    return canvas, out


def _place(
    canvas: np.ndarray,
    found: np.ndarray,
    pixels: np.ndarray,
    mask: np.ndarray,
    top: int,
    left: int,
    label: int,
) -> tuple[float, float] | None:
    """Paste one nucleus with its top-left corner at (top, left) unless it would lie mostly outside the field
    or overlap nuclei already there by more than a tenth of its area; its centre if pasted."""
    size_y, size_x = canvas.shape
    ya, xa = max(top, 0), max(left, 0)
    yb, xb = min(top + mask.shape[0], size_y), min(left + mask.shape[1], size_x)
    if yb - ya < mask.shape[0] // 2 or xb - xa < mask.shape[1] // 2:
        return None
    part = (slice(ya - top, yb - top), slice(xa - left, xb - left))
    inside, source = mask[part], pixels[part]
    if inside.sum() < 0.6 * mask.sum():
        return None
    region = found[ya:yb, xa:xb]
    if (region[inside] > 0).mean() > 0.1:
        return None
    alpha = np.clip(ndimage.gaussian_filter(inside.astype(np.float32), 0.8) * 1.6, 0, 1)
    view = canvas[ya:yb, xa:xb]
    view[:] = np.where(alpha > 0, np.maximum(view, alpha * source + (1 - alpha) * view), view)
    region[inside & (region == 0)] = label
    ys, xs = np.nonzero(inside)
    return float(ya + ys.mean()), float(xa + xs.mean())


def _consecutive(labels: np.ndarray) -> Any:
    """Labels 1..n; a nucleus cut in two by a neighbour laid over it keeps its largest piece."""
    from skimage.segmentation import relabel_sequential

    labels = labels.astype(np.int32)
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        pieces, n = ndimage.label(labels[found] == index)
        if n > 1:
            largest = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))
            labels[found][(pieces > 0) & (pieces != largest)] = 0
    return relabel_sequential(labels)


def collages(
    rng: np.random.Generator, images: list[tuple[np.ndarray, np.ndarray]], count: int, size: int = 128
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` collages of ``images`` (image, labels pairs at one scale), each on a random one of them
    with nuclei cut out of all of them."""
    nuclei = [n for image, labels in images for n in cut_out(image, labels)]
    return [collage(rng, images[int(rng.integers(len(images)))], nuclei, size) for _ in range(count)]
