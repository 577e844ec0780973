"""The out-of-distribution checks of the nuclei-segmentation plugin: statistics of an image and of its
segmentation beside those of the training data, and the warnings they give (``segment`` and ``assess``)."""

from __future__ import annotations

import math
from typing import Any

FAR = 1.5  # a statistic this many times beyond the highest seen in training is out of distribution


def area_weighted_diameter(labels: Any) -> float:
    """Equivalent diameter of the object that holds the median labelled pixel: the size most of the
    foreground has, not fooled by many small fragments beside one huge object."""
    import numpy as np

    areas = np.bincount(labels.ravel())[1:]
    areas = np.sort(areas[areas > 0])
    if not len(areas):
        return 0.0
    middle = int(np.searchsorted(np.cumsum(areas), areas.sum() / 2))
    return float(2 * np.sqrt(areas[middle] / math.pi))


def statistics(plugin: Any, data: Any, labels: Any, scale: float = 1.0) -> dict[str, float]:
    """What the out-of-distribution check compares with the training data."""
    import numpy as np

    norm = plugin.normalise(data)
    background = norm[labels == 0] if (labels == 0).any() else norm.ravel()
    diameter = plugin.median_diameter(labels)
    return {
        "objects": float(labels.max()),
        "diameter_median": diameter,
        "scale": scale,
        "diameter_seen_by_model": diameter * scale,
        "diameter_area_weighted": area_weighted_diameter(labels),
        "foreground_fraction": float((labels > 0).mean()),
        "background_noise": float(np.std(background - np.median(background))),
        "dynamic_range": float(np.subtract(*np.percentile(data, [99.8, 1]))),
    }


def warnings_for(plugin: Any, data: Any, labels: Any, scale: float = 1.0) -> list[str]:
    """Human-readable reasons why this image may be outside what the model was trained on."""
    stats = statistics(plugin, data, labels, scale)
    trained = plugin.model_info()["trained"]
    found: list[str] = []
    low, high = trained["diameter_range"]
    if stats["dynamic_range"] <= 0:
        found.append("the image is flat: nothing to segment")
    elif stats["objects"] == 0:
        found.append("no nuclei found: is this a fluorescence image of nuclei?")
    elif not low <= stats["diameter_seen_by_model"] <= high or stats["diameter_area_weighted"] * scale > high:
        across = stats["diameter_median"]
        if low <= across * scale <= high:  # small fragments beside much larger objects
            across = stats["diameter_area_weighted"]
        found.append(
            f"nuclei are about {across:.0f} px across, which even rescaled (x{scale:.2f}) "
            f"is outside the {low:.0f}-{high:.0f} px the model was trained on: check the result, or give "
            "`diameter`"
        )
    if stats["background_noise"] > FAR * trained["background_noise_max"]:
        found.append(
            f"the background is much noisier ({stats['background_noise']:.2f}) than in training "
            f"(<= {trained['background_noise_max']:.2f}); consider denoising first (noise2void)"
        )
    if stats["foreground_fraction"] > min(FAR * trained["foreground_fraction_max"], 0.9):
        found.append(
            f"{100 * stats['foreground_fraction']:.0f} % of the image is foreground (trained <= "
            f"{100 * trained['foreground_fraction_max']:.0f} %): is it a nuclei image, and are they in focus?"
        )
    return found
