"""Train the nuclei-segmentation U-Net on synthetic nuclei; writes weights.pt beside this file.

    python plugins/nuclei_segmentation/train.py --cpu         # the shipped weights (20-50 min on 2 busy CPUs)
    python plugins/nuclei_segmentation/train.py --smoke --out /tmp/w.pt   # seconds: checks the pipeline

Seeded and reproducible on a CPU (same seed, same torch, same thread count → same weights); it also runs on
CUDA when present (faster, not bit-reproducible). Only synthetic images (see synthetic.py) are used for
training, for the validation curve and for choosing the seed height of the post-processing; no real image is
seen."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS where CUDA is used

import synthetic  # noqa: E402
from metrics import match  # noqa: E402


def plugin_module() -> Any:
    """The plugin file (its network and post-processing), imported by path."""
    spec = importlib.util.spec_from_file_location(
        "nuclei_segmentation_plugin", HERE.parent / "nuclei_segmentation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def dataset(seed: int, count: int, size: int, plugin: Any) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, labels = zip(*(synthetic.nuclei_image(rng, size) for _ in range(count)), strict=True)
    return {
        "image": np.stack([plugin.normalise(i) for i in images]),
        "labels": np.stack(labels),
        "foreground": np.stack([(lab > 0).astype(np.float32) for lab in labels]),
        "distance": np.stack([distance_target(lab) for lab in labels]),
        "weight": np.stack([contact_weight(lab) for lab in labels]),
    }


def augment(rng: np.random.Generator, batch: list[np.ndarray]) -> list[np.ndarray]:
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    out = []
    for array in batch:
        array = np.rot90(array, k, axes=(-2, -1))
        out.append(np.ascontiguousarray(np.flip(array, -1) if flip else array))
    gain = rng.uniform(0.7, 1.4, (len(out[0]), 1, 1)).astype(np.float32)  # exposure and offset jitter
    out[0] = out[0] * gain + rng.uniform(-0.1, 0.1, (len(out[0]), 1, 1)).astype(np.float32)
    return out


def loss_fn(output: Any, foreground: Any, distance: Any, weight: Any) -> Any:
    """Cross entropy of the foreground plus squared error of the distance map, both stressed at contacts."""
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(output[:, 0], foreground, weight=weight)
    mse = (((output[:, 1] - distance) ** 2) * (0.2 + foreground) * weight).mean()
    return bce + 2 * mse


def evaluate(model: Any, data: dict[str, np.ndarray]) -> float:
    import torch

    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.from_numpy(data["image"][:, None]).to(dev))
        keys = ("foreground", "distance", "weight")
        loss = loss_fn(out, *(torch.from_numpy(data[k]).to(dev) for k in keys))
    return float(loss)


def tune_postprocessing(model: Any, plugin: Any, data: dict[str, np.ndarray]) -> tuple[float, float]:
    """The seed height with the best pooled F1@0.5 on the (synthetic) validation images."""
    maps = [plugin.predict_maps(model, image) for image in data["image"]]
    best = (-1.0, 0.1)
    for height in (0.05, 0.1, 0.15, 0.2, 0.3):
        pairs = zip(maps, data["labels"], strict=True)
        rows = [match(t, plugin.instances(p, d, 0.5, height)) for (p, d), t in pairs]
        best = max(best, (pooled_f1(rows), height))
    return best


def pooled_f1(rows: list[dict[str, float]]) -> float:
    """F1 of all the images' nuclei together (each image weighs by its number of nuclei)."""
    matched = sum(r["f1"] * (r["true"] + r["predicted"]) / 2 for r in rows)
    total = sum(r["true"] + r["predicted"] for r in rows)
    return 2 * matched / total if total else 1.0


def label_statistics(labels: np.ndarray, images: np.ndarray) -> dict[str, Any]:
    diameters, noise, fractions = [], [], []
    for lab, image in zip(labels, images, strict=True):
        areas = np.bincount(lab.ravel())[1:]
        areas = areas[areas > 0]
        diameters.extend(2 * np.sqrt(areas / np.pi))
        background = image[lab == 0]
        noise.append(float(np.std(background - np.median(background))) if background.size else 0.0)
        fractions.append(float((lab > 0).mean()))
    d = np.asarray(diameters)
    return {
        "diameter_median": float(np.median(d)),
        "diameter_range": [float(np.percentile(d, 2)), float(np.percentile(d, 98))],
        "background_noise_max": float(np.percentile(noise, 98)),
        "foreground_fraction_max": float(np.percentile(fractions, 98)),
    }


def train(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    # reproducible on a CPU; on a GPU only where the kernels allow it (max-pooling's backward does not)
    torch.use_deterministic_algorithms(True, warn_only=dev.type == "cuda")
    plugin = plugin_module()
    started = time.monotonic()
    train_data = dataset(args.seed, args.images, args.size, plugin)
    val_data = dataset(args.seed + 1_000_003, args.val_images, args.size, plugin)
    print(
        f"data: {args.images} + {args.val_images} synthetic images in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    architecture = {"channels": args.channels, "depth": args.depth}
    model = plugin.build_model(**architecture).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps, pct_start=0.1)
    rng = np.random.default_rng(args.seed)
    curves: dict[str, list[float]] = {"step": [], "train": [], "validation": []}
    running: list[float] = []
    for step in range(1, args.steps + 1):
        model.train()
        pick = rng.choice(args.images, args.batch, replace=False)
        y, x = rng.integers(0, args.size - args.crop + 1, 2)
        crop = (pick, slice(y, y + args.crop), slice(x, x + args.crop))
        keys = ("image", "foreground", "distance", "weight")
        image, *targets = augment(rng, [train_data[k][crop] for k in keys])
        out = model(torch.from_numpy(image[:, None]).to(dev))
        loss = loss_fn(out, *(torch.from_numpy(t).to(dev) for t in targets))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % args.validate_every == 0 or step == args.steps:
            curves["step"].append(step)
            curves["train"].append(float(np.mean(running)))
            curves["validation"].append(evaluate(model, val_data))
            running = []
            print(
                f"step {step}/{args.steps}: train {curves['train'][-1]:.4f}, validation "
                f"{curves['validation'][-1]:.4f} ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    model.eval()
    f1, height = tune_postprocessing(model, plugin, val_data)
    print(f"synthetic validation F1@0.5 {f1:.3f} at seed height {height}", flush=True)
    info = {
        "architecture": architecture,
        "postprocessing": {"seed_height": height},
        "trained": label_statistics(train_data["labels"], train_data["image"]),
        "training": {
            "data": f"{args.images} synthetic images, {args.size} px square (synthetic.py), seed {args.seed}",
            "validation": f"{args.val_images} other synthetic images (seed {args.seed + 1_000_003})",
            "steps": args.steps,
            "batch": args.batch,
            "crop": args.crop,
            "lr": args.lr,
            "seed": args.seed,
            "threads": args.threads,
            "seconds": round(time.monotonic() - started),
            "torch": torch.__version__,
            "synthetic_validation_f1": round(f1, 4),
        },
        "curves": curves,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "info": json.dumps(info)}, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)", flush=True)
    return info


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "weights.pt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--images", type=int, default=320, help="synthetic training images")
    parser.add_argument("--val-images", type=int, default=48, help="synthetic validation images")
    parser.add_argument("--size", type=int, default=128, help="side of a synthetic image (px)")
    parser.add_argument("--crop", type=int, default=96, help="side of the training crops (px)")
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--validate-every", type=int, default=50)
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    parser.add_argument("--smoke", action="store_true", help="a tiny configuration that runs in seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.val_images, args.size, args.crop, args.steps, args.batch = 6, 2, 64, 48, 4, 2
        args.channels, args.depth, args.validate_every = 8, 2, 2
    return args


if __name__ == "__main__":
    train(parse())
