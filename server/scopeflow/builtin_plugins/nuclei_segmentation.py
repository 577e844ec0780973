"""Nuclei segmentation: instance labels of 2D fluorescence nuclei with a small U-Net.

`segment(image)` returns an int32 label image (0 = background, 1..n = nuclei) of the same shape, for images of
any size (processed in overlapping 512x512 tiles). Options: `diameter` (typical nucleus diameter in pixels:
the image is rescaled so that nuclei have the size the model was trained on; 0: measured in a first pass,
and the image rescaled when they are more than 1.25 times off that size), `probability` (foreground
threshold; 0: the model's own, 0.6), `seed_height` (how far a peak of the distance map must rise to
make its own nucleus; 0: the model's own, 0.3; lower it for crowded samples), `min_area`. When the image
is unlike the training data the label image still comes back, and the app gets
`api.showMessage("⚠ nuclei-segmentation: <reason>")` (the log records it too); `assess(image)` returns
the same checks as data for scripts:
`{"statistics": {...}, "trained": {...}, "warnings": [...]}`.

## Model card

**Architecture.** A U-Net (three poolings, 16-32-64-128 channels, batch normalisation, 0.48 M parameters,
2.0 MB of weights) with two outputs per pixel: the probability of being inside a nucleus, and the distance
to the nucleus' own edge divided by its largest value (1 at the centre, 0 at the edge). Why: a foreground
map alone merges touching nuclei; the normalised distance map has one peak per nucleus whatever its size
and a valley where two nuclei touch. Seeds are the peaks that rise at least a "seed height" above the
saddle to a higher neighbour (h-maxima), and a watershed of the distance inside the foreground returns each
nucleus' full extent (the idea behind distance-map methods such as StarDist's, with a far simpler decoder).
Large images go through in 512x512 tiles that overlap by 32 px. A first pass on the central 512x512 crop (the
whole image if that crop holds fewer than 20 nuclei) measures the median nucleus diameter; an image whose
nuclei are more than 1.25 times larger or smaller than the trained median (15 px) is segmented rescaled to
it (as Cellpose does with its diameter), so the network always sees nuclei of the size it learnt. Test-time
flips (averaging the maps of the image mirrored three ways) are off: on the samples they cost four times the
time for no better F1. The U-Net's multi-scale context sees a whole nucleus, and it is small enough to
train on a CPU.

**Training data and procedure.** `nuclei_segmentation/train.py --cpu` beside this file (seeded, deterministic
kernels, 2 threads; 26 minutes on two CPU cores; CUDA used when present): 4000 steps of AdamW (one-cycle
learning rate up to 3e-3), batches of 8 random 96x96 crops, half of them synthetic, half real.
- *Synthetic* (`synthetic.py`, 1000 images of 128x128, seed 1): nuclei as bent ellipses of random size,
  brightness, texture and nucleoli; touching pairs and clusters; blur, uneven background, Poisson and
  Gaussian noise.
- *Real*: the 30 images (2386 nuclei, hand-drawn masks) of the `training-data` split of the `mnfinder` 1.2.3
  wheel on PyPI (MIT licence, see `nuclei_segmentation/DATA-LICENCES.md`; `train.py` downloads the wheel
  once and checks its sha256; nothing of it ships here): DAPI and H2B fluorescence of RPE-1 and U2OS cells
  and a few other fields, each rescaled so that its median nucleus is 12, 18 and 26 px across.
Inputs are normalised by their 1st and 99.8th percentiles; augmentation by flips, rotations, exposure and
offset jitter. Loss: binary cross entropy on the foreground plus the squared error of the distance map, both
weighted 5x within 2 px of where two nuclei meet. The foreground threshold (0.6) and seed height (0.3) are
chosen on validation images only: the grid 0.4-0.6 x 0.05-0.6, scored by the mean of the pooled F1@0.5 on
48 synthetic images and on the 3 images (234 nuclei) of mnfinder's `validation-data` split (0.845 and 0.912;
`train.py --retune WEIGHTS` makes this choice again for trained weights, the network unchanged).

**Overtraining check.** Training loss and the loss of the two validation sets, never trained on (the curves
are stored with the weights, `model.info["curves"]`):

| step | 500 | 1000 | 2000 | 3000 | 4000 |
|---|---|---|---|---|---|
| train loss | 0.245 | 0.189 | 0.172 | 0.153 | 0.147 |
| validation loss, synthetic | 0.388 | 0.356 | 0.294 | 0.272 | 0.266 |
| validation loss, real (mnfinder) | 0.113 | 0.043 | 0.058 | 0.033 | 0.033 |

The synthetic validation loss falls to the end; the real one is flat from step 1000 on and does not rise:
no overtraining at this length. Runs not kept, none better on validation (synthetic / mnfinder validation):
6000 steps with the `test-data` split and gamma, blur and noise augmentation added (0.851 / 0.913); the
shipped recipe with that augmentation (0.822 / 0.912); another seed (0.771 / 0.905); and the average of two
of these networks (0.844 / 0.901, where the shipped one scores 0.848 / 0.896 in the same evaluation):
more of the same data no longer helps. Nor does a StarDist-like decoder: the shipped recipe with 32 ray
distances per pixel as a third output, and star-convex polygons kept by non-maximum suppression, separates
the crowded synthetic nuclei better (0.876 against 0.845) but outlines the real ones more coarsely (matched
IoU 0.82 against 0.85-0.91 for the watershed on the same maps): 0.868 on mnfinder validation against 0.912,
0.853 on its `test-data` split against 0.868. Seeding the watershed with the polygons (0.862 / 0.881) and
the same network's own watershed (0.861 / 0.908) are no better than the shipped one either. Nor are crowded
fields of real nuclei or dimmed crops (`train.py --collage-fraction`, `--dim`): collages of mnfinder's
nuclei set against each other (copy-paste augmentation, `collage.py`) as 3 of every 8 crops, with a third
of the crops 1.4-4 times dimmer, score 0.806 / 0.911 (and 0.968 on 48 collages of the validation nuclei,
where the shipped network scores 0.952); dimmed crops alone 0.819 / 0.907 (0.960). Both hold up better
when the nuclei sit low in the normalised range (every validation image 0.35 times as bright: 0.798 and
0.788 on the synthetic images, 0.929 and 0.922 on mnfinder's, against 0.751 and 0.904 for the shipped
network), but lose separation of the synthetic clusters at normal brightness, so they were not kept;
neither was run on the test image. Real crowded fields are no harder for the network than mnfinder's own
images: what it lacks is real crowded nuclei from other microscopes to learn from.

**Measured accuracy** (`bench/quality.py --only segmentation`, through the hub, defaults): the real DSB2018
fluorescence image shipped with StarDist (sample `nuclei-2d`, 512x512, 125 hand-labelled nuclei; another
lab and microscope; never used in training, validation or any choice), F1 at IoU 0.5 and the mean IoU of
matched nuclei:

| nuclei-2d, 125 nuclei | F1@0.5 | precision | recall | mean matched IoU |
|---|---|---|---|---|
| Otsu + watershed (defaults) | 0.714 | 0.741 | 0.688 | 0.770 |
| 0.2.0, synthetic nuclei only | 0.822 | 0.812 | 0.832 | 0.715 |
| nuclei-segmentation 0.3.0 to 0.3.3 (same network, with test-time flips) | 0.833 | 0.870 | 0.800 | 0.804 |
| **nuclei-segmentation 0.3.4** (same network, no flips) | **0.837** | 0.877 | 0.800 | 0.798 |

Below the goal of 0.90 (the level of StarDist and Cellpose, trained on thousands of real nuclei, DSB2018's
among them). Outlines are now close (matched IoU 0.80, Otsu 0.77); the errors left are nuclei missed or
merged in crowded clumps and a few split. On two CPU cores the 512x512 image takes 0.27 s in the kernel, and
a 1024x1024 one (the sample tiled 2x2, rescaled by 0.59) 0.61 s (0.3.3: 4.7 s, with flips and a full first
pass).

**Transfer test.** Trained on synthetic nuclei and on one lab's RPE-1 and U2OS images, tested on images of
other kinds: the DSB2018 image above; the 15 images (523 nuclei) of mnfinder's `test-data` split (HFF, HeLa,
MCC13 and U2OS cells, other stains and magnifications; a test image identical to a training image is left
out): pooled F1@0.5 0.866 (matched IoU 0.899) against 0.724 (0.838) for Otsu + watershed; and every plane of
the StarDist 3D stack (sample `nuclei-3d`: small (about 11 px), dense nuclei, planes cut through 3D nuclei):
0.723 against 0.749 for Otsu + watershed.

**Known limitations.**
- Nuclei far from the trained sizes (about 5-35 px across) are rescaled; beyond the rescaling limits give
  `diameter`, and the warning says when the found sizes are outside the trained range.
- Small, dim, dense or out-of-focus nuclei (the 3D planes) are where Otsu + watershed still does as well.
- Separation is a trade-off that `seed_height` sets. On crowded nuclei (the synthetic validation images,
  nuclei-2d) a low one is needed: 0.3. On mnfinder's textured, mostly separate nuclei a higher one avoids
  splitting them: with 0.5 (and probability 0.5) its `test-data` split scores 0.905 instead of 0.866, but
  the synthetic images fall to 0.70 and nuclei-2d to 0.758 (recall 0.69). Raise it if nuclei come out cut in
  pieces, lower it if touching nuclei come out as one.
- The real training masks leave out micronuclei and debris: small bright blobs beside a nucleus are often
  not labelled. Mitotic figures and very irregular nuclei are rare in training; check the overlay.
- One channel, 2D (`yx`); for a stack segment plane by plane (no 3D consistency).
- Fields whose nuclei are far dimmer than a few very bright ones (mitotic figures set the normalisation)
  lose recall: on validation images made 0.35 times as bright, F1 falls from 0.845 to 0.751 (synthetic).

**Fine-tuning on your images** (0.4.0). `finetune(image, labels, name)` trains this network further on label
images painted in the viewer (0 unlabelled) within a time limit, holding some whole objects out for
validation and keeping the weights of the best validation F1@0.5; the hub installs the result as a new
plugin, `nuclei-segmentation-NAME` version `0.4.0+ft.<weights sha256>`, whose own model card says what it
was trained on and how it did (`nuclei_segmentation/finetune.py`; `cancel_finetune()` stops a run). With
20 nuclei of the left third of `nuclei-2d` painted, the untouched rest scores F1@0.5 0.937 (mean of three
seeds, 0.921-0.948; this network 0.892) after at most 2 minutes on two CPU cores (`bench/finetune.py`).

**Training on more data.** `train.py --real-dir DIR` adds any folder of labelled images (`images/NAME.tif`
beside `masks/NAME.tif` or `.png`, one integer per nucleus), such as BBBC039 or the DSB2018 training images
(both CC0); an image holding the test image (`nuclei-2d`, turned, rescaled in intensity or inside a larger
field) is left out.
"""

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from scopeflow import Image, api, op

PLUGIN = {
    "id": "nuclei-segmentation",
    "name": "Nuclei segmentation",
    "version": "0.4.0",
    "description": "Instance segmentation of 2D fluorescence nuclei (U-Net on foreground + distance maps).",
    "requirements": ["torch", "numpy", "scipy", "scikit-image"],
    "tags": ["segmentation", "deep learning", "nuclei"],
    "tests": [
        {
            "name": "nuclei-2d (DSB2018, never trained on) against its 125 hand-drawn nuclei (F1 0.837)",
            "op": "segment",
            "inputs": {"image": {"sample": "nuclei-2d"}},
            "expected": {"result": {"sample": "nuclei-2d-labels"}},
            "min_f1": 0.82,
        }
    ],
}

FOLDER = Path(__file__).resolve().parent / "nuclei_segmentation"
WEIGHTS = FOLDER / "weights.pt"
TILE, MARGIN = 512, 32  # an image up to TILE a side is one tile
MEASURE, MEASURE_ENOUGH = 512, 20  # nuclei are measured on a central crop when it holds this many
MIN_SCALE, MAX_SCALE = 0.1, 4.0
RESCALE_BEYOND = 1.25  # nuclei this many times larger or smaller than trained on are seen rescaled
_MODEL: dict[str, Any] = {}
_MODULES: dict[str, Any] = {}


@op(
    title="Segment nuclei",
    inputs={
        "diameter": {
            "minimum": 0,
            "maximum": 1000,
            "description": "typical nucleus diameter in pixels; 0: measure it",
        },
        "probability": {
            "minimum": 0,
            "maximum": 0.95,
            "description": "foreground threshold; 0: the model's own (chosen on validation images)",
        },
        "seed_height": {
            "minimum": 0,
            "maximum": 1,
            "description": "how far a peak of the distance map must rise to be a nucleus of its own: "
            "lower splits touching nuclei more readily (crowded samples), higher merges more (textured "
            "nuclei); 0: the model's own",
        },
        "min_area": {"minimum": 0, "description": "objects smaller than this are dropped (px²)"},
    },
)
def segment(
    image: Image["yx"],
    diameter: float = 0.0,
    probability: float = 0.0,
    seed_height: float = 0.0,
    min_area: int = 15,
) -> Image["yx"]:
    """Label every nucleus (int32, same shape); the app is warned if the image is unlike the training data."""
    data = check_image(image)
    for name, value, high in (("probability", probability, 0.95), ("seed_height", seed_height, 1.0)):
        if not 0 <= value <= high:
            raise ValueError(f"{name} must be between 0 (the model's own) and {high}, got {value}")
    labels, scale = run(data, diameter, probability, min_area, seed_height)
    for warning in local("checks").warnings_for(sys.modules[__name__], data, labels, scale):
        notify("showMessage", "⚠ nuclei-segmentation: " + warning)
        notify("log", "warning: " + warning)
    return labels


@op(title="Check an image against the training data")
def assess(image: Image["yx"], diameter: float = 0.0) -> dict:
    """Statistics of the image and of its segmentation beside the trained ranges, and the warnings."""
    data = check_image(image)
    labels, scale = run(data, diameter=diameter)
    checks, plugin = local("checks"), sys.modules[__name__]
    return {
        "statistics": checks.statistics(plugin, data, labels, scale),
        "trained": model_info()["trained"],
        "warnings": checks.warnings_for(plugin, data, labels, scale),
    }


@op(
    title="Fine-tune on your annotations",
    inputs={
        "labels": "its label image (0 unlabelled, 1..n one object each), e.g. painted in the viewer",
        "name": "name of the new version (lower-case letters, digits, '-'): plugin nuclei-segmentation-NAME",
        "minutes": {"minimum": 0.1, "maximum": 120, "description": "time limit of the training"},
        "unlabelled_is_background": "every unlabelled pixel is background (else only near annotated objects)",
        "max_steps": {"minimum": 1, "maximum": 100000, "description": "step limit of the training"},
        "image_2": "a second annotated image (optional)",
        "image_3": "a third annotated image (optional; scripts may pass lists as image and labels)",
        "image_names": "the images' names for the model card, comma-separated (optional)",
    },
)
def finetune(
    image: Image["yx"],
    labels: Image["yx"],
    name: str,
    minutes: float = 2.0,
    unlabelled_is_background: bool = False,
    max_steps: int = 2000,
    image_2: Image["yx"] | None = None,
    labels_2: Image["yx"] | None = None,
    image_3: Image["yx"] | None = None,
    labels_3: Image["yx"] | None = None,
    image_names: str = "",
    seed: int = 0,
) -> dict:
    """Train the network further on annotated images; the result is a new plugin version (pinnable by its
    sha256). Returns validation F1@0.5 before and after, steps, why it stopped and the new version."""
    pairs = [(image, labels), (image_2, labels_2), (image_3, labels_3)]
    training, runner = local("finetune"), local("finetune_run")
    return runner.run(
        sys.modules[__name__],
        training,
        runner.pairs(pairs, image_names),
        name,
        minutes,
        unlabelled_is_background,
        max_steps,
        seed,
        api.call_hub,
    )


@op(title="Labels from an exported package's maps")
def labels_from_maps(
    maps: Image["cyx"], probability: float = 0.0, seed_height: float = 0.0, min_area: int = 15
) -> Image["yx"]:
    """Nuclei from the two maps the bioimage.io package of this network predicts (`scopeflow export-model`;
    channel 0 the foreground logit, channel 1 the distance): the seeded watershed `segment` ends with."""
    import numpy as np

    data = np.asarray(maps, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] != 2:
        raise ValueError(
            f"maps must be 2 x height x width (foreground logit, distance), got {list(data.shape)}"
        )
    chosen = load_model().info["postprocessing"]
    probability = probability or chosen.get("probability", 0.5)
    foreground = 1 / (1 + np.exp(-data[0]))
    return instances(foreground, data[1], probability, seed_height or chosen["seed_height"], min_area)


@op(title="Cancel the running fine-tune")
def cancel_finetune() -> str:
    """Stop the fine-tune running in this plugin (no version is made)."""
    return local("finetune_run").cancel()


def local(name: str) -> Any:
    """The module ``nuclei_segmentation/<name>.py`` beside this file, loaded once per process."""
    import importlib.util

    if name not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"scopeflow_nuclei_{name}", FOLDER / f"{name}.py")
        assert spec is not None and spec.loader is not None
        _MODULES[name] = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_MODULES[name])
    return _MODULES[name]


def use_weights(path: Path, sha256: str) -> None:
    """Segment with these weights from now on (a fine-tuned version): refused unless their sha256 is the one
    its plugin file names."""
    global WEIGHTS
    if Path(path) != WEIGHTS:
        WEIGHTS = local("finetune_run").checked(Path(path), sha256)


# -- checks and normalisation ---------------------------------------------------------------------------
def check_image(image: Any) -> Any:
    """The image as float32 2D; a clear ValueError for anything else."""
    import numpy as np

    data = np.asarray(image)
    if data.dtype == object or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"nuclei-segmentation needs a numeric image, got dtype {data.dtype}")
    if data.size == 0:
        raise ValueError("nuclei-segmentation got an empty image")
    if data.ndim > 2 and sum(s > 1 for s in data.shape) == 2:
        data = data.reshape([s for s in data.shape if s > 1])
    if data.ndim != 2:
        raise ValueError(f"nuclei-segmentation needs a 2D image (yx), got shape {tuple(np.shape(image))}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("the image contains NaN or infinite values")
    return data


def normalise(data: Any) -> Any:
    """Percentile normalisation: 1st percentile → 0, 99.8th → 1 (robust to hot pixels and exposure)."""
    import numpy as np

    low, high = np.percentile(data, [1, 99.8])
    return ((data - low) / max(float(high - low), 1e-6)).astype(np.float32)


# -- network --------------------------------------------------------------------------------------------
def build_model(channels: int = 16, depth: int = 3) -> Any:
    """U-Net, ``depth`` poolings; 2 outputs: foreground logit, normalised distance to the object's edge
    (``nuclei_segmentation/unet.py``, the file an exported bioimage.io package ships too)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("scopeflow_nuclei_unet", FOLDER / "unet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.UNet(channels=channels, depth=depth)


def device() -> Any:
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return torch.device("cpu")


def load_model(path: Path | None = None) -> Any:
    """The trained model (cached per process), with its training record as ``model.info``."""
    import torch

    path = path or WEIGHTS
    key = str(path)
    if key not in _MODEL:
        if not path.exists():
            raise RuntimeError(f"no weights at {path}: run {path.parent / 'train.py'}")
        saved = torch.load(path, map_location="cpu", weights_only=True)
        info = json.loads(saved["info"])
        model = build_model(**info["architecture"])
        model.load_state_dict(saved["state"])
        model.info = info  # type: ignore[assignment]
        _MODEL[key] = model.to(device(), memory_format=torch.channels_last).eval()
    return _MODEL[key]


def model_info() -> dict[str, Any]:
    return dict(load_model().info)


# -- inference ------------------------------------------------------------------------------------------
def predict_maps(model: Any, norm: Any, flips: bool = False) -> tuple[Any, Any]:
    """Foreground probability and distance maps of a normalised image, in tiles of up to TILE pixels a side
    that overlap by MARGIN (an image that fits is one tile: no pixel is computed twice).

    With ``flips`` each tile is also seen mirrored (left-right, up-down, both) and the four outputs are
    averaged. Off by default: on the samples it cost four times the time for no better F1 (0.837 without,
    0.833 with on nuclei-2d; 0.730 and 0.723 on the 3D planes).
    """
    import numpy as np
    import torch

    dev = next(model.parameters()).device
    height, width = norm.shape
    step = 2 ** (len(model.ups))
    prob = np.zeros((height, width), dtype=np.float32)
    dist = np.zeros((height, width), dtype=np.float32)
    inner_y = height if height <= TILE else TILE - 2 * MARGIN
    inner_x = width if width <= TILE else TILE - 2 * MARGIN
    for y0 in range(0, height, inner_y):
        for x0 in range(0, width, inner_x):
            ya, xa = max(y0 - MARGIN, 0), max(x0 - MARGIN, 0)
            yb, xb = min(y0 + inner_y + MARGIN, height), min(x0 + inner_x + MARGIN, width)
            tile = norm[ya:yb, xa:xb]
            pad = ((0, (-tile.shape[0]) % step), (0, (-tile.shape[1]) % step))
            tile = np.pad(tile, pad, mode="reflect" if min(tile.shape) > 1 else "edge")
            out = np.zeros((2, *tile.shape), dtype=np.float32)
            axes_list: list[tuple[int, ...]] = [(), (-1,), (-2,), (-2, -1)] if flips else [()]
            for axes in axes_list:
                seen = torch.from_numpy(np.ascontiguousarray(np.flip(tile, axes)[None, None])).to(dev)
                seen = seen.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    found = model(seen)[0].float().cpu().numpy()
                out += np.flip(found, axes) / len(axes_list)
            ye, xe = min(y0 + inner_y, height), min(x0 + inner_x, width)
            prob[y0:ye, x0:xe] = 1 / (1 + np.exp(-out[0][y0 - ya : ye - ya, x0 - xa : xe - xa]))
            dist[y0:ye, x0:xe] = out[1][y0 - ya : ye - ya, x0 - xa : xe - xa]
    return prob, dist


def instances(
    prob: Any, dist: Any, probability: float = 0.5, seed_height: float = 0.1, min_area: int = 15
) -> Any:
    """Labels from the maps: one seed per peak of the distance map, grown by watershed in the foreground.

    A peak is a seed if it rises at least ``seed_height`` above the saddle that joins it to a higher peak
    (h-maxima): two touching nuclei give two peaks with a valley between them whatever their size, while
    the small ripples of one nucleus' map do not make two.
    """
    import numpy as np
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    foreground = prob > probability
    height = np.where(foreground, dist, 0).astype(np.float64)
    seeds, _ = ndimage.label(h_maxima(height, seed_height) & foreground)
    labels = watershed(-height, seeds, mask=foreground)
    sizes = np.bincount(labels.ravel())
    small = sizes < max(int(min_area), 1)
    small[0] = False
    labels[small[labels]] = 0
    out, _, _ = relabel(labels)
    return out.astype(np.int32)


def relabel(labels: Any) -> tuple[Any, Any, Any]:
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)


def run(
    data: Any, diameter: float = 0.0, probability: float = 0.0, min_area: int = 15, seed_height: float = 0.0
) -> tuple[Any, float]:
    """Segment a checked 2D float32 image; returns the labels and the scale the model saw the image at.

    With ``diameter`` given, the image is rescaled so that nuclei have the trained median diameter. With 0, a
    first pass at the image's own scale measures the nuclei; if their median is more than ``RESCALE_BEYOND``
    times off the trained median, the image is segmented again, rescaled to it.
    """

    model = load_model()
    norm = normalise(data)
    trained = model.info["trained"]
    target = trained["diameter_median"]
    if diameter and diameter > 0:
        scale = target / diameter
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise ValueError(
                f"diameter {diameter} is too far from the {target:.0f} px the model was trained on "
                f"(rescaling by {scale:.3g}, the limits are {MIN_SCALE}-{MAX_SCALE})"
            )
        return at_scale(model, norm, scale, probability, min_area, seed_height), scale
    # the nuclei are measured on the central MEASURE x MEASURE crop (a global property: a crop with enough
    # nuclei tells it as well as the whole image, at a fraction of the time); a crop with too few, or an
    # image no larger than the crop, is measured whole, and its labels kept when no rescaling is needed
    crop = _central(norm, MEASURE)
    labels = at_scale(model, crop, 1.0, probability, min_area, seed_height)
    if crop.shape != norm.shape and int(labels.max()) < MEASURE_ENOUGH:
        crop = norm
        labels = at_scale(model, norm, 1.0, probability, min_area, seed_height)
    scale = scale_for(model, labels)
    if scale == 1.0 and crop.shape == norm.shape:
        return labels, 1.0
    if scale == 1.0:
        return at_scale(model, norm, 1.0, probability, min_area, seed_height), 1.0
    notify(
        "log", f"nuclei of about {median_diameter(labels):.0f} px: segmenting again, rescaled by {scale:.2f}"
    )
    return at_scale(model, norm, scale, probability, min_area, seed_height), scale


def _central(image: Any, size: int) -> Any:
    top, left = max((image.shape[0] - size) // 2, 0), max((image.shape[1] - size) // 2, 0)
    return image[top : top + size, left : left + size]


def scale_for(model: Any, labels: Any) -> float:
    """The factor that brings the nuclei found at an image's own scale to the median diameter the model was
    trained on; 1 when they are within ``RESCALE_BEYOND`` of it already (or none was found)."""
    import numpy as np

    found = median_diameter(labels)
    if found == 0:
        return 1.0
    scale = float(np.clip(model.info["trained"]["diameter_median"] / found, MIN_SCALE, MAX_SCALE))
    return 1.0 if 1 / RESCALE_BEYOND <= scale <= RESCALE_BEYOND else scale


def at_scale(
    model: Any, norm: Any, scale: float, probability: float, min_area: int, seed_height: float = 0.0
) -> Any:
    """Labels of a normalised image seen at ``scale`` (resized, segmented, labels resized back);
    ``probability`` and ``seed_height`` 0 take the model's own."""
    import numpy as np
    from skimage.transform import resize

    image = norm
    if scale != 1.0:
        shape = tuple(max(round(s * scale), 8) for s in norm.shape)
        image = resize(norm, shape, order=1, preserve_range=True, anti_aliasing=scale < 1).astype(np.float32)
    prob, dist = predict_maps(model, image)
    chosen = model.info["postprocessing"]
    probability = probability or chosen.get("probability", 0.5)
    seed_height = seed_height or chosen["seed_height"]
    labels = instances(prob, dist, probability, seed_height, max(int(min_area * scale * scale), 1))
    if labels.shape != norm.shape:
        labels = resize(labels, norm.shape, order=0, preserve_range=True, anti_aliasing=False)
        labels = relabel(labels.astype(np.int32))[0].astype(np.int32)
    return labels


def median_diameter(labels: Any) -> float:
    """Median equivalent diameter (of a disc of the same area) of the labelled objects, in pixels."""
    import numpy as np

    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(2 * np.sqrt(areas / math.pi))) if len(areas) else 0.0


def notify(name: str, *args: Any) -> None:
    """Call ``api.<name>(*args)`` without waiting; nothing happens outside a plugin kernel."""
    with contextlib.suppress(RuntimeError):  # outside a kernel (a script or a test importing the module)
        getattr(api, name)(*args)
