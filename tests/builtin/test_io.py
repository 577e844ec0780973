"""The io, sample-data and measure plugins through a real hub."""

from __future__ import annotations

import numpy as np
import pytest

from scopeflow.rpc.client import connect


@pytest.fixture
async def client(hub):
    server = await connect(hub.url, token=hub.token)
    yield server
    await server.disconnect()


@pytest.mark.parametrize(
    ("name", "array", "axes"),
    [
        ("image.tif", np.arange(12 * 20, dtype=np.uint16).reshape(12, 20), "yx"),
        ("stack.ome.tif", np.arange(3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10), "zyx"),
        ("picture.png", np.arange(16 * 16, dtype=np.uint8).reshape(16, 16), "yx"),
        ("image.zarr", np.arange(2 * 6 * 9, dtype=np.int32).reshape(2, 6, 9), "cyx"),
    ],
)
async def test_io_write_read_round_trip(client, tmp_path, name, array, axes):
    io = await client.get_plugin("io")
    path = str(tmp_path / name)
    assert await io.write(array, path, axes) == path
    back = await io.read(path)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == array.dtype
    info = await io.inspect(path)
    assert info["axes"] == axes and info["shape"] == list(array.shape)


async def test_io_bytes_and_errors(client, tmp_path):
    io = await client.get_plugin("io")
    array = np.arange(30, dtype=np.uint16).reshape(5, 6)
    for fmt in ("tiff", "png"):
        data = await io.encode(array, fmt)
        np.testing.assert_array_equal(await io.decode(data, f"x.{fmt}"), array)
    with pytest.raises(Exception, match="no such file"):
        await io.read(str(tmp_path / "missing.tif"))
    (tmp_path / "notes.tif").write_bytes(b"not an image at all")
    with pytest.raises(Exception, match=r"notes\.tif|TIFF|image"):
        await io.read(str(tmp_path / "notes.tif"))
    with pytest.raises(Exception, match="axes"):
        await io.write(array, str(tmp_path / "bad.zarr"), "zyx")
    with pytest.raises(Exception, match="non-empty"):
        await io.decode(b"")


async def test_sample_data_lists_and_loads_with_licence(client):
    samples = await client.get_plugin("sample-data")
    rows = {row["id"]: row for row in await samples.list_samples()}
    assert {"nuclei-2d", "nuclei-2d-labels", "nuclei-3d"} <= set(rows)
    assert "BSD-3" in rows["nuclei-2d"]["licence"]
    image = await samples.load("nuclei-2d")
    assert image.shape == (512, 512) and list(image.shape) == rows["nuclei-2d"]["shape"]
    labels = await samples.load("nuclei-2d-labels")
    assert len(np.unique(labels)) - 1 == 125
    with pytest.raises(Exception, match="no sample"):
        await samples.load("no-such-sample")


async def test_measure_region_properties(client):
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:7] = 1  # a 4x4 square
    labels[10:12, 5:25] = 4  # a 2x20 bar
    image = np.zeros(labels.shape, np.float32)
    image[labels == 1] = 10.0
    image[labels == 4] = 3.0
    measure = await client.get_plugin("measure")
    table = await measure.regions(labels, image)
    assert table["label"] == [1, 4]
    assert table["area"] == [16, 40]
    assert table["mean_intensity"] == [10.0, 3.0]
    assert table["centroid_y"] == [3.5, 10.5] and table["centroid_x"] == [4.5, 14.5]
    assert table["eccentricity"][0] == pytest.approx(0.0, abs=1e-9) and table["eccentricity"][1] > 0.9
    no_image = await measure.regions(labels)
    assert no_image["mean_intensity"] == [None, None]
    with pytest.raises(Exception, match="negative"):
        await measure.regions(-labels)
    with pytest.raises(Exception, match="shape"):
        await measure.regions(labels, image[:5])
    with pytest.raises(Exception, match="2D"):
        await measure.regions(np.zeros((2, 3, 4), np.int32))
