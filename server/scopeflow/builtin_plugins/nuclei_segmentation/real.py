"""Real fluorescence nuclei with hand-drawn instance masks, for training: the mnfinder 1.2.3 wheel (MIT).

The wheel on PyPI (``mnfinder==1.2.3``, 66 MB, checked against its sha256) carries 2D fluorescence images of
nuclei (DAPI, H2B-GFP, H2B-emiRFP703; RPE-1, U2OS, HeLa, HFF, MCC13 cells; some maximum projections) with
their instance masks (the blue channel of ``nucleus_masks/*.png``), split by its authors into training,
validation and test sets. The wheel is downloaded once with ``pip download`` (no dependencies installed)
into a cache folder and read in place; nothing of it ships with scopeflow, only weights trained on it.
Its licence is in ``DATA-LICENCES.md`` beside this file. Training uses the ``training-data`` split; the
``validation-data`` split is for validation; the ``test-data`` split is a transfer test (a test image that
is a copy of a training image is left out).

Any other labelled set on disk (``images/`` beside ``masks/``, e.g. BBBC039 or the DSB2018 training images,
both CC0) is read by :func:`folder` (``train.py --real-dir DIR``), leaving out the test image.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from scipy import ndimage

PACKAGE = "mnfinder==1.2.3"
WHEEL = "mnfinder-1.2.3-py3-none-any.whl"
SHA256 = "11b1f6aea9f40b4dd3cf6c3de30ef8d517a4833907b88b86ce2b7ab1f9dbce4a"
SPLITS = ("training-data", "validation-data", "test-data")


def wheel(cache: Path) -> Path:
    """The verified wheel in ``cache``, downloaded from the package index the first time."""
    path = cache / WHEEL
    if not path.exists() or _sha256(path) != SHA256:
        path.unlink(missing_ok=True)  # a partial or altered download is fetched again, not reused
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*command, "--dest", str(cache), PACKAGE], check=True)
    found = _sha256(path)
    if found != SHA256:
        raise RuntimeError(f"{path} has sha256 {found}, expected {SHA256}: not the published {PACKAGE}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(cache: Path, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image float32, labels int32)`` of every image of one split, sorted by name."""
    return read(wheel(cache), split)


def read(path: Path, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """:func:`load` from a wheel (or any zip of the same layout) already at ``path``."""
    import tifffile
    from PIL import Image as Picture

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out = []
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        training = _digests(archive, names, "training-data") if split == "test-data" else set()
        prefix = f"mnfinder/{split}/"
        for name in _images(names, split):
            mask = name.replace("/images/", "/nucleus_masks/")[: -len(".tif")] + ".png"
            if mask not in names:
                continue
            pixels = tifffile.imread(io.BytesIO(archive.read(name)))
            if _pixel_digest(pixels) in training:
                continue  # the same pixels are in the training split
            image = pixels.astype(np.float32)
            rgba = np.asarray(Picture.open(io.BytesIO(archive.read(mask))))
            if image.ndim != 2 or rgba.shape[:2] != image.shape:
                continue
            out.append((name[len(prefix) :], image, instances(rgba[..., 2])))
    return out


def _digests(archive: zipfile.ZipFile, names: set[str], split: str) -> set[str]:
    import tifffile

    return {_pixel_digest(tifffile.imread(io.BytesIO(archive.read(n)))) for n in _images(names, split)}


def _images(names: set[str], split: str) -> list[str]:
    """The image files of one split in the archive, sorted."""
    prefix = f"mnfinder/{split}/"
    return sorted(n for n in names if n.startswith(prefix) and "/images/" in n and n.endswith(".tif"))


def _pixel_digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.float64).tobytes()).hexdigest()


def instances(ids: np.ndarray) -> np.ndarray:
    """Consecutive int32 labels from a mask of instance ids; an id drawn in separate pieces becomes one
    label per piece larger than 4 px (specks are dropped)."""
    out = np.zeros(ids.shape, dtype=np.int32)
    count = 0
    for value in np.unique(ids):
        if value == 0:
            continue
        pieces, n = ndimage.label(ids == value)
        sizes = np.bincount(pieces.ravel())
        for piece in range(1, n + 1):
            if sizes[piece] > 4:
                count += 1
                out[pieces == piece] = count
    return out


def folder(path: Path, exclude: list[np.ndarray] = ()) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, image float32, labels int32)`` of every labelled image in a folder: ``images/NAME.EXT`` with
    its ``masks/NAME.*`` (or ``labels/NAME.*``): TIFF or PNG, one integer per nucleus; a mask of 0 and one
    value is split into its connected pieces. Images whose pixels match one of ``exclude`` (the test
    images, in any of the 8 orientations) are left out, and so are 2D images without a mask; a mask of
    another shape than its image is an error naming both files."""
    if not (path / "images").is_dir():
        raise ValueError(f"{path} has no images/ folder (expected images/NAME.tif beside masks/NAME.tif)")
    folders = [path / sub for sub in ("masks", "labels") if (path / sub).is_dir()]
    masks = {p.stem: p for where in folders for p in where.iterdir()}
    out = []
    for file in sorted((path / "images").iterdir()):
        if file.stem not in masks:
            continue
        image = _read_picture(file)
        if image.ndim == 3 and image.shape[-1] in (3, 4):  # RGB(A) of a grey image: one channel
            image = image[..., :3].max(-1)
        ids = _read_picture(masks[file.stem])
        if ids.ndim == 3:
            ids = ids[..., :3].max(-1) if ids.shape[-1] in (3, 4) else ids.max(0)
        if image.ndim != 2:
            continue
        if ids.shape != image.shape:
            raise ValueError(f"{masks[file.stem]} is {ids.shape}, its image {file} is {image.shape}")
        if any(_same_pixels(image, other) for other in exclude):
            continue
        if len(np.unique(ids)) == 2:
            ids = ndimage.label(ids > 0)[0]
        out.append((file.name, image.astype(np.float32), instances(ids)))
    return out


def _read_picture(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    from PIL import Image as Picture

    return np.asarray(Picture.open(path))


def _same_pixels(image: np.ndarray, other: np.ndarray) -> bool:
    """Whether ``image`` holds ``other`` (or lies inside it), turned or flipped, up to a linear change of
    intensities (the same picture saved at another bit depth or cropped): normalised cross-correlation above
    0.99 at some offset."""
    from skimage.feature import match_template

    image = image.astype(np.float32)
    for turned in (np.rot90(other, k).astype(np.float32) for k in range(4)):
        for candidate in (turned, turned[:, ::-1]):
            if all(a >= b for a, b in zip(image.shape, candidate.shape, strict=True)):
                big, small = image, candidate
            elif all(a <= b for a, b in zip(image.shape, candidate.shape, strict=True)):
                big, small = candidate, image
            else:
                continue
            if small.std() > 0 and float(match_template(big, small).max()) > 0.99:
                return True
    return False
