"""Image files in and out: TIFF/OME-TIFF, PNG (via `scopeflow.images.formats`) and OME-Zarr.

- `read(path)` → the image; `inspect(path)` → its axes, shape and dtype (axes over `tczyx`).
- `write(image, path, axes)` → writes by the path's ending: `.tif`/`.tiff` (OME-TIFF when `axes` is given),
  `.png`, or `.zarr` (an OME-Zarr 0.4 image: one resolution level, axes in the multiscales metadata).
- `decode(data, name)` / `encode(image, format, axes)` → the same for bytes (uploads, downloads).

Paths are on the machine that runs the plugin's kernel (the hub's, unless it runs on a gateway), and only
in the folders `io` may use: the hub's files folder (`DATA_DIR/files`; a relative path is taken from there)
and those listed in the environment variable `SCOPEFLOW_IO_DIRS` (separated by `:`, `;` on Windows) when
the hub starts. Symbolic links and `..` are resolved before the check; any other path is refused with an
error that names the allowed folders.
"""

from typing import Literal

from scopeflow import Image, op

PLUGIN = {
    "id": "io",
    "name": "Image files",
    "version": "0.1.0",
    "description": "Read and write TIFF/OME-TIFF, PNG and OME-Zarr images.",
    "requirements": ["tifffile", "imageio", "zarr"],
    "tags": ["io", "files"],
    "tests": [
        {
            "name": "a PNG file's bytes decode to its exact pixels",
            "op": "decode",
            "inputs": {"data": {"file": "verify/crop.png"}, "name": "crop.png"},
            "expected": {"result": {"file": "verify/crop-u8.npy"}},
            "atol": 0,
            "rtol": 0,
        }
    ],
}


@op(title="Read an image file")
def read(path: str) -> Image:
    """The image at `path` (TIFF/OME-TIFF, PNG, JPEG, or an OME-Zarr folder)."""
    return _read(path)[0]


@op(title="Describe an image file")
def inspect(path: str) -> dict:
    """Axes, shape and dtype of the image at `path`."""
    array, axes = _read(path)
    return {"path": path, "axes": axes, "shape": list(array.shape), "dtype": str(array.dtype)}


@op(title="Write an image file", inputs={"axes": {"description": "axes over tczyx, e.g. yx, zyx, cyx"}})
def write(image: Image, path: str, axes: str = "") -> str:
    """Write `image` to `path` (.tif/.tiff, .png or .zarr); returns the path."""
    import numpy as np

    from scopeflow.images import formats as data

    target = _allowed(path, write=True)
    array = np.asarray(image)
    axes = axes or _default_axes(array.ndim)
    target.parent.mkdir(parents=True, exist_ok=True)  # inside an allowed folder: checked above
    if target.name.lower().endswith(".zarr"):
        if target.exists() and not _is_zarr(target):  # writing a zarr group empties its folder first
            raise FileExistsError(f"{path} exists and is not an OME-Zarr image: it is left as it is")
        write_ome_zarr(array, target, axes)
    else:
        data.write_image(array, target, axes=axes)
    return path


@op(title="Decode image bytes")
def decode(data: bytes, name: str = "") -> Image:
    """The image in `data` (the bytes of a TIFF, PNG or JPEG file)."""
    from scopeflow.images import formats as images

    if not isinstance(data, bytes | bytearray | memoryview) or len(data) == 0:
        raise ValueError("decode needs the non-empty bytes of an image file")
    return images.read_image(bytes(data), name=name or None)[0]


@op(title="Encode an image as file bytes")
def encode(image: Image, format: Literal["tiff", "png"] = "tiff", axes: str = "") -> bytes:
    """The bytes of a TIFF (OME-TIFF) or PNG file holding `image`."""
    import numpy as np

    from scopeflow.images import formats as data

    array = np.asarray(image)
    result = data.write_image(array, format, axes=axes or _default_axes(array.ndim))
    assert result is not None
    return result


def _default_axes(ndim: int) -> str | None:
    return "tczyx"[-ndim:] if 2 <= ndim <= 5 else None


def _read(path: str) -> tuple:
    from scopeflow.images import formats as data

    file = _allowed(path)
    if not file.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if file.is_dir():
        return read_ome_zarr(file)
    if not file.is_file():  # a FIFO or a device: reading it could block or never end
        raise ValueError(f"{path} is not a file")
    return data.read_image(file)


def folders() -> list:
    """The folders `io` reads and writes in: the hub's files folder first (relative paths start there),
    then those of `SCOPEFLOW_IO_DIRS`.

    The hub's files folder is `SCOPEFLOW_FILES_DIR` when set, else `DATA_DIR/files` found beside the
    jupyter runtime folder the hub keeps in its data dir (`DATA_DIR/runtime`, in the kernel's environment).
    """
    import os
    from pathlib import Path

    found = []
    files = os.environ.get("SCOPEFLOW_FILES_DIR", "")
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR", "")
    if not files and runtime:
        data_dir = Path(runtime).parent
        if Path(runtime).name == "runtime" and (data_dir / "files").is_dir() and (data_dir / "runs").is_dir():
            files = str(data_dir / "files")
    if files:
        found.append(Path(files))
    extra = os.environ.get("SCOPEFLOW_IO_DIRS", "")
    found += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return [p for p in found if p.is_absolute()]


def _allowed(path: str, write: bool = False):
    """`path` resolved, if it lies in one of `folders()`; a PermissionError naming them otherwise."""
    from scopeflow.images import formats as data

    if not isinstance(path, str):
        raise TypeError(f"a path is text, not {type(path).__name__}")
    try:
        return data.confine(path, folders(), write=write)
    except PermissionError as exc:  # say how to allow more
        raise PermissionError(
            f"{exc} (more can be listed in SCOPEFLOW_IO_DIRS when the hub starts)"
        ) from None


def _is_zarr(folder) -> bool:
    return folder.is_dir() and any((folder / n).is_file() for n in (".zgroup", ".zattrs", "zarr.json"))


def write_ome_zarr(array, path, axes: str) -> None:
    """An OME-Zarr 0.4 image: a zarr v2 group with the array as level ``0`` and ``multiscales`` metadata."""
    import numpy as np
    import zarr

    array = np.asarray(array)
    if array.size == 0:
        raise ValueError("cannot write an empty image")
    if len(axes) != array.ndim or set(axes) - set("tczyx") or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} must be {array.ndim} distinct letters of tczyx")
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    sides = {"t": 1, "c": 1, "z": 64}
    chunks = tuple(min(s, sides.get(a, 512)) for s, a in zip(array.shape, axes, strict=True))
    target = group.create_array("0", shape=array.shape, dtype=array.dtype, chunks=chunks)
    target[...] = array
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "name": "image",
            "axes": [
                {"name": a, "type": kinds[a], **({"unit": "micrometer"} if kinds[a] == "space" else {})}
                for a in axes
            ],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0] * len(axes)}]}
            ],
        }
    ]


def read_ome_zarr(path) -> tuple:
    """The full-resolution level of an OME-Zarr image (0.4, or 0.5 with its ``ome`` attribute), its axes."""
    import numpy as np
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:
        raise ValueError(f"{path} is not an OME-Zarr image: {exc}") from None
    attrs = dict(group.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ValueError(f"{path} has no OME-Zarr multiscales metadata")
    first = multiscales[0]
    axes = "".join((a["name"] if isinstance(a, dict) else a)[0].lower() for a in first.get("axes", []))
    array = np.asarray(group[first["datasets"][0]["path"]][...])
    return array, axes or _default_axes(array.ndim)
