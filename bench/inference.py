"""Inference speed of nuclei-segmentation, beside the way 0.3.3 ran the same network, in one run.

    python bench/inference.py [--repeat 3] [--json FILE]

Images: the DSB2018 sample (``nuclei-2d``, 512x512) and the same tiled 2x2 into 1024x1024 (mirrored, so
that the seams look like the image). "now" is the plugin's ``run`` as shipped; "0.3.3 way" is the same
network with the four mirrored passes per tile and the first (measuring) pass over the whole image. F1@0.5
against the hand-drawn labels of the 512x512 image is printed for both. Times are medians, in the process
(a plugin kernel adds the transfer of the image and the labels: ~10 ms at this size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.images import formats

sys.path.insert(0, str(BUILTIN_PLUGINS))
sys.path.insert(0, str(BUILTIN_PLUGINS / "nuclei_segmentation"))
import nuclei_segmentation as ns
from metrics import match


def old_way(data: Any) -> Any:
    """0.3.3: flips on every pass, the whole image measured first, then (if off-scale) segmented again."""
    model, norm = ns.load_model(), ns.normalise(data)
    original = ns.predict_maps
    ns.predict_maps = lambda m, n, flips=True: original(m, n, flips=True)
    try:
        labels = ns.at_scale(model, norm, 1.0, 0.0, 15)
        scale = ns.scale_for(model, labels)
        return labels if scale == 1.0 else ns.at_scale(model, norm, scale, 0.0, 15)
    finally:
        ns.predict_maps = original


def timed(call: Any, image: Any, repeat: int) -> tuple[Any, float]:
    result = call(image)  # warm: the model is loaded, threads are up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call(image)
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    image = np.asarray(formats.load_sample("nuclei-2d")[0], dtype=np.float32)
    truth = formats.load_sample("nuclei-2d-labels")[0]
    big = np.block([[image, image[:, ::-1]], [image[::-1], image[::-1, ::-1]]])
    now = lambda data: ns.run(ns.check_image(data))[0]  # noqa: E731
    figures: dict[str, Any] = {"threads": __import__("torch").get_num_threads()}
    print(
        f"nuclei-segmentation {ns.PLUGIN['version']}, {figures['threads']} threads, median of {args.repeat}"
    )
    print(f"{'image':<12}{'now s':>8}{'0.3.3 way s':>13}{'x faster':>10}{'F1 now':>9}{'F1 0.3.3 way':>14}")
    for name, data in (("512x512", image), ("1024x1024", big)):
        labels, seconds = timed(now, data, args.repeat)
        old_labels, old_seconds = timed(old_way, data, args.repeat)
        f1 = match(truth, labels)["f1"] if data is image else None
        old_f1 = match(truth, old_labels)["f1"] if data is image else None
        figures[name] = {"seconds": seconds, "seconds_0.3.3": old_seconds, "f1": f1, "f1_0.3.3": old_f1}
        scores = f"{f1:>9.3f}{old_f1:>14.3f}" if f1 is not None else f"{'':>9}{'':>14}"
        print(f"{name:<12}{seconds:>8.2f}{old_seconds:>13.2f}{old_seconds / seconds:>10.1f}{scores}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
