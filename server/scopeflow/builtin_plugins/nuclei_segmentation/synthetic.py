"""Synthetic 2D fluorescence nuclei with their instance labels, for training (seeded, no files needed).

Each image has nuclei of random size (``radius`` range), shape (ellipses bent by a smooth random
displacement), brightness (dim beside bright, as in real fields), internal texture and bright spots
(nucleoli/chromocentres), crowding (nuclei placed against earlier ones: touching pairs and clusters,
slightly overlapping neighbours), out-of-focus blur, an uneven background, and Poisson + Gaussian noise of
random strength.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def nuclei_image(
    rng: np.random.Generator, size: int = 128, radius: tuple[float, float] = (5.0, 18.0)
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image (float32, roughly 0..1) and its int32 labels."""
    labels = np.zeros((size, size), dtype=np.int32)
    signal = np.zeros((size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    mean_radius = rng.uniform(*radius)
    density = rng.uniform(0.15, 0.65)  # fraction of the area covered
    count = int(density * size * size / (np.pi * mean_radius**2)) + 1
    bright_spread = rng.uniform(0.1, 0.8)
    warp = _displacement(rng, size, strength=rng.uniform(0, 0.25) * mean_radius)
    clustering = rng.uniform(0.2, 0.8)  # chance that a nucleus is placed against an earlier one
    centres: list[tuple[float, float, float]] = []
    label = 0
    for _ in range(count * 4):
        if label >= count:
            break
        r = float(np.clip(mean_radius * rng.lognormal(0, 0.25), radius[0] * 0.6, radius[1] * 1.3))
        a, b = r * rng.uniform(1.0, 1.5), r * rng.uniform(0.65, 1.0)
        if centres and rng.random() < clustering:  # touching pairs and clusters, as in dense fields
            py, px, pr = centres[int(rng.integers(len(centres)))]
            angle, gap = rng.uniform(0, 2 * np.pi), (pr + r) * rng.uniform(0.75, 1.05)
            cy, cx = py + gap * np.sin(angle), px + gap * np.cos(angle)
        else:
            cy, cx = rng.uniform(-r / 2, size + r / 2, 2)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy + warp[0] - cy, xx + warp[1] - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        inside = u * u + v * v <= 1
        if not inside.any():
            continue
        overlap = (labels[inside] > 0).mean()
        if overlap > rng.uniform(0.0, 0.15):  # touching is common, real overlap rare
            continue
        label += 1
        centres.append((float(cy), float(cx), float(np.sqrt(a * b))))
        labels[inside & (labels == 0)] = label
        brightness = rng.lognormal(0, bright_spread)
        texture = 1 + rng.uniform(0, 0.35) * _smooth_noise(rng, size, rng.uniform(1, 3))
        edge = np.clip(1 - (u * u + v * v), 0, 1) ** rng.uniform(0.05, 0.4)  # flat or domed profile
        body = np.where(inside, brightness * edge * texture, 0).astype(np.float32)
        signal = np.maximum(signal, body)
    spots = rng.random((size, size)) < rng.uniform(0, 0.004)
    spots = ndimage.gaussian_filter(spots.astype(np.float32), 1.0) * rng.uniform(0, 6)
    signal = signal + spots * (labels > 0)
    signal = ndimage.gaussian_filter(signal, rng.uniform(0.3, 2.0))
    background = rng.uniform(0.0, 0.15) + rng.uniform(0, 0.1) * _smooth_noise(rng, size, size / 4)
    background += rng.uniform(0, 0.05) * _smooth_noise(rng, size, 2)
    image = rng.uniform(0.3, 1.0) * signal / max(float(np.percentile(signal, 99.5)), 1e-3) + background
    photons = rng.uniform(20, 1000)
    image = rng.poisson(np.clip(image, 0, None) * photons).astype(np.float32) / photons
    image += rng.normal(0, rng.uniform(0.0, 0.06), image.shape).astype(np.float32)
    image = np.clip(image, 0, None) ** rng.uniform(0.8, 1.25)
    return image.astype(np.float32), _relabel(labels)


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)).astype(np.float32), sigma)
    return noise / max(float(noise.std()), 1e-6)


def _displacement(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    return np.stack([_smooth_noise(rng, size, size / 8) * strength for _ in range(2)])


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels; a nucleus cut in pieces by its neighbours keeps only its largest piece."""
    out = np.zeros_like(labels)
    next_label = 1
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        pieces, n = ndimage.label(labels[found] == index)
        if n == 0:
            continue
        largest = 1 + int(np.argmax(ndimage.sum(np.ones_like(pieces), pieces, range(1, n + 1))))
        region = out[found]
        region[pieces == largest] = next_label
        next_label += 1
    return out
