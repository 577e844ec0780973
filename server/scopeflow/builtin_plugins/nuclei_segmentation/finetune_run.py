"""The plugin's ``finetune`` op around :mod:`finetune`: one run at a time, cancellation, progress and a live
plot in the app, the model card, and the new plugin version registered through the hub."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
PLOT = "nuclei-segmentation fine-tune"
HUB_SERVICE, HUB_METHOD = "plugin-versions", "register_finetune"
HUB_TIMEOUT = 120

CANCEL = threading.Event()
RUNNING = threading.Lock()


def cancel() -> str:
    """Ask the running fine-tune to stop (it stops within a training step and makes no version)."""
    if not RUNNING.locked():
        return "no fine-tune is running"
    CANCEL.set()
    return "the running fine-tune stops within a step; no version is made"


def pairs(given: list[tuple[Any, Any]], image_names: str) -> list[tuple[Any, Any, str]]:
    """(image, labels, name) of each annotated image: the op's pairs (the first may hold lists of images
    and of label images: scripts pass any number so), named by ``image_names`` (comma-separated)."""
    (image, labels), *extra = given
    images = list(image) if isinstance(image, list | tuple) else [image]
    label_list = list(labels) if isinstance(labels, list | tuple) else [labels]
    for more, more_labels in extra:
        if (more is None) != (more_labels is None):
            raise ValueError("give each extra image with its label image")
        if more is not None:
            images.append(more)
            label_list.append(more_labels)
    if len(images) != len(label_list):
        raise ValueError(f"{len(images)} images for {len(label_list)} label images: give them in pairs")
    names = [n.strip()[:80] for n in image_names.split(",")] if image_names else []
    names += [f"image {i + 1}" for i in range(len(names), len(images))]
    return list(zip(images, label_list, names, strict=False))


def checked(path: Path, sha256: str) -> Path:
    """``path``, if the file's sha256 is ``sha256`` (the one a fine-tuned version's plugin file names)."""
    found = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if found != sha256:
        raise RuntimeError(f"weights {path}: sha256 {found[:12]}, but the plugin names {sha256[:12]}")
    return path


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name.strip().lower()):
        raise ValueError(
            f"name {name!r}: give the new version a name of 1-40 lower-case letters, digits and '-' "
            "(its plugin id becomes nuclei-segmentation-NAME)"
        )
    return name.strip().lower()


class Reporter:
    """Progress bar and the live plot of train loss, validation loss and validation F1@0.5."""

    def __init__(self, notify: Callable[..., None], seconds: float, steps: int) -> None:
        self.notify, self.seconds, self.steps = notify, seconds, steps

    def __call__(self, history: Any, step: int) -> None:
        done = max(history.seconds / max(self.seconds, 1e-9), step / max(self.steps, 1))
        self.notify("showProgress", min(99, round(100 * done)))
        self.notify(
            "createWindow",
            {
                "type": "scopeflow/plot",
                "name": PLOT,
                "data": {
                    "title": "nuclei-segmentation fine-tuning",
                    "x": list(history.step),
                    "xlabel": "step",
                    "ylabel": "loss / F1@0.5",
                    "series": {
                        "train loss": list(history.train),
                        "validation loss": list(history.validation),
                        "validation F1@0.5": list(history.f1),
                    },
                },
            },
        )
        self.notify(
            "log",
            f"fine-tune step {step}: train loss {history.train[-1]:.4f}, validation loss "
            f"{history.validation[-1]:.4f}, validation F1@0.5 {history.f1[-1]:.3f} ({history.seconds:.0f} s)",
        )


def run(
    plugin: Any,
    finetune: Any,
    pairs: list[tuple[Any, Any, str]],
    name: str,
    minutes: float,
    background: bool,
    max_steps: int,
    seed: int,
    hub: Callable[..., Any] | None,
) -> dict[str, Any]:
    """Fine-tune, register the new version through ``hub(service, method, *args)`` and return the
    summary."""
    name = check_name(name)
    if not 0 < minutes <= 120:
        raise ValueError(f"minutes must be more than 0 and at most 120, got {minutes}")
    if not 1 <= max_steps <= 100_000:
        raise ValueError(f"max_steps must be between 1 and 100000, got {max_steps}")
    if not RUNNING.acquire(blocking=False):
        raise RuntimeError("a fine-tune is already running in this plugin: wait for it, or cancel it")
    try:
        CANCEL.clear()
        report = Reporter(plugin.notify, minutes * 60, max_steps)
        model, history, data = finetune.finetune(
            plugin, pairs, background, minutes, max_steps, seed, report, CANCEL
        )
    finally:
        CANCEL.clear()
        RUNNING.release()
    if history.stopped == "cancelled":
        plugin.notify("showProgress", 0)
        raise RuntimeError(f"fine-tuning cancelled at step {history.step[-1]}: no version was made")
    best = history.best
    record = {
        "data": data,
        "background": background,
        "before": {"validation_f1": history.f1[0], "validation_loss": history.validation[0]},
        "after": {"validation_f1": history.f1[best], "validation_loss": history.validation[best]},
        "best_step": history.step[best],
        "steps": history.step[-1],
        "seconds": round(history.seconds, 1),
        "stopped": history.stopped,
        "overtraining": history.overtraining,
        "limits": {"minutes": minutes, "max_steps": max_steps},
        "seed": seed,
        "device": str(next(model.parameters()).device.type),
        "curves": {
            "step": history.step,
            "train": history.train,
            "validation": history.validation,
            "validation_f1": history.f1,
        },
    }
    info = dict(model.info)
    info["finetune"] = record
    weights = finetune.weights_bytes(model, info)
    card = model_card(plugin, finetune, record, name)
    summary: dict[str, Any] = {
        "before": record["before"],
        "after": record["after"],
        "steps": record["steps"],
        "best_step": record["best_step"],
        "epochs": data["epochs"],
        "seconds": record["seconds"],
        "stopped": history.stopped,
        "overtraining": history.overtraining,
        "training_objects": data["training_objects"],
        "validation_objects": data["validation_objects"],
        "split": data["split"],
    }
    if hub is None:
        raise RuntimeError(
            "fine-tuning makes a new plugin version through the hub: run it in a plugin kernel"
        )
    request = {"name": name, "card": card, "summary": dict(summary)}
    summary["version"] = hub(HUB_SERVICE, HUB_METHOD, request, weights).result(HUB_TIMEOUT)
    plugin.notify("showProgress", 100)
    if history.overtraining:
        plugin.notify("showMessage", "⚠ nuclei-segmentation: " + history.overtraining)
    version = summary["version"]
    plugin.notify(
        "showMessage",
        f"fine-tuned {version['id']} {version['version']}: validation F1@0.5 "
        f"{finetune.fmt(record['before']['validation_f1'])} → "
        f"{finetune.fmt(record['after']['validation_f1'])} ({history.stopped})",
    )
    return summary


def model_card(plugin: Any, finetune: Any, record: dict[str, Any], name: str) -> str:
    """The new version's model card (markdown): what it was trained on, how, and the figures before and
    after on the validation objects."""
    fmt = finetune.fmt
    data, info = record["data"], plugin.model_info()
    post = info["postprocessing"]
    rows = "\n".join(
        f"| {image['name']} | {' x '.join(map(str, image['shape']))} | {image['objects']} | "
        f"{image['validation_objects']} | {image['scale']} |"
        for image in data["images"]
    )
    curves = record["curves"]
    shown = sorted(
        {0, *range(0, len(curves["step"]), max(1, len(curves["step"]) // 10)), len(curves["step"]) - 1}
    )
    curve_rows = "\n".join(
        f"| {curves['step'][i]} | {fmt(curves['train'][i])} | {fmt(curves['validation'][i])} | "
        f"{fmt(curves['validation_f1'][i])} |"
        for i in shown
    )
    counted = (
        "every pixel of the images: unlabelled pixels are background"
        if record["background"]
        else "only the annotated regions: each annotated object dilated by half the median nucleus "
        f"diameter (at least {finetune.MIN_MARGIN} px). There an unlabelled pixel within {finetune.EDGE} px "
        "of an annotated object is background (its outline, the gap to its neighbours); farther out it is "
        "background only where the shipped network sees background too, else left out. Why: whoever paints "
        "some nuclei of a crowded field leaves their neighbours unlabelled, and those must not be taught as "
        "background"
    )
    overtraining = record["overtraining"] or (
        "none seen: the validation F1@0.5 did not fall below its best while the training loss fell"
    )
    before, after, best = record["before"], record["after"], record["best_step"]
    return f"""Fine-tuned version "{name}" of nuclei-segmentation: the shipped U-Net trained further on a
user's annotated images. `segment` and `assess` work as in nuclei-segmentation (its docs describe the
options).

## Model card

**What it is.** The nuclei-segmentation network (same architecture and post-processing: probability
{post.get("probability", 0.5)}, seed height {post["seed_height"]}), fine-tuned from the shipped weights. The
weights are the file whose sha256 this plugin names (checked when they are loaded).

**Trained on** ({data["training_objects"]} training objects, {data["validation_objects"]} validation objects):

| image | shape | annotated objects | of them validation | scale seen at |
|---|---|---|---|---|
{rows}

The loss counts {counted}. {data["split"]}; no training crop's loss sees them or their margin.

**Procedure.** AdamW (learning rate {finetune.LEARNING_RATE}, {finetune.WARMUP} warm-up steps), batches of
{finetune.BATCH} crops of {data["crop"]} px around training objects, {finetune.REPLAY:.0%} of them replayed
from synthetic nuclei like those of the shipped training (so that it keeps what it knew); flips, rotations,
exposure and offset jitter; batch-normalisation statistics kept from the shipped network; validated and
kept: the moving average of the weights (decay {finetune.AVERAGE}). {record["steps"]} steps
({data["epochs"]} own crops per training object), {record["seconds"]} s on {record["device"]}; stopped by
{record["stopped"]} (limits: {record["limits"]["minutes"]} min, {record["limits"]["max_steps"]} steps; seed
{record["seed"]}). Validation every {finetune.VALIDATE_EVERY} steps; the weights kept are those of the best
validation F1@0.5 (ties: the lower validation loss), step {record["best_step"]}, not the last.

**Validation** (the held-out objects, F1 at IoU 0.5):

| | validation F1@0.5 | validation loss |
|---|---|---|
| before (shipped weights) | {fmt(before["validation_f1"])} | {fmt(before["validation_loss"])} |
| **after** (step {best}) | **{fmt(after["validation_f1"])}** | {fmt(after["validation_loss"])} |

| step | train loss | validation loss | validation F1@0.5 |
|---|---|---|---|
{curve_rows}

**Overtraining check.** {overtraining}.

**Known limitations.** Learnt from {data["training_objects"] + data["validation_objects"]} objects of the
images above: check the overlay on other images before trusting it there. The validation figures rest on
{data["validation_objects"]} objects only. The shipped model card (nuclei-segmentation's docs) describes
the network, its training data and its limits.
"""
