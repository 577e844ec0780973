"""Train the nuclei-segmentation U-Net on synthetic and real nuclei; writes weights.pt beside this file.

    cd server/scopeflow/builtin_plugins
    python nuclei_segmentation/train.py --cpu         # the shipped weights (about 25 min on 2 CPUs)
    python nuclei_segmentation/train.py --smoke --out /tmp/w.pt   # seconds: checks the pipeline
    python nuclei_segmentation/train.py --retune W.pt --out W2.pt  # post-processing chosen again

Seeded and reproducible on a CPU (same seed, same torch, same thread count: same weights); it also runs on
CUDA when present (faster, not bit-reproducible). Half of every batch is synthetic (synthetic.py), half real:
crops of the training split of the mnfinder 1.2.3 wheel, downloaded once from the package index into
``--real-cache`` and checked against its sha256 (real.py; licence in DATA-LICENCES.md; ``--real none``
trains on synthetic images only); ``--collage-fraction`` takes a share of crowded collages of its nuclei
(collage.py) out of the synthetic half. ``--real-dir DIR`` adds any folder of labelled images (images/
beside masks/). The post-processing is chosen on validation images: synthetic ones, mnfinder's validation
split and, when collages are trained on, collages of its nuclei. No test image (the ``nuclei-2d`` sample)
is seen."""

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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS where CUDA is used

import collage  # noqa: E402
import real  # noqa: E402
import synthetic  # noqa: E402
from metrics import match  # noqa: E402
from targets import augment, contact_weight, distance_target, loss_fn  # noqa: E402

# median nucleus diameters (px) each real training image is seen at: sizes the synthetic nuclei have too
REAL_DIAMETERS = (12.0, 18.0, 26.0)


def plugin_module() -> Any:
    """The plugin file (its network and post-processing), imported by path."""
    spec = importlib.util.spec_from_file_location(
        "nuclei_segmentation_plugin", HERE.parent / "nuclei_segmentation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def targets(image: np.ndarray, labels: np.ndarray, plugin: Any) -> dict[str, np.ndarray]:
    """An image normalised as the plugin does, its labels, and what the network learns from them."""
    return {
        "image": plugin.normalise(image),
        "labels": labels,
        "foreground": (labels > 0).astype(np.float32),
        "distance": distance_target(labels),
        "weight": contact_weight(labels),
    }


def dataset(seed: int, count: int, size: int, plugin: Any) -> dict[str, np.ndarray]:
    """``count`` synthetic images with their targets, stacked."""
    rng = np.random.default_rng(seed)
    return stacked([targets(*synthetic.nuclei_image(rng, size), plugin) for _ in range(count)])


def stacked(items: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([item[key] for item in items]) for key in items[0]}


def collage_pairs(
    seed: int, real_images: list[dict[str, np.ndarray]], groups: int, count: int, size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` crowded fields of real nuclei (collage.py), ``size`` px square: as many from each of the
    ``groups`` scales of ``real_images`` (:func:`real_dataset`'s order: image by image, scale by scale),
    each made of nuclei of one scale only."""
    rng = np.random.default_rng(seed)
    out = []
    for group in range(groups):
        pairs = [(item["image"], item["labels"]) for item in real_images[group::groups]]
        out.extend(collage.collages(rng, pairs, count // groups + (group < count % groups), size))
    return out


def real_dataset(
    items: list[tuple[str, np.ndarray, np.ndarray]], plugin: Any, diameters: tuple[float, ...]
) -> list[dict[str, np.ndarray]]:
    """Each real image rescaled so that its median nucleus is each of ``diameters`` across; with targets."""
    from skimage.transform import resize

    out = []
    for _, image, labels in items:
        found = plugin.median_diameter(labels)
        for diameter in diameters:
            scale = diameter / found
            shape = tuple(max(round(s * scale), 32) for s in image.shape)
            small = resize(image, shape, order=1, preserve_range=True, anti_aliasing=scale < 1)
            lab = resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
            out.append(targets(small.astype(np.float32), plugin.relabel(lab)[0].astype(np.int32), plugin))
    return out


def real_crops(
    rng: np.random.Generator, images: list[dict[str, np.ndarray]], count: int, crop: int
) -> list[np.ndarray]:
    """``count`` random crops of random real images: image, foreground, distance, weight."""
    keys = ("image", "foreground", "distance", "weight")
    stacks: list[list[np.ndarray]] = [[] for _ in keys]
    for _ in range(count):
        item = images[int(rng.integers(len(images)))]
        height, width = item["image"].shape
        y, x = int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))
        for stack, key in zip(stacks, keys, strict=True):
            stack.append(item[key][y : y + crop, x : x + crop])
    return [np.stack(stack) for stack in stacks]


def evaluate(model: Any, data: dict[str, np.ndarray]) -> float:
    import torch

    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.from_numpy(data["image"][:, None]).to(dev))
        keys = ("foreground", "distance", "weight")
        loss = loss_fn(out, *(torch.from_numpy(data[k]).to(dev) for k in keys))
    return float(loss)


def evaluate_real(model: Any, images: list[dict[str, np.ndarray]]) -> float:
    """The loss on whole real validation images (each at its middle training size), averaged."""
    import torch

    model.eval()
    dev = next(model.parameters()).device
    step = 2 ** len(model.ups)
    losses = []
    with torch.no_grad():
        for item in images:
            height, width = (s - s % step for s in item["image"].shape)
            view = [item[k][:height, :width][None] for k in ("image", "foreground", "distance", "weight")]
            out = model(torch.from_numpy(np.ascontiguousarray(view[0][:, None])).to(dev))
            tensors = (torch.from_numpy(np.ascontiguousarray(v)).to(dev) for v in view[1:])
            losses.append(float(loss_fn(out, *tensors)))
    return float(np.mean(losses)) if losses else float("nan")


PROBABILITIES = (0.4, 0.5, 0.6)
SEED_HEIGHTS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)


def tune_postprocessing(
    model: Any,
    plugin: Any,
    data: dict[str, np.ndarray],
    real_val: list[tuple[str, np.ndarray, np.ndarray]],
    crowded: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """The foreground threshold and seed height with the best F1@0.5 on the validation images: the mean of
    the pooled F1 of the synthetic ones, of the real ones and of the ``crowded`` collages of real nuclei
    (image, labels). All count: the real images chosen on alone (mnfinder's, few touching nuclei) prefer
    high seed heights that merge the touching nuclei of crowded samples. Each candidate is scored as the
    plugin would run with it: a first pass at the image's own scale measures the nuclei, and the image is
    segmented again rescaled when :func:`scale_for` says so."""
    from skimage.transform import resize

    sets = [[(image, labels) for image, labels in zip(data["image"], data["labels"], strict=True)]]
    if real_val:
        sets.append([(plugin.normalise(image), labels) for _, image, labels in real_val])
    if crowded:
        sets.append([(plugin.normalise(image), labels) for image, labels in crowded])
    maps: dict[tuple[int, int, float], Any] = {}

    def maps_at(which: int, index: int, scale: float) -> Any:
        if (which, index, scale) not in maps:
            image = sets[which][index][0]
            if scale != 1.0:
                shape = tuple(max(round(s * scale), 8) for s in image.shape)
                image = resize(image, shape, order=1, preserve_range=True, anti_aliasing=scale < 1)
            maps[which, index, scale] = plugin.predict_maps(model, image.astype(np.float32))
        return maps[which, index, scale]

    scores: dict[tuple[float, float], list[float]] = {}
    for probability in PROBABILITIES:
        for height in SEED_HEIGHTS:
            for which, found in enumerate(sets):
                rows = []
                for index, (_, truth) in enumerate(found):
                    labels = plugin.instances(*maps_at(which, index, 1.0), probability, height, 15)
                    scale = plugin.scale_for(model, labels)
                    if scale != 1.0:
                        area = max(int(15 * scale * scale), 1)
                        labels = plugin.instances(*maps_at(which, index, scale), probability, height, area)
                        shape = truth.shape
                        labels = resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False)
                    rows.append(match(truth, labels.astype(np.int32)))
                scores.setdefault((probability, height), []).append(pooled_f1(rows))
    (probability, height), values = max(scores.items(), key=lambda kv: float(np.mean(kv[1])))
    return {
        "probability": probability,
        "seed_height": height,
        "f1": [round(v, 4) for v in values],
        "grid": {f"{p} {h}": [round(v, 4) for v in vs] for (p, h), vs in scores.items()},
    }


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
    real_train: list[dict[str, np.ndarray]] = []
    real_val: list[tuple[str, np.ndarray, np.ndarray]] = []
    crowded_train: dict[str, np.ndarray] = {}
    crowded_val: dict[str, np.ndarray] = {}
    if args.real == "mnfinder":
        loaded = [item for split in args.real_splits.split(",") for item in real.load(args.real_cache, split)]
        real_train = real_dataset(loaded, plugin, args.diameters)
        real_val = real.load(args.real_cache, "validation-data")
        real_val_images = real_dataset(real_val, plugin, REAL_DIAMETERS[1:2])
    if args.real_dir:
        from scopeflow.images import formats as data

        test_image = np.asarray(data.load_sample("nuclei-2d")[0])
        more = [item for where in args.real_dir for item in real.folder(where, [test_image])]
        print(f"{len(more)} labelled images from {', '.join(map(str, args.real_dir))}", flush=True)
        real_train += real_dataset(more, plugin, args.diameters)
    if real_train and args.collage_fraction:
        pairs = collage_pairs(args.seed + 7, real_train, len(args.diameters), args.collages, args.size)
        crowded_train = stacked([targets(image, labels, plugin) for image, labels in pairs])
        if args.real == "mnfinder":
            crowded_val = stacked([targets(i, lab, plugin) for i, lab in crowded_validation(args, plugin)])
    print(
        f"data: {args.images} + {args.val_images} synthetic images, {len(real_train)} + {len(real_val)} "
        f"real, {len(crowded_train.get('image', []))} + {len(crowded_val.get('image', []))} collages of "
        f"real nuclei in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    architecture = {"channels": args.channels, "depth": args.depth}
    model = plugin.build_model(**architecture).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=args.steps, pct_start=0.1)
    rng = np.random.default_rng(args.seed)
    curves: dict[str, list[float]] = {"step": [], "train": [], "validation": [], "validation_real": []}
    if crowded_val:
        curves["validation_crowded"] = []
    running: list[float] = []
    keys = ("image", "foreground", "distance", "weight")
    n_real = round(args.batch * args.real_fraction) if real_train else 0
    n_crowded = round(args.batch * args.collage_fraction) if crowded_train else 0
    for step in range(1, args.steps + 1):
        model.train()
        pick = rng.choice(args.images, args.batch - n_real - n_crowded, replace=False)
        y, x = rng.integers(0, args.size - args.crop + 1, 2)
        crop = (pick, slice(y, y + args.crop), slice(x, x + args.crop))
        batch = [train_data[k][crop] for k in keys]
        if n_real:
            extra = real_crops(rng, real_train, n_real, args.crop)
            batch = [np.concatenate([a, b]) for a, b in zip(batch, extra, strict=True)]
        if n_crowded:
            pick = rng.choice(len(crowded_train["image"]), n_crowded, replace=False)
            y, x = rng.integers(0, args.size - args.crop + 1, 2)
            crop = (pick, slice(y, y + args.crop), slice(x, x + args.crop))
            batch = [np.concatenate([a, crowded_train[k][crop]]) for a, k in zip(batch, keys, strict=True)]
        image, *wanted = augment(rng, batch, args.photometric, args.dim)
        out = model(torch.from_numpy(image[:, None]).to(dev))
        loss = loss_fn(out, *(torch.from_numpy(t).to(dev) for t in wanted))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % args.validate_every == 0 or step == args.steps:
            curves["step"].append(step)
            curves["train"].append(float(np.mean(running)))
            curves["validation"].append(evaluate(model, val_data))
            if real_val:
                curves["validation_real"].append(evaluate_real(model, real_val_images))
            if crowded_val:
                curves["validation_crowded"].append(evaluate(model, crowded_val))
            running = []
            on_real = (curves["validation_real"] or [float("nan")])[-1]
            on_crowded = (curves.get("validation_crowded") or [float("nan")])[-1]
            print(
                f"step {step}/{args.steps}: train {curves['train'][-1]:.4f}, validation "
                f"{curves['validation'][-1]:.4f}, real validation {on_real:.4f}, collage validation "
                f"{on_crowded:.4f} ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    model.eval()
    trained = label_statistics(
        [*train_data["labels"], *(item["labels"] for item in real_train)],
        [*train_data["image"], *(item["image"] for item in real_train)],
    )
    model.info = {"trained": trained, "postprocessing": {"seed_height": 0.15, "probability": 0.5}}
    tuned = choose_postprocessing(model, plugin, val_data, args)
    real_note = (
        f"{len(real_train) // len(args.diameters)} real images ("
        + (f"the {real.PACKAGE} wheel's {args.real_splits} split(s)" if args.real == "mnfinder" else "")
        + "".join(f", folder {where.name}" for where in args.real_dir)
        + ") "
        f"(hand-drawn masks; each seen with median nucleus diameters {list(args.diameters)} px), "
        f"{args.real_fraction:.0%} of every batch"
        + (
            f"; {len(crowded_train['image'])} collages of their nuclei ({args.size} px square, collage.py, "
            f"seed {args.seed + 7}), {args.collage_fraction:.0%} of every batch"
            if crowded_train
            else ""
        )
        + (", photometric augmentation" if args.photometric else "")
        + (f", {args.dim:.0%} of the crops dimmed 1.4-4 times" if args.dim else "")
        if real_train
        else "no real images"
    )
    info = {
        "architecture": architecture,
        "postprocessing": {"seed_height": tuned["seed_height"], "probability": tuned["probability"]},
        "trained": trained,
        "training": {
            "data": f"{args.images} synthetic images, {args.size} px square (synthetic.py), "
            f"seed {args.seed}; {real_note}",
            "validation": validation_note(args, len(real_val)),
            "steps": args.steps,
            "batch": args.batch,
            "crop": args.crop,
            "lr": args.lr,
            "seed": args.seed,
            "threads": args.threads,
            "seconds": round(time.monotonic() - started),
            "torch": torch.__version__,
            "validation_f1": tuned["f1"],
            "postprocessing_choice": tuned["choice"],
            "postprocessing_grid": tuned["grid"],
        },
        "curves": curves,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": state, "info": json.dumps(info)}, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)", flush=True)
    return info


def choose_postprocessing(
    model: Any, plugin: Any, val_data: dict[str, np.ndarray], args: argparse.Namespace
) -> dict[str, Any]:
    """:func:`tune_postprocessing` on the synthetic validation images and the real ones of
    ``--tune-splits`` (none with ``--real none``)."""
    splits = args.tune_splits.split(",") if args.real == "mnfinder" and args.tune_splits else []
    real_tune = [item for split in splits for item in real.load(args.real_cache, split)]
    crowded = crowded_validation(args, plugin) if args.real == "mnfinder" and args.collage_fraction else []
    tuned = tune_postprocessing(model, plugin, val_data, real_tune, crowded)
    tuned["choice"] = (
        f"best mean of the pooled F1@0.5 on the {args.val_images} synthetic validation images, on the "
        f"{len(real_tune)} real images of the {args.tune_splits} split(s)"
        + (f" and on {len(crowded)} collages of the validation-data split's nuclei" if crowded else "")
        if real_tune
        else f"best pooled F1@0.5 on the {args.val_images} synthetic validation images"
    )
    print(
        f"validation F1@0.5 (synthetic, real, collages) {tuned['f1']} at probability {tuned['probability']}, "
        f"seed height {tuned['seed_height']} ({tuned['choice']})",
        flush=True,
    )
    return tuned


def crowded_validation(args: argparse.Namespace, plugin: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``--val-images`` collages of the nuclei of mnfinder's validation split (never trained on), seeded: the
    crowded real fields that guard the separation of touching nuclei."""
    images = real_dataset(real.load(args.real_cache, "validation-data"), plugin, args.diameters)
    return collage_pairs(args.seed + 2_000_003, images, len(args.diameters), args.val_images, args.size)


def validation_note(args: argparse.Namespace, real_loss_images: int) -> str:
    note = f"{args.val_images} other synthetic images (seed {args.seed + 1_000_003})"
    if args.real == "mnfinder":
        note += (
            f"; loss curve on the {real_loss_images} images of the validation-data split; post-processing "
            f"chosen on the {args.tune_splits} split(s)"
        )
    return note


def retune(args: argparse.Namespace) -> dict[str, Any]:
    """Choose the post-processing of trained weights again (the network is unchanged) and write them to
    ``--out``: what a full run does after training, for weights already trained."""
    import torch

    torch.set_num_threads(args.threads)
    plugin = plugin_module()
    model = plugin.load_model(args.retune)
    val_data = dataset(args.seed + 1_000_003, args.val_images, args.size, plugin)
    tuned = choose_postprocessing(model, plugin, val_data, args)
    info = dict(model.info)
    info["postprocessing"] = {"seed_height": tuned["seed_height"], "probability": tuned["probability"]}
    loss_images = len(real.load(args.real_cache, "validation-data")) if args.real == "mnfinder" else 0
    info["training"] = dict(
        info["training"],
        validation=validation_note(args, loss_images),
        validation_f1=tuned["f1"],
        postprocessing_choice=tuned["choice"],
        postprocessing_grid=tuned["grid"],
    )
    saved = torch.load(args.retune, map_location="cpu", weights_only=True)
    torch.save({"state": saved["state"], "info": json.dumps(info)}, args.out)
    print(f"wrote {args.out}", flush=True)
    return info


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "weights.pt")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--images", type=int, default=1000, help="synthetic training images")
    parser.add_argument("--val-images", type=int, default=48, help="synthetic validation images")
    parser.add_argument("--size", type=int, default=128, help="side of a synthetic image (px)")
    parser.add_argument("--crop", type=int, default=96, help="side of the training crops (px)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--validate-every", type=int, default=250)
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even where CUDA is present")
    parser.add_argument(
        "--real",
        choices=["mnfinder", "none"],
        default="mnfinder",
        help="real images trained on beside the synthetic",
    )
    parser.add_argument(
        "--real-cache",
        type=Path,
        default=Path.home() / ".cache" / "scopeflow" / "training",
        help="where the real images' wheel is downloaded to (once)",
    )
    parser.add_argument(
        "--real-dir",
        type=Path,
        action="append",
        default=[],
        help="more labelled real images to train on: a folder with images/ and masks/ (repeatable)",
    )
    parser.add_argument("--real-fraction", type=float, default=0.5, help="share of real crops in each batch")
    parser.add_argument(
        "--collage-fraction",
        type=float,
        default=0.0,
        help="share of each batch cut from collages of the real training nuclei (crowded fields; 0: none)",
    )
    parser.add_argument("--collages", type=int, default=900, help="collages of real nuclei made for training")
    parser.add_argument(
        "--real-splits",
        default="training-data",
        help="the splits of the real images trained on (comma-separated)",
    )
    parser.add_argument(
        "--diameters",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        default=REAL_DIAMETERS,
        help="median nucleus diameters (px) each real image is seen at, comma-separated",
    )
    parser.add_argument("--photometric", action="store_true", help="gamma, blur and noise augmentation")
    parser.add_argument(
        "--dim", type=float, default=0.0, help="share of the crops seen 1.4-4 times dimmer (0: none)"
    )
    parser.add_argument(
        "--tune-splits",
        default="validation-data",
        help="the real images' splits the post-processing is chosen on (comma-separated; never trained on)",
    )
    parser.add_argument(
        "--retune", type=Path, help="trained weights: only choose their post-processing again, write --out"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny configuration that runs in seconds")
    args = parser.parse_args(argv)
    overlap = set(args.tune_splits.split(",")) & set(args.real_splits.split(",")) - {""}
    if overlap:
        parser.error(f"{', '.join(sorted(overlap))}: trained on, so not for choosing the post-processing")
    if args.smoke:
        args.images, args.val_images, args.size, args.crop, args.steps, args.batch = 6, 2, 64, 48, 4, 2
        args.channels, args.depth, args.validate_every, args.real = 8, 2, 2, "none"
    return args


if __name__ == "__main__":
    arguments = parse()
    if arguments.retune:
        retune(arguments)
    else:
        train(arguments)
