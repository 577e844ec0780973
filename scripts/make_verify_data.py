"""Writes the data files of the built-in plugins' test cases (``server/scopeflow/builtin_plugins/verify/``).

Inputs are crops of the ``nuclei-2d`` sample; every expected output is computed here with the library the plugin
is meant to agree with (scipy, NumPy, Pillow), not by the plugin, so *Verify* checks the plugin against an
independent reference. Run it again after changing a case: ``python scripts/make_verify_data.py``.
"""

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from scopeflow.images import formats

OUT = Path(__file__).resolve().parents[1] / "server" / "scopeflow" / "builtin_plugins" / "verify"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    image = formats.load_sample("nuclei-2d")[0]
    labels = formats.load_sample("nuclei-2d-labels")[0]
    crop = np.ascontiguousarray(image[200:296, 200:296])
    np.save(OUT / "crop.npy", crop)
    np.save(OUT / "crop-blurred.npy", gaussian_filter(crop.astype(np.float32), sigma=2.0).astype(np.float32))
    as8 = crop.astype(np.uint8)  # the sample's values are 0..235
    buffer = io.BytesIO()
    Image.fromarray(as8).save(buffer, format="PNG")
    (OUT / "crop.png").write_bytes(buffer.getvalue())
    np.save(OUT / "crop-u8.npy", as8)
    # a denoising pair: a smooth field of nuclei and the same with seeded Gaussian noise (σ = 0.12 of its range)
    clean = image[128:256, 128:256].astype(np.float32)
    clean = gaussian_filter((clean - clean.min()) / (clean.max() - clean.min()), 1.0).astype(np.float32)
    noisy = clean + np.random.default_rng(7).normal(0, 0.12, clean.shape).astype(np.float32)
    np.save(OUT / "clean.npy", clean)
    np.save(OUT / "noisy.npy", noisy.astype(np.float32))
    span = float(clean.max() - clean.min())
    print("PSNR of the noisy image:", round(10 * np.log10(span**2 / np.mean((noisy - clean) ** 2)), 2), "dB")
    areas = np.bincount(labels.ravel().astype(np.int64))
    present = np.flatnonzero(areas)[1:] if areas[0] else np.flatnonzero(areas)
    table = {"label": [int(v) for v in present], "area": [int(areas[v]) for v in present]}
    (OUT / "nuclei-2d-areas.json").write_text(json.dumps(table) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
