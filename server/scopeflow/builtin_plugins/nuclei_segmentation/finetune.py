"""Fine-tuning of the nuclei-segmentation U-Net on a user's annotated images (the plugin's ``finetune`` op).

Starts from the shipped weights and trains on crops around the annotated objects, with the loss of
``targets.py``; half of every batch replays synthetic nuclei like those of the shipped training
(``synthetic.py``), so that the network keeps what it knew. Some whole objects are held out for
validation: never trained on, and with a margin around them that no training crop's loss sees. What is
validated and kept is a moving average of the trained weights (steadier than any one step's); the best
validation F1@0.5 is kept (ties: the lower validation loss), not the last. Training stops at the time
limit, at the step limit, after ``PATIENCE`` validations without a better one, or when cancelled.

Without "unlabelled pixels are background" only the annotated regions count: each annotated object dilated
by a margin of half the median diameter (at least ``MIN_MARGIN`` px). In it an unlabelled pixel within
``EDGE`` px of a labelled nucleus is background (its outline, the gap to its neighbours); farther out it is
background only where the shipped network sees background too (probability below 0.3, 1 px away), else
left out. A user who paints some nuclei of a crowded field leaves their neighbours unlabelled: those must
not be taught as background.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
CROP, BATCH = 96, 8
LEARNING_RATE, WARMUP = 5e-4, 10
AVERAGE = 0.95  # the weights validated and kept: an exponential moving average of the trained ones
VALIDATE_EVERY = 20  # steps
PATIENCE = 6  # validations without a better one
MIN_MARGIN = 4
EDGE = 3  # px beyond a labelled nucleus that are background whatever the shipped network says
MAX_OBJECTS = 5000
REPLAY = 0.5  # share of each batch cut from synthetic nuclei like those the shipped network learnt from
REPLAY_IMAGES, REPLAY_SIZE = 48, 128


def _local(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"scopeflow_nuclei_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


targets = _local("targets")
metrics = _local("metrics")
synthetic = _local("synthetic")


@dataclass
class Annotated:
    """One annotated image, normalised, with its training and validation targets."""

    name: str
    shape: tuple[int, ...]
    scale: float
    image: Any  # normalised float32, at the scale the network sees
    labels: Any  # int32, 0 unlabelled
    train_ids: list[int]
    val_ids: list[int]
    train_mask: Any = None  # float32 1 where the training loss counts
    val_mask: Any = None
    arrays: dict[str, Any] = field(default_factory=dict)


# -- input ----------------------------------------------------------------------------------------------
def check_labels(labels: Any, shape: tuple[int, ...], which: str) -> Any:
    """A label image as int32 0..n (same shape as its image); a clear ValueError for anything else."""
    data = np.asarray(labels)
    if data.ndim > 2 and sum(s > 1 for s in data.shape) == 2:
        data = data.reshape([s for s in data.shape if s > 1])
    if data.shape != shape:
        raise ValueError(f"{which}: the label image is {data.shape}, its image {shape}: they must match")
    if data.dtype == bool or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{which}: labels must be integers (0 unlabelled, 1..n one object each)")
    whole = np.issubdtype(data.dtype, np.integer)
    if not whole and (not np.isfinite(data).all() or not np.array_equal(data, np.round(data))):
        raise ValueError(f"{which}: labels must be whole numbers (0 unlabelled, 1..n one object each)")
    if data.size and data.min() < 0:
        raise ValueError(f"{which}: labels must not be negative")
    relabelled, _, _ = _relabel(data.astype(np.int64))
    if int(relabelled.max()) > MAX_OBJECTS:
        raise ValueError(f"{which}: more than {MAX_OBJECTS} objects")
    return relabelled.astype(np.int32)


def _relabel(labels: Any) -> Any:
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)


def split_validation(counts: list[int], rng: Any) -> tuple[list[list[int]], str]:
    """Validation object ids per image: whole objects, about a fifth of them; with few objects still one
    (2-4 objects) or two (5-9); the note says what was done."""
    total = sum(counts)
    if total < 2:
        raise ValueError(
            f"fine-tuning needs at least 2 annotated objects (one to train on, one to validate), got {total}"
        )
    wanted = 1 if total < 5 else max(2, round(0.2 * total))
    everyone = [(i, obj) for i, n in enumerate(counts) for obj in range(1, n + 1)]
    picked = {everyone[k] for k in rng.choice(len(everyone), wanted, replace=False)}
    chosen = [[obj for obj in range(1, n + 1) if (i, obj) in picked] for i, n in enumerate(counts)]
    note = (
        f"{wanted} of the {total} annotated objects held out for validation (whole objects, chosen at random)"
    )
    if total < 10:
        note += f"; with so few objects the validation F1 rests on {wanted}: a coarse guide"
    return chosen, note


def prepare(
    plugin: Any, pairs: list[tuple[Any, Any, str]], background: bool, seed: int
) -> tuple[list[Annotated], str]:
    """Check, rescale (nuclei to the trained size), normalise and split the annotated images."""
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    checked = []
    for index, (image, labels, name) in enumerate(pairs):
        which = f"image {index + 1} ({name})"
        data = plugin.check_image(image)
        lab = check_labels(labels, data.shape, which)
        if lab.max() == 0 and not background:
            raise ValueError(f"{which}: no annotated object")
        checked.append((data, lab, name))
    chosen, note = split_validation([int(lab.max()) for _, lab, _ in checked], rng)
    target = plugin.model_info()["trained"]["diameter_median"]
    out = []
    for (data, lab, name), val_ids in zip(checked, chosen, strict=True):
        found = plugin.median_diameter(lab)
        scale = target / found if found else 1.0
        scale = 1.0 if 1 / plugin.RESCALE_BEYOND <= scale <= plugin.RESCALE_BEYOND else scale
        scale = float(np.clip(scale, plugin.MIN_SCALE, plugin.MAX_SCALE))
        norm = plugin.normalise(data)
        if scale != 1.0:
            shape = tuple(max(round(s * scale), 16) for s in data.shape)
            norm = resize(norm, shape, order=1, preserve_range=True, anti_aliasing=scale < 1)
            lab = resize(lab, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
        train_ids = [i for i in range(1, int(lab.max()) + 1) if i not in val_ids and (lab == i).any()]
        item = Annotated(name, data.shape, scale, norm.astype(np.float32), lab, train_ids, val_ids)
        masks(plugin, item, background)
        out.append(item)
    return out, note


def masks(plugin: Any, item: Annotated, background: bool) -> None:
    """Where the training and the validation losses count, and the training targets."""
    lab = item.labels
    diameter = plugin.median_diameter(lab) or 15.0
    margin = max(MIN_MARGIN, round(diameter / 2))
    disc = _disc(margin)
    val = np.isin(lab, item.val_ids)
    val_region = ndimage.binary_dilation(val, disc) if val.any() else val
    if background:
        train = ~val_region
    else:
        train = ndimage.binary_dilation(np.isin(lab, item.train_ids), disc) & ~val_region
        # an unlabelled pixel near the labelled nuclei (beyond their own edges, EDGE px) is background only
        # where the shipped network sees background too: elsewhere it may be a nucleus nobody labelled
        prob, _ = plugin.predict_maps(plugin.load_model(), item.image)
        edges = ndimage.binary_dilation(lab > 0, _disc(EDGE))
        unsure = (lab == 0) & ndimage.binary_dilation((prob > 0.3) & ~edges, _disc(1))
        train &= ~unsure
        val_region &= ~unsure
    item.train_mask = train.astype(np.float32)
    item.val_mask = val_region.astype(np.float32)
    item.arrays = {
        "image": item.image,
        "foreground": (lab > 0).astype(np.float32),
        "distance": targets.distance_target(lab),
        "weight": targets.contact_weight(lab),
    }


def _disc(radius: int) -> Any:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return yy * yy + xx * xx <= radius * radius


# -- batches --------------------------------------------------------------------------------------------
def replay_pool(plugin: Any, seed: int) -> dict[str, Any]:
    """Synthetic nuclei images (``synthetic.py``, as in the shipped training) with their targets: a share of
    every batch, so that the network does not forget what it knew while it learns the user's images."""
    rng = np.random.default_rng(seed + 104_729)
    pairs = [synthetic.nuclei_image(rng, REPLAY_SIZE) for _ in range(REPLAY_IMAGES)]
    return {
        "image": np.stack([plugin.normalise(image) for image, _ in pairs]),
        "foreground": np.stack([(labels > 0).astype(np.float32) for _, labels in pairs]),
        "distance": np.stack([targets.distance_target(labels) for _, labels in pairs]),
        "weight": np.stack([targets.contact_weight(labels) for _, labels in pairs]),
    }


def crop_size(items: list[Annotated], step: int) -> int:
    smallest = min(min(item.image.shape) for item in items)
    return max(step, min(CROP, smallest - smallest % step))


def batch(
    rng: Any, items: list[Annotated], size: int, background: bool, replay: dict[str, Any] | None = None
) -> list[Any]:
    """``BATCH`` crops (image, foreground, distance, weight x training mask), each around a training object
    (or, when unlabelled pixels are background, every other one anywhere), the last ``REPLAY`` of them from
    the ``replay`` pool; augmented."""
    keys = ("image", "foreground", "distance", "weight")
    stacks: list[list[Any]] = [[] for _ in keys]
    centres = [(i, obj) for i, item in enumerate(items) for obj in item.train_ids]
    own = BATCH - (round(BATCH * REPLAY) if replay is not None and size <= REPLAY_SIZE else 0)
    for _ in range(BATCH - own):
        assert replay is not None
        pick = int(rng.integers(len(replay["image"])))
        y, x = (int(v) for v in rng.integers(0, REPLAY_SIZE - size + 1, 2))
        for stack, key in zip(stacks, keys, strict=True):
            stack.append(replay[key][pick, y : y + size, x : x + size])
    for k in range(own):
        if centres and not (background and k % 2):
            index, obj = centres[int(rng.integers(len(centres)))]
            ys, xs = np.nonzero(items[index].labels == obj)
            pick = int(rng.integers(len(ys)))
            cy, cx = int(ys[pick] + rng.integers(-size // 4, size // 4 + 1)), int(xs[pick])
            cx += int(rng.integers(-size // 4, size // 4 + 1))
        else:
            index = int(rng.integers(len(items)))
            cy, cx = (int(rng.integers(0, s)) for s in items[index].image.shape)
        item = items[index]
        height, width = item.image.shape
        y = int(np.clip(cy - size // 2, 0, height - size))
        x = int(np.clip(cx - size // 2, 0, width - size))
        window = (slice(y, y + size), slice(x, x + size))
        for stack, key in zip(stacks, keys, strict=True):
            array = item.arrays[key][window]
            stack.append(array * item.train_mask[window] if key == "weight" else array)
    return targets.augment(rng, [np.stack(s).astype(np.float32) for s in stacks])


def masked_loss(output: Any, foreground: Any, distance: Any, weight: Any) -> Any:
    """``targets.loss_fn`` per pixel where the loss counts (the weight is 0 elsewhere)."""
    counted = (weight > 0).float().mean().clamp(min=1e-6)
    return targets.loss_fn(output, foreground, distance, weight) / counted


# -- validation -----------------------------------------------------------------------------------------
def validate(plugin: Any, model: Any, items: list[Annotated], background: bool) -> tuple[float, float]:
    """(Validation loss, F1@0.5 on the validation objects). Predicted objects count if they overlap a
    validation object; when unlabelled pixels are background, also if they lie inside its margin."""
    import torch

    model.eval()
    losses, rows = [], []
    chosen = model.info["postprocessing"]
    dev = next(model.parameters()).device
    for item in items:
        if not item.val_ids:
            continue
        ys, xs = np.nonzero(item.val_mask)
        step = 2 ** len(model.ups)
        y0, x0 = max(int(ys.min()) - 16, 0), max(int(xs.min()) - 16, 0)
        y1, x1 = min(int(ys.max()) + 17, item.image.shape[0]), min(int(xs.max()) + 17, item.image.shape[1])
        window = (slice(y0, y1), slice(x0, x1))
        prob, dist = plugin.predict_maps(model, item.image[window])
        found = plugin.instances(prob, dist, chosen.get("probability", 0.5), chosen["seed_height"], 15)
        truth = np.where(np.isin(item.labels[window], item.val_ids), item.labels[window], 0)
        counted = np.unique(found[truth > 0])
        if background:
            inside = np.unique(found[item.val_mask[window] > 0])
            counted = np.union1d(counted, inside)
        found = np.where(np.isin(found, counted[counted > 0]), found, 0)
        rows.append(metrics.match(truth, found))
        with torch.no_grad():
            crop = [item.arrays[k][window] for k in ("image", "foreground", "distance", "weight")]
            weight = crop[3] * item.val_mask[window]
            pad = ((0, (-crop[0].shape[0]) % step), (0, (-crop[0].shape[1]) % step))
            tensors = [torch.from_numpy(np.pad(a, pad)[None].astype(np.float32)).to(dev) for a in crop[:3]]
            out = model(tensors[0][:, None])
            losses.append(float(masked_loss(out, tensors[1], tensors[2], _t(np.pad(weight, pad), dev))))
    matched = sum(r["f1"] * (r["true"] + r["predicted"]) / 2 for r in rows)
    total = sum(r["true"] + r["predicted"] for r in rows)
    return float(np.mean(losses)), (2 * matched / total if total else 1.0)


def _t(array: Any, dev: Any) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array[None], dtype=np.float32)).to(dev)


# -- the training loop ----------------------------------------------------------------------------------
@dataclass
class Limits:
    seconds: float
    steps: int
    patience: int = PATIENCE
    every: int = VALIDATE_EVERY


@dataclass
class History:
    step: list[int] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    best: int = 0  # index into the lists
    stopped: str = ""
    seconds: float = 0.0
    overtraining: str | None = None

    def better(self, index: int) -> bool:
        """Whether validation ``index`` beats the best so far: a higher F1, or the same F1 and a lower
        loss."""
        f1, loss = self.f1[index], self.validation[index]
        return f1 > self.f1[self.best] + 1e-9 or (
            abs(f1 - self.f1[self.best]) <= 1e-9 and loss < self.validation[self.best]
        )

    def judge(self) -> None:
        """Overtraining: the validation F1 fell below the best while the training loss kept falling."""
        best, last = self.best, len(self.f1) - 1
        if last <= best or self.f1[last] >= self.f1[best] - 1e-9:
            return
        later = self.train[best + 1 :]
        if best > 0 and later and min(later) < self.train[best]:
            self.overtraining = (
                f"overtraining: validation F1@0.5 fell from {self.f1[best]:.3f} (step {self.step[best]}) "
                f"to {self.f1[last]:.3f} (step {self.step[last]}) while the training loss kept falling "
                f"({self.train[best]:.4f} → {min(later):.4f}); the weights of step {self.step[best]} "
                "are kept"
            )


def train_loop(
    model: Any,
    next_batch: Callable[[], list[Any]],
    check: Callable[[Any], tuple[float, float]],
    limits: Limits,
    report: Callable[[History, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> History:
    """Fine-tune ``model`` in place and leave it holding the weights of its best validation.

    ``check(model)`` returns (validation loss, validation F1); it runs before the first step (the
    starting weights are a candidate too) and every ``limits.every`` steps, on the moving average of the
    trained weights (``AVERAGE``): steadier than the last step's."""
    import copy

    import torch

    dev = next(model.parameters()).device
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    warm = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min(1.0, (s + 1) / WARMUP))
    history, started = History(), time.monotonic()
    average = copy.deepcopy(model).eval()  # what is validated and kept: the average of the weights
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    first = next_batch()
    with torch.no_grad():
        model.eval()
        start_loss = float(masked_loss(model(_batch_tensor(first[0], dev)), *_targets(first, dev)))
    running: list[float] = [start_loss]
    since, step = 0, 0
    while True:
        loss, f1 = check(average)
        history.step.append(step)
        history.train.append(float(np.mean(running)) if running else history.train[-1])
        history.validation.append(loss)
        history.f1.append(f1)
        running = []
        last = len(history.step) - 1
        if last == 0 or history.better(last):
            history.best, since = last, 0
            best_state = {k: v.detach().clone() for k, v in average.state_dict().items()}
        else:
            since += 1
        history.seconds = time.monotonic() - started
        if report is not None:
            report(history, step)
        if cancel is not None and cancel.is_set():
            history.stopped = "cancelled"
        elif step >= limits.steps:
            history.stopped = f"step limit ({limits.steps} steps)"
        elif history.seconds >= limits.seconds:
            history.stopped = f"time limit ({limits.seconds / 60:.3g} min)"
        elif limits.patience and since >= limits.patience:
            history.stopped = f"early stopping: no better validation in {since} checks"
        if history.stopped:
            break
        for _ in range(min(limits.every, limits.steps - step)):
            model.train()
            for module in model.modules():  # the shipped normalisation statistics stay
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.eval()
            crops = first if first is not None else next_batch()
            first = None
            loss_value = masked_loss(model(_batch_tensor(crops[0], dev)), *_targets(crops, dev))
            optimiser.zero_grad()
            loss_value.backward()
            optimiser.step()
            warm.step()
            with torch.no_grad():
                for kept, trained in zip(average.parameters(), model.parameters(), strict=True):
                    kept.mul_(AVERAGE).add_(trained.detach(), alpha=1 - AVERAGE)
            running.append(float(loss_value.detach()))
            step += 1
            if time.monotonic() - started >= limits.seconds or (cancel is not None and cancel.is_set()):
                break
    model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.monotonic() - started
    history.judge()
    return history


def _batch_tensor(image: Any, dev: Any) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(image[:, None])).to(dev)


def _targets(crops: list[Any], dev: Any) -> list[Any]:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(a)).to(dev) for a in crops[1:]]


# -- the whole fine-tune --------------------------------------------------------------------------------
def finetune(
    plugin: Any,
    pairs: list[tuple[Any, Any, str]],
    background: bool,
    minutes: float,
    max_steps: int,
    seed: int = 0,
    report: Callable[[History, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Any, History, dict[str, Any]]:
    """Fine-tune a copy of the shipped model; returns it (best validation weights), the history and what
    the model card says about the data."""
    import copy

    import torch

    torch.manual_seed(seed)
    items, split_note = prepare(plugin, pairs, background, seed)
    base = plugin.load_model()
    model = copy.deepcopy(base)
    model.info = dict(base.info)
    model = model.to(memory_format=torch.contiguous_format)
    rng = np.random.default_rng(seed)
    size = crop_size(items, 2 ** len(model.ups))
    replay = replay_pool(plugin, seed) if REPLAY else None
    history = train_loop(
        model,
        lambda: batch(rng, items, size, background, replay),
        lambda m: validate(plugin, m, items, background),
        Limits(seconds=minutes * 60, steps=max_steps),
        report,
        cancel,
    )
    n_train = sum(len(item.train_ids) for item in items)
    data = {
        "images": [
            {
                "name": item.name,
                "shape": list(item.shape),
                "objects": len(item.train_ids) + len(item.val_ids),
                "validation_objects": len(item.val_ids),
                "scale": round(item.scale, 3),
            }
            for item in items
        ],
        "training_objects": n_train,
        "validation_objects": sum(len(item.val_ids) for item in items),
        "split": split_note,
        "crop": size,
        "epochs": round(history.step[-1] * (BATCH - round(BATCH * REPLAY)) / max(n_train, 1), 1),
    }
    return model, history, data


def weights_bytes(model: Any, info: dict[str, Any]) -> bytes:
    """The model as the plugin's weights files hold it: ``{"state", "info"}`` saved by torch."""
    import io
    import json

    import torch

    buffer = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"state": state, "info": json.dumps(info)}, buffer)
    return buffer.getvalue()


def fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"
