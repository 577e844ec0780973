"""Images in and out: samples, TIFF/OME-TIFF/PNG reading and writing, and the hub's data routes."""

from __future__ import annotations

import html
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import tifffile

from scopeflow.images import formats as data


def post_bytes(hub, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(
        hub.url + path, data=body, method="POST", headers={"Authorization": f"token {hub.token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.read(), dict(res.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def raw_array(body: bytes, headers: dict[str, str]) -> tuple[np.ndarray, str]:
    shape = [int(n) for n in headers["X-Shape"].split(",") if n]
    return data.array_from_raw(body, shape, headers["X-Dtype"]), headers["X-Axes"]


def test_samples_are_listed_with_licence_and_load():
    samples = {s["id"]: s for s in data.list_samples()}
    assert {"nuclei-2d", "nuclei-2d-labels", "nuclei-3d", "synthetic-cells"} <= set(samples)
    nuclei, axes = data.load_sample("nuclei-2d")
    assert (nuclei.shape, nuclei.dtype, axes) == ((512, 512), np.uint16, "yx")
    labels, _ = data.load_sample("nuclei-2d-labels")
    assert len(np.unique(labels)) > 100  # instance labels, not a mask
    assert "BSD" in samples["nuclei-2d"]["licence"]
    assert (data.SAMPLES_DIR / "LICENSE-stardist.txt").read_text().startswith("BSD 3-Clause")
    for sample_id, sample in samples.items():  # the listing reads headers only: it must match the pixels
        array, axes = data.load_sample(sample_id)
        listed = [sample["shape"], sample["dtype"], sample["axes"]]
        assert listed == [list(array.shape), str(array.dtype), axes]
    cells, axes = data.load_sample("synthetic-cells")
    assert axes == "czyx" and cells.shape[0] == 2 and cells.dtype == np.uint16
    assert np.array_equal(cells, data.synthetic_cells())  # seeded: the same every time
    with pytest.raises(KeyError, match="no sample"):
        data.load_sample("nope")


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "int32"])
def test_ome_tiff_round_trip_keeps_pixels_axes_and_metadata(dtype):
    rng = np.random.default_rng(1)
    array = (rng.random((2, 3, 16, 20)) * 200).astype(dtype)
    file = data.write_image(array, "tiff", axes="czyx", metadata={"workflow": "w1"})
    back, axes = data.read_image(file, "x.ome.tif")
    assert axes == "czyx" and back.dtype == array.dtype
    assert np.array_equal(back, array)
    with tifffile.TiffFile(io.BytesIO(file)) as tif:
        assert '"workflow": "w1"' in html.unescape(tif.ome_metadata)


def test_tiff_axes_from_other_tools_are_normalised():
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb, photometric="rgb")
    back, axes = data.read_image(buffer.getvalue())
    assert axes == "cyx" and np.array_equal(back, np.moveaxis(rgb, -1, 0))
    big_endian = np.arange(12, dtype=">u2").reshape(3, 4)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, big_endian, byteorder=">")
    back, axes = data.read_image(buffer.getvalue())
    assert axes == "yx" and back.dtype == np.dtype("<u2") and np.array_equal(back, big_endian)


def test_png_round_trip_and_float_stretch(tmp_path):
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    back, axes = data.read_image(data.write_image(image, "png"))
    assert axes == "yx" and np.array_equal(back, image)
    wide = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    assert np.array_equal(data.read_image(data.write_image(wide, "png"))[0], wide)
    floats = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    stretched, _ = data.read_image(data.write_image(floats, "png", metadata={"a": 1}))
    assert stretched.min() == 0 and stretched.max() == 255
    data.write_image(image, tmp_path / "out.png")
    assert np.array_equal(data.read_image(tmp_path / "out.png")[0], image)
    with pytest.raises(data.ImageError, match="use TIFF"):
        data.write_image(np.zeros((3, 4, 5, 6), np.uint8), "png")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"hello world", "not a TIFF"), (b"II*\x00garbage-after-the-magic", "holds no image")],
)
def test_bad_files_give_a_clear_error(content, message):
    with pytest.raises(data.ImageError, match=message) as info:
        data.read_image(content, "cells.tif")
    assert str(info.value).startswith("cells.tif:")


def test_raw_arrays_are_checked():
    assert data.array_from_raw(b"\x01\x00\x02\x00", [2], "uint16").tolist() == [1, 2]
    with pytest.raises(data.ImageError, match="do not make"):
        data.array_from_raw(b"\x01\x00\x02", [2], "uint16")
    with pytest.raises(data.ImageError, match="unsupported dtype"):
        data.array_from_raw(b"", [0], "object")


def test_hub_serves_samples_as_raw_pixels(hub):
    listing = json.loads(hub.request("/api/samples")[1])
    assert any(s["id"] == "nuclei-2d" and s["shape"] == [512, 512] for s in listing)
    auth = {"Authorization": f"token {hub.token}"}
    req = urllib.request.Request(hub.url + "/api/samples/nuclei-2d", headers=auth)
    with urllib.request.urlopen(req) as res:
        array, axes = raw_array(res.read(), dict(res.headers))
    assert axes == "yx" and np.array_equal(array, data.load_sample("nuclei-2d")[0])
    assert hub.request("/api/samples/nope")[0] == 404


def test_hub_reads_uploads_and_writes_downloads(hub):
    image = np.arange(30, dtype=np.float32).reshape(5, 6)
    status, body, headers = post_bytes(hub, "/api/images/read?name=a.tif", data.write_image(image, "tiff"))
    assert status == 200
    back, axes = raw_array(body, headers)
    assert axes == "yx" and np.array_equal(back, image)
    status, body, _ = post_bytes(hub, "/api/images/read?name=bad.png", b"\x89PNG\r\n\x1a\nbroken")
    assert status == 400 and b"bad.png" in body
    status, body, headers = post_bytes(
        hub, "/api/images/write?format=tiff&shape=5,6&dtype=float32&axes=yx", image.tobytes()
    )
    assert status == 200 and headers["Content-Type"] == "image/tiff"
    assert np.array_equal(data.read_image(body)[0], image)
    status, body, _ = post_bytes(hub, "/api/images/write?format=png&shape=5,7&dtype=float32", image.tobytes())
    assert status == 400 and b"do not make" in body


def tiff_declaring(width: int, height: int) -> bytes:
    """A small TIFF whose header declares a ``width`` x ``height`` 16-bit image (its data is 8 bytes)."""
    import struct

    entries = [  # tag, type (3 short, 4 long), count, value
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 16),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 9 + 4),
        (277, 3, 1, 1),
        (278, 4, 1, height),
        (279, 4, 1, 8),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHI", tag, kind, count) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + b"\x00" * 8


def test_an_image_that_declares_more_pixels_than_the_limit_is_refused_before_reading():
    with pytest.raises(data.ImageError, match=r"declares .* bytes of pixels"):
        data.read_image(tiff_declaring(60_000, 60_000), "huge.tif")
    array, axes = data.read_image(tiff_declaring(2, 2), "tiny.tif")  # the same file, small, reads
    assert array.shape == (2, 2) and axes == "yx"


def test_the_hub_refuses_huge_declarations_and_bad_axes_with_a_400(hub):
    status, body, _ = post_bytes(hub, "/api/images/read?name=huge.tif", tiff_declaring(60_000, 60_000))
    assert status == 400 and b"declares" in body
    status, body, _ = post_bytes(
        hub, "/api/images/write?format=tiff&shape=2,2&dtype=uint8&axes=qq", b"\0" * 4
    )
    assert status == 400 and b"axes" in body
    assert hub.request("/api/hub")[0] == 200
