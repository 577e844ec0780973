"""Quality benchmark: the denoising and segmentation plugins, run through a hub, scored against ground truth.

    python bench/quality.py [--json FILE] [--quick] [--only denoising|segmentation] [--real-cache DIR]

Denoising: the real DSB2018 nuclei image (sample ``nuclei-2d``, 512x512) scaled to [0, 1], a 256x256
crop of it and the whole image, with Gaussian noise of sigma = 0.15 added (seeded). PSNR and SSIM of: the
noisy image, Gaussian blur and non-local means (each at its best setting on a grid, chosen with the ground
truth: an upper bound for these baselines), and noise2void with its defaults. Segmentation: F1 at IoU 0.5,
precision, recall and the mean IoU of matched nuclei for Otsu + watershed and nuclei-segmentation (defaults
both) on the same image with its hand-drawn labels (``nuclei-2d-labels``, 125 nuclei), never used in
training; and, as a transfer test, on the planes of the 3D stack ``nuclei-3d`` (another microscope and
sample) and, with ``--real-cache DIR``, on the test split of the mnfinder wheel (15 images of other cells,
523 hand-labelled nuclei; the weights trained on its training split). Each figure is printed beside its
baseline, with the time each call took through the hub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from scopeflow._util import BUILTIN_PLUGINS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(BUILTIN_PLUGINS / "nuclei_segmentation"))
from metrics import match  # noqa: E402

from _hub import BenchHub  # noqa: E402
from scopeflow.images import formats as data  # noqa: E402
from scopeflow.rpc.client import connect  # noqa: E402

NOISE = 0.15
GAUSSIAN_SIGMAS = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0]
NLM_STRENGTHS = [0.6, 0.8, 1.0, 1.2, 1.5]


def scores(clean: np.ndarray, image: np.ndarray) -> dict[str, float]:
    image = np.asarray(image, dtype=np.float64)
    return {
        "psnr": float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
        "ssim": float(structural_similarity(clean, image, data_range=1.0)),
    }


async def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call(*args, **kwargs)
    return result, time.perf_counter() - started


async def best_of(call: Any, clean: np.ndarray, noisy: np.ndarray, name: str, values: list[float]) -> dict:
    best: dict[str, Any] = {"psnr": -1.0}
    for value in values:
        out, seconds = await timed(call, noisy, **{name: value})
        score = scores(clean, out)
        if score["psnr"] > best["psnr"]:
            best = {**score, "seconds": seconds, name: value}
    return best


async def denoising(server: Any, quick: bool, crop_only: bool = False) -> dict[str, dict[str, Any]]:
    image, _ = data.load_sample("nuclei-2d")
    full = (image - image.min()) / float(image.max() - image.min())
    cases = {"crop256": full[128:384, 128:384]}
    if not (quick or crop_only):
        cases["full512"] = full
    gaussian = await server.get_plugin("gaussian")
    nlm = await server.get_plugin("nl-means")
    n2v = await server.get_plugin("noise2void")
    results: dict[str, dict[str, Any]] = {}
    for case, clean in cases.items():
        clean = clean.astype(np.float64)
        rng = np.random.default_rng(2024)
        noisy = (clean + rng.normal(0, NOISE, clean.shape)).astype(np.float32)
        row: dict[str, Any] = {"noisy": scores(clean, noisy)}
        row["gaussian"] = await best_of(gaussian.blur, clean, noisy, "sigma", GAUSSIAN_SIGMAS)
        row["nl-means"] = await best_of(nlm.denoise, clean, noisy, "h", NLM_STRENGTHS)
        out, seconds = await timed(n2v.denoise, noisy, **({"iterations": 100} if quick else {}))
        row["noise2void"] = {**scores(clean, out), "seconds": seconds}
        results[case] = row
        baseline = max(row["gaussian"]["psnr"], row["nl-means"]["psnr"])
        print(f"\ndenoising {case} {clean.shape}, Gaussian noise sigma = {NOISE}:")
        for method, score in row.items():
            extra = f"  {score['seconds']:6.1f} s" if "seconds" in score else ""
            print(f"  {method:11s} PSNR {score['psnr']:6.2f} dB  SSIM {score['ssim']:.3f}{extra}")
        gain = row["noise2void"]["psnr"] - baseline
        print(f"  noise2void - best classical: {gain:+.2f} dB")
    return results


def pooled(rows: list[dict[str, float]]) -> float:
    """F1 of all the images' nuclei together."""
    tp = sum(r["f1"] * (r["true"] + r["predicted"]) / 2 for r in rows)
    total = sum(r["true"] + r["predicted"] for r in rows)
    return 2 * tp / total if total else 0.0


async def real_test_split(otsu: Any, unet: Any, cache: Path) -> dict[str, dict[str, Any]]:
    """Both methods on the mnfinder wheel's test-data split (other cells and microscopes than trained on)."""
    import real

    items = real.load(cache, "test-data")
    rows: dict[str, list[dict[str, float]]] = {"otsu-watershed": [], "nuclei-segmentation": []}
    for _, image, truth in items:
        for name, plugin in (("otsu-watershed", otsu), ("nuclei-segmentation", unet)):
            rows[name].append(match(truth, await plugin.segment(image)))
    nuclei = sum(int(r["true"]) for r in rows["otsu-watershed"])
    print(
        f"transfer, mnfinder test-data ({len(items)} images, {nuclei} nuclei; other cells, never trained on):"
    )
    out = {}
    for name, found in rows.items():
        iou = float(np.mean([r["mean_matched_iou"] for r in found]))
        out[f"{name} (mnfinder test)"] = {"f1": pooled(found), "mean_matched_iou": iou, "images": len(found)}
        print(f"  {name:20s} pooled F1@0.5 {pooled(found):.3f}  mean matched IoU {iou:.3f}")
    return out


async def segmentation(server: Any, real_cache: Path | None) -> dict[str, dict[str, Any]]:
    image, _ = data.load_sample("nuclei-2d")
    truth, _ = data.load_sample("nuclei-2d-labels")
    stack, _ = data.load_sample("nuclei-3d")
    stack_truth, _ = data.load_sample("nuclei-3d-labels")
    otsu = await server.get_plugin("otsu-watershed")
    unet = await server.get_plugin("nuclei-segmentation")
    results: dict[str, dict[str, Any]] = {}
    for name, plugin in (("otsu-watershed", otsu), ("nuclei-segmentation", unet)):
        labels, seconds = await timed(plugin.segment, np.asarray(image))
        results[name] = {**match(truth, labels), "seconds": seconds}
    planes: dict[str, list[dict[str, float]]] = {"otsu-watershed": [], "nuclei-segmentation": []}
    for z in range(stack.shape[0]):
        if stack_truth[z].max() == 0:
            continue
        for name, plugin in (("otsu-watershed", otsu), ("nuclei-segmentation", unet)):
            planes[name].append(match(stack_truth[z], await plugin.segment(np.asarray(stack[z]))))
    print("\nsegmentation, nuclei-2d (DSB2018, 125 hand-labelled nuclei, never used in training):")
    for name, row in results.items():
        print(
            f"  {name:20s} F1@0.5 {row['f1']:.3f}  precision {row['precision']:.3f}"
            f"  recall {row['recall']:.3f}  matched IoU {row['mean_matched_iou']:.3f}"
            f"  {row['seconds']:5.1f} s"
        )
    ratio = results["nuclei-segmentation"]["f1"] / max(results["otsu-watershed"]["f1"], 1e-9)
    print(f"  nuclei-segmentation / otsu-watershed F1: {ratio:.2f}x")
    print(f"transfer, nuclei-3d ({len(planes['otsu-watershed'])} planes of a 3D stack, another sample):")
    for name, rows in planes.items():
        results[f"{name} (3d planes)"] = {"f1": pooled(rows), "planes": len(rows)}
        print(f"  {name:20s} pooled F1@0.5 {pooled(rows):.3f}")
    if real_cache is not None:
        results.update(await real_test_split(otsu, unet, real_cache))
    return results


async def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--quick", action="store_true", help="the 256x256 crop only, a short noise2void")
    parser.add_argument("--only", choices=["denoising", "segmentation"], help="run one part only")
    parser.add_argument("--crop-only", action="store_true", help="denoising: the 256x256 crop only")
    parser.add_argument(
        "--real-cache",
        type=Path,
        help="also score segmentation on the mnfinder wheel's test split (downloaded here once, 66 MB)",
    )
    args = parser.parse_args()
    with BenchHub() as hub:
        server = await connect(hub.url, token=hub.token)
        try:
            figures: dict[str, Any] = {}
            if args.only != "segmentation":
                figures["denoising"] = await denoising(server, args.quick, args.crop_only)
            if args.only != "denoising":
                figures["segmentation"] = await segmentation(server, args.real_cache)
        finally:
            await server.disconnect()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
