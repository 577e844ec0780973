"""Annotations: label images painted in the web app, kept as TIFF files beside the image they belong to.

An image is known by its key, the sha256 of its dtype, shape and pixels (:func:`scopeflow._util.content_hash`
of the array as the web app holds it): the same pixels opened again, from a sample or from a file, find their
annotations again, whatever the file is called. Under ``<data dir>/annotations/<key>/`` lie ``image.json``
(the image's name, shape and axes, as its first save gave them) and one ``<name>.tif`` per annotation: an
OME-TIFF of int32 labels (0 unlabelled, 1..n one object each) whose shape is the image's without its channel
axis. Every file is written atomically (a temporary file renamed over the old one).
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from scopeflow._util import ID_RE, utc_stamp, write_atomic
from scopeflow.images import formats

__all__ = ["KEY", "MAX_PIXELS", "AnnotationError", "Annotations", "labels_geometry"]

KEY = r"[0-9a-f]{64}"
KEY_RE = re.compile(rf"^{KEY}$")
MAX_PIXELS = 1 << 28  # labels of one image: 1 GiB of int32
_AXES = "tczyx"


class AnnotationError(ValueError):
    """A request the store refuses, with the reason; ``status`` is the HTTP status that says so."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _check_key(image: str) -> None:
    if not (isinstance(image, str) and KEY_RE.match(image)):
        shown = repr(image) if len(repr(image)) <= 80 else repr(image)[:77] + "..."
        raise AnnotationError(f"image {shown} is not an image key (64 lowercase hexadecimal digits)")


def _check_name(name: str) -> None:
    if not (isinstance(name, str) and ID_RE.match(name)):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise AnnotationError(
            f"annotation name {shown}: letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "at most 128 characters"
        )


def labels_geometry(image_shape: list[int], image_axes: str) -> tuple[list[int], str]:
    """The shape and axes of an image's labels: the image's without its channel axis."""
    if not isinstance(image_axes, str) or len(image_axes) != len(image_shape):
        raise AnnotationError(f"image axes {image_axes!r} do not fit an image of shape {image_shape}")
    if set(image_axes) - set(_AXES) or len(set(image_axes)) != len(image_axes) or image_axes[-2:] != "yx":
        raise AnnotationError(f"image axes {image_axes!r}: each of t, c, z, y, x at most once, then yx")
    if [a for a in _AXES if a in image_axes] != list(image_axes):
        raise AnnotationError(f"image axes {image_axes!r} are not in the order tczyx")
    if any(not isinstance(n, int) or n < 1 for n in image_shape):
        raise AnnotationError(f"image shape {image_shape}: every size is a whole number of at least 1")
    kept = [i for i, a in enumerate(image_axes) if a != "c"]
    shape = [image_shape[i] for i in kept]
    pixels = int(np.prod(shape, dtype=object))
    if pixels > MAX_PIXELS:
        raise AnnotationError(f"labels of {pixels} pixels: the limit is {MAX_PIXELS}", 413)
    return shape, "".join(image_axes[i] for i in kept)


class Annotations:
    """The annotations kept under one folder (``<data dir>/annotations``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, image: str) -> Path:
        _check_key(image)
        return self.root / image

    def _record(self, image: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self._folder(image) / "image.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def listing(self, image: str | None = None) -> list[dict[str, Any]]:
        """Every annotation (of one image, with ``image``): image key and name, annotation name, shape, axes,
        size and time of the last save; newest first."""
        if image is not None:
            _check_key(image)
            folders = [self.root / image]
        elif self.root.is_dir():
            folders = sorted(p for p in self.root.iterdir() if KEY_RE.match(p.name))
        else:
            folders = []
        found = []
        for folder in folders:
            record = self._record(folder.name)
            if record is None:
                continue
            for file in folder.glob("*.tif"):
                if file.name.startswith(".") or not ID_RE.match(file.stem):
                    continue
                with contextlib.suppress(OSError):  # deleted meanwhile
                    stat = file.stat()
                    found.append(self._entry(folder.name, file.stem, record, stat.st_size, stat.st_mtime))
        found.sort(key=lambda e: (-e["mtime"], e["name"]))
        return found

    @staticmethod
    def _entry(image: str, name: str, record: dict[str, Any], size: int, mtime: float) -> dict[str, Any]:
        return {
            "image": image,
            "name": name,
            "image_name": record.get("name", ""),
            "image_shape": record.get("shape"),
            "image_axes": record.get("axes"),
            "shape": record.get("labels_shape"),
            "axes": record.get("labels_axes"),
            "dtype": "int32",
            "bytes": size,
            "modified": utc_stamp(mtime),
            "mtime": mtime,
        }

    def save(
        self, image: str, name: str, tiff: bytes, image_name: str, image_shape: list[int], image_axes: str
    ) -> tuple[dict[str, Any], bool]:
        """Create or overwrite annotation ``name`` of ``image`` from a TIFF of its labels; gives its listing
        entry and whether it is new. The labels must be int32 of the image's shape without channels."""
        _check_name(name)
        folder = self._folder(image)
        shape, axes = labels_geometry(image_shape, image_axes)
        record = self._record(image)
        if record is not None and (record.get("shape") != image_shape or record.get("axes") != image_axes):
            raise AnnotationError(
                f"image {image[:12]}… was annotated as {record.get('axes')} {record.get('shape')}, "
                f"not {image_axes} {image_shape}",
                409,
            )
        if not tiff:
            raise AnnotationError("the body is empty: send the labels as a TIFF file")
        if tiff[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            raise AnnotationError("the body is not a TIFF file")
        try:
            array, _ = formats.read_image(tiff, f"{name}.tif")
        except formats.ImageError as exc:
            raise AnnotationError(str(exc)) from None
        if array.dtype != np.int32:
            raise AnnotationError(f"labels are int32 (0 unlabelled, 1..n one object each), not {array.dtype}")
        if list(array.shape) != shape:
            if [n for n in array.shape if n != 1] != [n for n in shape if n != 1]:
                raise AnnotationError(
                    f"labels of shape {list(array.shape)} do not fit the image: its labels are {axes} {shape}"
                )
            array = array.reshape(shape)  # only axes of size 1 differ (a reader dropped or added them)
        folder.mkdir(parents=True, exist_ok=True)
        if record is None:
            record = {
                "name": str(image_name)[:500],
                "shape": image_shape,
                "axes": image_axes,
                "labels_shape": shape,
                "labels_axes": axes,
            }
            write_atomic(folder / "image.json", json.dumps(record, indent=1))
        path = folder / f"{name}.tif"
        created = not path.exists()
        formats.write_image(np.ascontiguousarray(array, dtype="<i4"), path, axes=axes)
        stat = path.stat()
        return self._entry(image, name, record, stat.st_size, stat.st_mtime), created

    def path(self, image: str, name: str) -> Path:
        """The TIFF file of an annotation; KeyError if there is none."""
        _check_name(name)
        path = self._folder(image) / f"{name}.tif"
        if not path.is_file():
            raise KeyError(f"image {image[:12]}… has no annotation {name!r}")
        return path

    def entry(self, image: str, name: str) -> dict[str, Any]:
        path = self.path(image, name)
        stat = path.stat()
        return self._entry(image, name, self._record(image) or {}, stat.st_size, stat.st_mtime)

    def delete(self, image: str, name: str) -> None:
        """Remove an annotation (KeyError if there is none); an image left without any loses its folder."""
        path = self.path(image, name)
        path.unlink()
        folder = path.parent
        if not any(f.suffix == ".tif" and not f.name.startswith(".") for f in folder.iterdir()):
            with contextlib.suppress(OSError):
                (folder / "image.json").unlink()
                folder.rmdir()
