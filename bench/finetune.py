"""Fine-tuning benchmark: a user annotates a few nuclei of one part of an image, fine-tunes, and the new
version segments the rest of it.

    python bench/finetune.py [--json FILE] [--counts 5,10,20] [--minutes 2] [--max-steps 400] [--seeds 0]
                             [--choose random,missed-first] [--scale 1.0]

The image is the one the shipped network handles worst of the samples: the real DSB2018 field
``nuclei-2d`` (512x512, with its hand-drawn labels; never used in training). The simulated user "paints" k
nuclei (k = 5, 10, 20 by default) taken from the ground truth of the left third of the image (nuclei wholly
inside it, chosen at random with the seed; and, as a user correcting the network would, first those the
shipped network misses, merges or splits: ``--choose``); the rest stays unlabelled and "unlabelled pixels are
background" is off. Each fine-tune runs through a hub (``finetune`` of nuclei-segmentation, at most
``--minutes`` and ``--max-steps``: both limits are reported with the steps done and why it stopped), makes
a new plugin version, and that version segments the whole image. Scored: F1@0.5 on the untouched part (the
right two thirds; true nuclei wholly inside it; predicted objects mostly inside it and not mostly on a true
nucleus that crosses the border), beside the shipped network and Otsu + watershed (the classical
baseline) on the same objects, from the same run, and a summary over the seeds. ``--scale`` rescales the
field first (another magnification). Results also go to ``artifacts/bench-finetune.json``.
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

from scopeflow._util import BUILTIN_PLUGINS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(BUILTIN_PLUGINS / "nuclei_segmentation"))
from metrics import match  # noqa: E402

from _hub import BenchHub  # noqa: E402
from scopeflow.images import formats as data  # noqa: E402
from scopeflow.rpc.client import connect  # noqa: E402


def parts(truth: np.ndarray, split: int) -> tuple[list[int], list[int], np.ndarray]:
    """True nuclei wholly left of column ``split`` (annotatable), wholly right of it (the test), and the
    mask of the test part."""
    ids = [int(i) for i in np.unique(truth) if i]
    left, right = [], []
    for i in ids:
        xs = np.nonzero(truth == i)[1]
        if xs.max() < split:
            left.append(i)
        elif xs.min() >= split:
            right.append(i)
    mask = np.zeros(truth.shape, bool)
    mask[:, split:] = True
    return left, right, mask


def test_score(truth: np.ndarray, labels: np.ndarray, test_ids: list[int], test_mask: np.ndarray) -> dict:
    """F1@0.5 on the test nuclei: predicted objects count if most of their pixels are in the test part and
    they do not lie mostly on a true nucleus that is not a test nucleus."""
    wanted = np.where(np.isin(truth, test_ids), truth, 0)
    kept = np.zeros_like(labels)
    for obj in np.unique(labels):
        if obj == 0:
            continue
        where = labels == obj
        if test_mask[where].mean() <= 0.5:
            continue
        under = np.bincount(truth[where].astype(np.int64))
        majority = int(np.argmax(under))
        if majority and majority not in test_ids:
            continue
        kept[where] = obj
    return match(wanted, kept)


def missed(truth: np.ndarray, labels: np.ndarray, ids: list[int]) -> list[int]:
    """The true nuclei among ``ids`` that no predicted object matches at IoU 0.5 (missed, merged, split)."""
    out = []
    for i in ids:
        where = truth == i
        found, counts = np.unique(labels[where], return_counts=True)
        best = max(
            (c / (where.sum() + (labels == f).sum() - c) for f, c in zip(found, counts, strict=True) if f),
            default=0.0,
        )
        if best <= 0.5:
            out.append(i)
    return out


def painted(
    truth: np.ndarray, ids: list[int], count: int, seed: int, first: list[int] | None = None
) -> np.ndarray:
    """``count`` of the true nuclei ``ids`` as a label image: at random, or ``first`` ones first (in random
    order), then at random."""
    rng = np.random.default_rng(seed)
    first = [int(i) for i in rng.permutation(first)] if first else []
    rest = [int(i) for i in rng.permutation([i for i in ids if i not in first])]
    chosen = (first + rest)[:count]
    labels = np.zeros(truth.shape, np.int32)
    for new, old in enumerate(chosen, start=1):
        labels[truth == old] = new
    return labels


def row(name: str, score: dict[str, Any], extra: str = "") -> str:
    return (
        f"  {name:34s} F1@0.5 {score['f1']:.3f}  precision {score['precision']:.3f}  recall "
        f"{score['recall']:.3f}  matched IoU {score['mean_matched_iou']:.3f}{extra}"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    image = np.asarray(data.load_sample("nuclei-2d")[0])
    truth = np.asarray(data.load_sample("nuclei-2d-labels")[0]).astype(np.int32)
    if args.scale != 1.0:  # the same field at another magnification
        from skimage.transform import resize

        shape = tuple(round(s * args.scale) for s in image.shape)
        image = resize(image.astype(np.float32), shape, order=1, preserve_range=True, anti_aliasing=True)
        truth = resize(truth, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    split = truth.shape[1] // 3
    left, right, test_mask = parts(truth, split)
    figures: dict[str, Any] = {
        "image": "nuclei-2d" + (f" rescaled by {args.scale}" if args.scale != 1.0 else ""),
        "annotated_part": f"columns 0-{split - 1} ({len(left)} nuclei wholly inside)",
        "test_part": f"columns {split}-{truth.shape[1] - 1} ({len(right)} nuclei wholly inside)",
        "limits": {"minutes": args.minutes, "max_steps": args.max_steps},
        "baselines": {},
        "runs": [],
    }
    with BenchHub() as hub:
        server = await connect(hub.url, token=hub.token, method_timeout=3600)
        try:
            for plugin_id in ("otsu-watershed", "nuclei-segmentation"):
                plugin = await server.get_plugin(plugin_id)
                started = time.perf_counter()
                labels = await plugin.segment(image)
                score = test_score(truth, labels, right, test_mask)
                figures["baselines"][plugin_id] = {**score, "seconds": time.perf_counter() - started}
            print(f"{figures['image']}: annotated {figures['annotated_part']}; test {figures['test_part']}")
            for name, score in figures["baselines"].items():
                print(row(name, score, "  (untouched part)"))
            unet = await server.get_plugin("nuclei-segmentation")
            shipped_labels = await unet.segment(image)
            hard = missed(truth, shipped_labels, left)
            figures["annotatable_missed_by_shipped"] = len(hard)
            print(
                f"  the shipped network misses, merges or splits {len(hard)} of the {len(left)} "
                "annotatable nuclei"
            )
            runs = [(seed, count, how) for how in args.choose for seed in args.seeds for count in args.counts]
            for seed, count, how in runs:
                labels = painted(truth, left, count, seed, hard if how == "missed-first" else None)
                started = time.perf_counter()
                summary = await unet.finetune(
                    image,
                    labels,
                    name=f"bench-{how}-k{count}-s{seed}",
                    minutes=args.minutes,
                    max_steps=args.max_steps,
                    image_names="nuclei-2d",
                    seed=seed,
                )
                call_seconds = time.perf_counter() - started
                tuned = await server.get_plugin(summary["version"]["id"])
                score = test_score(truth, await tuned.segment(image), right, test_mask)
                entry = {"annotated": count, "chosen": how, "seed": seed, "summary": summary, "test": score}
                entry["call_seconds"] = call_seconds
                figures["runs"].append(entry)
                shipped = figures["baselines"]["nuclei-segmentation"]["f1"]
                print(
                    row(
                        f"fine-tuned, {count} {how}, seed {seed}",
                        score,
                        f"  (shipped {shipped:.3f}, {score['f1'] - shipped:+.3f})",
                    )
                )
                print(
                    f"    {summary['steps']} steps ({summary['epochs']} crops per training object) in "
                    f"{summary['seconds']:.0f} s, stopped by {summary['stopped']}; best step "
                    f"{summary['best_step']}; validation objects {summary['validation_objects']}: F1 "
                    f"{summary['before']['validation_f1']:.3f} → {summary['after']['validation_f1']:.3f}"
                    + (f"; {summary['overtraining']}" if summary["overtraining"] else "")
                )
            summarise(figures)
        finally:
            await server.disconnect()
    return figures


def summarise(figures: dict[str, Any]) -> None:
    """Mean and range of the test F1 over the seeds, per choice and count, beside the baselines."""
    shipped = figures["baselines"]["nuclei-segmentation"]["f1"]
    otsu = figures["baselines"]["otsu-watershed"]["f1"]
    print(f"\nuntouched part, F1@0.5 (shipped {shipped:.3f}, Otsu + watershed {otsu:.3f}):")
    table: dict[str, dict[str, Any]] = {}
    for entry in figures["runs"]:
        key = f"{entry['annotated']} {entry['chosen']}"
        table.setdefault(key, {"f1": [], "steps": [], "seconds": []})
        table[key]["f1"].append(entry["test"]["f1"])
        table[key]["steps"].append(entry["summary"]["steps"])
        table[key]["seconds"].append(entry["summary"]["seconds"])
    for key, found in table.items():
        f1 = np.asarray(found["f1"])
        found["mean"], found["min"], found["max"] = float(f1.mean()), float(f1.min()), float(f1.max())
        print(
            f"  {key:24s} mean {f1.mean():.3f} ({f1.min():.3f}-{f1.max():.3f}, {len(f1)} seeds), "
            f"{f1.mean() - shipped:+.3f} against shipped; steps {found['steps']}, seconds "
            f"{[round(v) for v in found['seconds']]}"
        )
    figures["summary"] = table


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench-finetune.json")
    parser.add_argument("--counts", type=lambda t: [int(v) for v in t.split(",")], default=[5, 10, 20])
    parser.add_argument("--seeds", type=lambda t: [int(v) for v in t.split(",")], default=[0])
    parser.add_argument(
        "--choose",
        type=lambda t: t.split(","),
        default=["random", "missed-first"],
        help="how the user picks the nuclei to paint: at random, or those the shipped network gets wrong "
        "first (missed-first)",
    )
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=1.0, help="rescale the field (another magnification)")
    parser.add_argument("--max-steps", type=int, default=400)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
