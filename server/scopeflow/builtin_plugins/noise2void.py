"""Noise2Void: self-supervised denoising trained on your own noisy image.

No clean image and no pretrained weights: a small network learns, on the image itself, to predict each pixel
from its neighbours only (a *blind spot*). Noise that is independent from pixel to pixel cannot be predicted
from the neighbours, the signal can: the prediction is a denoised image. Training takes about 40 s for a
256x256 image on two CPU cores (less on a GPU); the app shows its progress and a live loss curve.

Options: `iterations` (training steps, default 400: more is slower and a little better), `batch_size`,
`patience` (early stopping), `ensemble` (8 flips/rotations), `fuse_pixel`, `seed` (same seed, same result).

The app gets `api.showProgress(percent)` and, every 25 steps, the loss curve as
`api.createWindow({"type": "scopeflow/plot", "name": "noise2void loss", "data": {"title", "x", "xlabel",
"ylabel", "series": {"train": [...], "held-out": [...]}}})`: a window of the same name replaces the last one.

## Model card

**Architecture.** A residual U-Net: three poolings, 16-32-64-128 channels, 3x3 convolutions with group
normalisation, 0.48 M parameters, output = input + a learnt correction. Why: a blind-spot denoiser must
predict a pixel from its surroundings, and the U-Net's multi-scale context reaches ~40 pixels, more than a
nucleus, at a small cost; the residual form starts from the identity. Small on purpose: it is trained from
scratch on one image, on a CPU, in a minute.

**Training** (on the input image only, at every call). The image is standardised (mean, standard deviation).
Each step takes 16 patches of 64x64 pixels with random flips and 90-degree rotations: half drawn uniformly,
half where the image has structure (weighted by local variance), so that empty background does not dominate
(*mixed patch sampling*). In every patch one pixel per 4x4 cell (6 %) is a blind spot (*stratified
masking*): its value is replaced by a random other pixel of its 5x5 neighbourhood and the loss is the squared
error of the prediction there. Adam, learning rate 1e-3 with cosine decay.

**Overtraining check.** 5 % of the pixels, chosen at random, are *held out*: they are never a training
target. Every 25 steps the network predicts them as blind spots, and the held-out loss is plotted beside the
training loss. The weights with the lowest held-out loss are kept, and training stops after `patience` steps
without improvement (*early stopping*). For pixel-wise independent noise the held-out loss is the error
against the unknown clean image plus the noise variance, so its minimum marks the best denoiser seen.

**Prediction.** The average of the network over the 8 flips and rotations of the image (*ensembling*: +1 dB
in a development run on the crop below). `fuse_pixel` (off by default) fuses the noisy pixel back in
(Bayesian, noise level from Immerkaer's estimate); it cost 0.5 dB in that run, as the image is mostly flat.

**Measured accuracy** (`bench/quality.py`): the real DSB2018 nuclei image (sample `nuclei-2d`, scaled to
[0, 1]) with Gaussian noise of sigma 0.15 added; Gaussian blur and non-local means at their *best* setting
on a grid (chosen with the ground truth, so an upper bound for them); noise2void with its defaults.

| sigma = 0.15 | noisy | Gaussian (best sigma) | NL-means (best h) | **noise2void** |
|---|---|---|---|---|
| 256x256 crop: PSNR (dB) | 16.53 | 31.35 | 31.31 | **31.46** |
| 256x256 crop: SSIM | 0.102 | 0.689 | 0.688 | 0.678 |
| 512x512 whole image: PSNR (dB) | 16.47 | 30.15 | 30.67 | **31.10** |
| 512x512 whole image: SSIM | 0.116 | 0.680 | 0.692 | 0.691 |

noise2void beats the best classical filter in PSNR (+0.11 dB on the crop, +0.42 dB on the whole image) and
ties it in SSIM: this image is mostly flat background and smooth nuclei, where a well-tuned blur is already
close to ideal; the gain is that noise2void needs no tuning against a ground truth that users do not have.
The figures in the table were taken with 400 iterations, the default. Timing on two cores otherwise idle
(`bench/speed.py`; the crop above, noise seed 2024, where the best Gaussian reaches 31.35 dB), noise2void
seeds 0 and 1: 250 iterations 26 s and 31.34 / 31.50 dB (seed 0 a hair below the Gaussian); **400
iterations 41 s and 31.46 / 31.60 dB**; 550 iterations 57 s and 31.52 / 31.58 dB. With the cores shared by
other runs it takes several times longer.

**Transfer.** Nothing to transfer: the network is trained anew on every input, so it adapts to each
microscope and sample; the price is the training time at every call.

**Known limitations and artifacts.**
- Noise that is correlated between neighbouring pixels (camera stripes, scan lines, JPEG artifacts,
  up-sampled or deconvolved images) is learnt as signal and kept.
- Structures of one or two pixels that do not repeat elsewhere can be blurred away, and flat regions can
  get a faint invented texture: compare with the raw image before you trust a detail near the noise level.
- The output is a prediction, not a measurement: measure intensities on the raw image.
- Single-channel 2D images (`yx`); denoise stacks and time-lapses plane by plane.
"""

import contextlib
import math
import time
from typing import Any

from scopeflow import Image, api, op

PLUGIN = {
    "id": "noise2void",
    "name": "Noise2Void denoising",
    "version": "0.2.0",
    "description": "Self-supervised denoising trained on the input image itself (blind-spot U-Net).",
    "requirements": ["torch", "numpy", "scipy"],
    "tags": ["denoising", "deep learning", "self-supervised"],
    "tests": [
        {
            "name": "a noisy field of nuclei (16.7 dB), a short training, comes back at least 4 dB cleaner",
            "op": "denoise",
            "inputs": {"image": {"file": "verify/noisy.npy"}, "iterations": 120, "patience": 60},
            "expected": {"result": {"file": "verify/clean.npy"}},
            "min_psnr": 20.7,
        }
    ],
}

PATCH = 64
CELL = 4  # one blind spot per CELLxCELL pixels
HELD_OUT = 0.05
VALIDATE_EVERY = 25
DEPTH = 3
MULTIPLE = 2**DEPTH


@op(
    title="Noise2Void denoising",
    inputs={
        "iterations": {
            "minimum": 10,
            "maximum": 20000,
            "description": "training steps (more: slower, better)",
        },
        "batch_size": {"minimum": 1, "maximum": 128, "description": "patches per training step"},
        "patience": {
            "minimum": 0,
            "maximum": 10000,
            "description": "stop after this many steps without a better held-out loss (0: never)",
        },
        "ensemble": {"description": "average the 8 flips and rotations of the prediction"},
        "fuse_pixel": {"description": "fuse the noisy pixel back in (Bayesian), for pixel-wise noise"},
        "seed": {"minimum": 0, "description": "random seed: the same seed gives the same result"},
    },
)
def denoise(
    image: Image["yx"],
    iterations: int = 400,
    batch_size: int = 16,
    patience: int = 150,
    ensemble: bool = True,
    fuse_pixel: bool = False,
    seed: int = 0,
) -> Image["yx"]:
    """Train a blind-spot U-Net on `image` itself and return the denoised image (float32, same shape)."""
    import numpy as np

    data = check_image(image)
    model, history = train(data, iterations, batch_size, patience, seed, report=Reporter())
    result = predict(model, data, ensemble=ensemble, fuse_pixel=fuse_pixel)
    notify("log", f"noise2void: best held-out loss {min(history['held-out']):.4f} at step {history['best']}")
    return np.asarray(result, dtype=np.float32)


# -- checks ---------------------------------------------------------------------------------------------
def check_image(image: Any) -> Any:
    """The image as float32 2D; a clear ValueError for anything else."""
    import numpy as np

    data = np.asarray(image)
    if data.dtype == object or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"noise2void needs a numeric image, got dtype {data.dtype}")
    if data.size == 0:
        raise ValueError("noise2void got an empty image")
    data = np.squeeze(data) if data.ndim > 2 else data
    if data.ndim != 2:
        raise ValueError(f"noise2void needs a 2D image (yx), got shape {tuple(np.shape(image))}")
    if min(data.shape) < 16:
        raise ValueError(f"noise2void needs an image of at least 16x16 pixels, got {data.shape}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError("the image contains NaN or infinite values")
    return data


# -- network --------------------------------------------------------------------------------------------
def build_model(channels: int = 16, depth: int = DEPTH) -> Any:
    """Residual U-Net: ``depth`` poolings, output = input + a learnt correction."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(4, cout),
            nn.LeakyReLU(0.1),
            nn.Conv2d(cout, cout, 3, padding=1),
            nn.GroupNorm(4, cout),
            nn.LeakyReLU(0.1),
        )

    class ResidualUNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [channels * 2**i for i in range(depth + 1)]
            self.down = nn.ModuleList([block(1, widths[0])])
            self.down.extend(block(widths[i], widths[i + 1]) for i in range(depth))
            self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in range(depth))
            self.dec = nn.ModuleList(block(2 * widths[i], widths[i]) for i in range(depth))
            self.out = nn.Conv2d(widths[0], 1, 1)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips = [self.down[0](x)]
            for layer in self.down[1:]:
                skips.append(layer(nn.functional.max_pool2d(skips[-1], 2)))
            y = skips.pop()
            for i in reversed(range(len(self.ups))):
                y = self.dec[i](torch.cat([self.ups[i](y), skips[i]], 1))
            return x + self.out(y)

    return ResidualUNet()


def device() -> Any:
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return torch.device("cpu")


# -- masking and sampling -------------------------------------------------------------------------------
def blind_spots(rng: Any, batch: int, height: int, width: int) -> Any:
    """Boolean masks, one random pixel per CELLxCELL cell of each patch."""
    import numpy as np

    mask = np.zeros((batch, height, width), dtype=bool)
    cy, cx = np.meshgrid(np.arange(0, height, CELL), np.arange(0, width, CELL), indexing="ij")
    for b in range(batch):
        ys = np.minimum(cy + rng.integers(0, CELL, cy.shape), height - 1)
        xs = np.minimum(cx + rng.integers(0, CELL, cx.shape), width - 1)
        mask[b, ys, xs] = True
    return mask


def mask_input(rng: Any, patches: Any, mask: Any) -> Any:
    """Replace every masked pixel by a random other pixel of its 5x5 neighbourhood."""
    import numpy as np

    out = patches.copy()
    b, y, x = np.nonzero(mask)
    offsets = np.array([(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)])
    pick = offsets[rng.integers(0, len(offsets), len(b))]
    yy = np.clip(y + pick[:, 0], 0, patches.shape[1] - 1)
    xx = np.clip(x + pick[:, 1], 0, patches.shape[2] - 1)
    out[b, y, x] = patches[b, yy, xx]
    return out


def structure_weights(data: Any, size: int) -> Any:
    """Probability of each patch corner, proportional to the local variance of the patch it starts."""
    import numpy as np
    from scipy.ndimage import uniform_filter

    var = uniform_filter(data * data, size) - uniform_filter(data, size) ** 2
    half = size // 2
    corners = var[half : data.shape[0] - size + half + 1, half : data.shape[1] - size + half + 1]
    weights = np.maximum(corners, 0).ravel() + 1e-6
    return weights / weights.sum()


def sample_patches(rng: Any, data: Any, batch: int, size: int, weights: Any) -> tuple[Any, Any]:
    """``batch`` patches (with their corners): half uniform, half weighted by structure; random flips."""
    import numpy as np

    height, width = data.shape
    ny, nx = height - size + 1, width - size + 1
    uniform = batch // 2
    corners = list(rng.integers(0, ny * nx, uniform)) + list(rng.choice(ny * nx, batch - uniform, p=weights))
    patches = np.empty((batch, size, size), dtype=np.float32)
    origin = np.empty((batch, 2), dtype=np.int64)
    transforms = rng.integers(0, 8, batch)
    for i, corner in enumerate(corners):
        y, x = divmod(int(corner), nx)
        origin[i] = (y, x)
        patches[i] = data[y : y + size, x : x + size]
    return patches, (origin, transforms)


def dihedral(array: Any, k: int, inverse: bool = False) -> Any:
    """One of the 8 flips/rotations of the last two axes (``inverse`` undoes it)."""
    import numpy as np

    if inverse:
        array = np.flip(array, -1) if k >= 4 else array
        return np.rot90(array, -(k % 4), axes=(-2, -1))
    array = np.rot90(array, k % 4, axes=(-2, -1))
    return np.flip(array, -1) if k >= 4 else array


# -- training -------------------------------------------------------------------------------------------
def normalise(data: Any) -> tuple[Any, float, float]:
    mean, std = float(data.mean()), float(data.std())
    std = std if std > 0 else 1.0
    return (data - mean) / std, mean, std


def train(
    data: Any, iterations: int, batch_size: int, patience: int, seed: int, report: Any = None
) -> tuple[Any, dict[str, Any]]:
    """Train on ``data`` (2D float32); returns the model with its best held-out weights, and the curves."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    dev = device()
    norm, mean, std = normalise(data)
    size = min(PATCH, *(s - s % MULTIPLE for s in data.shape))
    held_out = rng.random(data.shape) < HELD_OUT
    weights = structure_weights(norm, size)
    model = build_model().to(dev)
    model.norm = (mean, std)  # type: ignore[assignment]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, iterations), eta_min=2e-5)
    history: dict[str, Any] = {"step": [], "train": [], "held-out": [], "best": 0}
    best, best_state, since_best, running = math.inf, None, 0, []
    height, width = data.shape
    val_np = np.pad(
        mask_input(rng, norm[None], held_out[None])[0],
        ((0, (-height) % MULTIPLE), (0, (-width) % MULTIPLE)),
        mode="reflect",
    )
    val_input = torch.from_numpy(np.ascontiguousarray(val_np[None, None])).to(dev)
    val_target = torch.from_numpy(norm[held_out]).to(dev)
    val_mask = torch.from_numpy(held_out).to(dev)
    started = time.monotonic()
    for step in range(1, iterations + 1):
        model.train()
        patches, (origin, transforms) = sample_patches(rng, norm, batch_size, size, weights)
        mask = blind_spots(rng, batch_size, size, size)
        for i, (y, x) in enumerate(origin):  # held-out pixels are never a training target
            mask[i] &= ~held_out[y : y + size, x : x + size]
        masked = mask_input(rng, patches, mask)
        for i, k in enumerate(transforms):
            patches[i], masked[i], mask[i] = (dihedral(a, int(k)) for a in (patches[i], masked[i], mask[i]))
        inp = torch.from_numpy(np.ascontiguousarray(masked[:, None])).to(dev)
        target = torch.from_numpy(np.ascontiguousarray(patches[:, None])).to(dev)
        weight = torch.from_numpy(np.ascontiguousarray(mask[:, None])).to(dev)
        loss = ((model(inp) - target) ** 2 * weight).sum() / weight.sum().clamp(min=1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(float(loss.detach()))
        if step % VALIDATE_EVERY == 0 or step == iterations:
            model.eval()
            with torch.no_grad():
                val_out = model(val_input)[0, 0, :height, :width]
                val = float(((val_out[val_mask] - val_target) ** 2).mean())
            history["step"].append(step)
            history["train"].append(float(np.mean(running)))
            history["held-out"].append(val)
            running = []
            if val < best:
                best, since_best, history["best"] = val, 0, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += step - history["step"][-2] if len(history["step"]) > 1 else step
            if report is not None:
                report(step, iterations, history, time.monotonic() - started)
            if patience and since_best >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


def predict(model: Any, data: Any, ensemble: bool = True, fuse_pixel: bool = True) -> Any:
    """Denoise ``data`` with a trained model (same shape, float32)."""
    import numpy as np
    import torch

    mean, std = model.norm
    norm = (data - mean) / std
    dev = next(model.parameters()).device
    height, width = norm.shape
    pad = ((0, (-height) % MULTIPLE), (0, (-width) % MULTIPLE))
    padded = np.pad(norm, pad, mode="reflect")
    outputs = []
    with torch.no_grad():
        for k in range(8) if ensemble else [0]:
            view = np.ascontiguousarray(dihedral(padded, k))
            out = model(torch.from_numpy(view[None, None]).to(dev))[0, 0].cpu().numpy()
            outputs.append(dihedral(out, k, inverse=True)[:height, :width])
    prediction = np.mean(outputs, axis=0)
    if fuse_pixel:
        prediction = fuse(norm, prediction)
    return (prediction * std + mean).astype(np.float32)


def fuse(noisy: Any, prediction: Any) -> Any:
    """Bayesian fusion of the blind-spot prediction with the observed pixel, for pixel-wise Gaussian noise."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    noise_var = noise_sigma(noisy) ** 2
    residual = (noisy - prediction) ** 2
    prior_var = np.maximum(gaussian_filter(residual, 3) - noise_var, 1e-6)
    return prediction + prior_var / (prior_var + noise_var) * (noisy - prediction)


def noise_sigma(data: Any) -> float:
    """Standard deviation of pixel-wise Gaussian noise (Immerkaer 1996: a Laplacian difference filter)."""
    import numpy as np
    from scipy.ndimage import convolve

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = convolve(np.asarray(data, dtype=np.float32), kernel, mode="reflect")[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(response).mean() / 6)


# -- reporting to the app -------------------------------------------------------------------------------
def notify(name: str, *args: Any) -> None:
    """Call ``api.<name>(*args)`` without waiting; nothing happens outside a plugin kernel."""
    with contextlib.suppress(RuntimeError):  # outside a kernel (a script or a test importing the module)
        getattr(api, name)(*args)


class Reporter:
    """Progress bar and live loss plot: ``api.showProgress`` and a ``scopeflow/plot`` window."""

    def __call__(self, step: int, total: int, history: dict[str, Any], seconds: float) -> None:
        notify("showProgress", round(100 * step / total))
        notify(
            "createWindow",
            {
                "type": "scopeflow/plot",
                "name": "noise2void loss",
                "data": {
                    "title": "noise2void training",
                    "x": list(history["step"]),
                    "xlabel": "step",
                    "ylabel": "loss (normalised units)",
                    "series": {"train": list(history["train"]), "held-out": list(history["held-out"])},
                },
            },
        )
        notify(
            "log",
            f"noise2void step {step}/{total}: train {history['train'][-1]:.4f}, "
            f"held-out {history['held-out'][-1]:.4f} ({seconds:.0f} s)",
        )
