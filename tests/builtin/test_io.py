"""The io, sample-data and measure plugins through a real hub."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import start_hub, stop_hub
from scopeflow.rpc.client import connect


@pytest.fixture
async def client(hub):
    server = await connect(hub.url, token=hub.token)
    yield server
    await server.disconnect()


@pytest.fixture
def files(hub, tmp_path) -> Path:
    """A folder of this test's own in the hub's files folder (DATA_DIR/files), where io reads and writes."""
    folder = hub.data_dir / "files" / tmp_path.name
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("name", "array", "axes"),
    [
        ("image.tif", np.arange(12 * 20, dtype=np.uint16).reshape(12, 20), "yx"),
        ("stack.ome.tif", np.arange(3 * 8 * 10, dtype=np.float32).reshape(3, 8, 10), "zyx"),
        ("picture.png", np.arange(16 * 16, dtype=np.uint8).reshape(16, 16), "yx"),
        ("image.zarr", np.arange(2 * 6 * 9, dtype=np.int32).reshape(2, 6, 9), "cyx"),
    ],
)
async def test_io_write_read_round_trip(client, files, name, array, axes):
    io = await client.get_plugin("io")
    for path in (str(files / name), f"{files.name}/{name}"):  # absolute, or relative to the files folder
        assert await io.write(array, path, axes) == path
        back = await io.read(path)
        np.testing.assert_array_equal(back, array)
        assert back.dtype == array.dtype
        info = await io.inspect(path)
        assert info["axes"] == axes and info["shape"] == list(array.shape)
    assert (files / name).exists()


async def test_io_bytes_and_errors(client, files):
    io = await client.get_plugin("io")
    array = np.arange(30, dtype=np.uint16).reshape(5, 6)
    for fmt in ("tiff", "png"):
        data = await io.encode(array, fmt)
        np.testing.assert_array_equal(await io.decode(data, f"x.{fmt}"), array)
    with pytest.raises(Exception, match="no such file"):
        await io.read(str(files / "missing.tif"))
    (files / "notes.tif").write_bytes(b"not an image at all")
    with pytest.raises(Exception, match=r"notes\.tif|TIFF|image"):
        await io.read(str(files / "notes.tif"))
    with pytest.raises(Exception, match="axes"):
        await io.write(array, str(files / "bad.zarr"), "zyx")
    with pytest.raises(Exception, match="non-empty"):
        await io.decode(b"")
    with pytest.raises(Exception, match="tiff or png"):
        await io.encode(array, "/tmp/x.png")  # a format's name, never a path
    os.mkfifo(files / "pipe.tif")
    with pytest.raises(Exception, match="not a file"):
        await io.read(str(files / "pipe.tif"))  # refused, rather than blocking on the pipe


async def test_io_writes_into_new_folders_and_keeps_other_folders(client, files):
    io = await client.get_plugin("io")
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = f"{files.name}/new/deeper/x.tif"
    assert await io.write(array, path, "yx") == path
    np.testing.assert_array_equal(await io.read(str(files / "new" / "deeper" / "x.tif")), array)
    (files / "notes.zarr").mkdir()  # a folder that is not an OME-Zarr image: writing one would empty it
    (files / "notes.zarr" / "keep.txt").write_text("keep")
    with pytest.raises(Exception, match="not an OME-Zarr image"):
        await io.write(array, str(files / "notes.zarr"), "yx")
    assert (files / "notes.zarr" / "keep.txt").read_text() == "keep"
    await io.write(array, str(files / "image.zarr"), "yx")
    await io.write(array + 1, str(files / "image.zarr"), "yx")  # an OME-Zarr image is replaced
    np.testing.assert_array_equal(await io.read(str(files / "image.zarr")), array + 1)


ESCAPES = {  # each (path as io gets it, or None: the victim's absolute path)
    "absolute": None,
    "dotdot": "../../outside/victim.tif",
    "dotdot-in-absolute": "{files}/../../outside/victim.tif",
    "dotdot-deep": "{name}/a/b/../../../../../outside/victim.tif",
    "home": "~/victim.tif",
    "symlink-file": "{name}/link.tif",
    "symlink-folder": "{name}/door/victim.tif",
    "symlink-dotdot": "{name}/up/../../outside/victim.tif",  # up is files: normpath would say inside
    "nul": "{name}/x.tif\x00/../../../outside/victim.tif",
    "empty": "",
}


@pytest.mark.parametrize("form", list(ESCAPES))
async def test_io_refuses_paths_outside_its_folders(client, hub, files, tmp_path, form):
    io = await client.get_plugin("io")
    outside = hub.data_dir.parent / "outside"  # beside the data dir, the victim of every form
    outside.mkdir(exist_ok=True)
    victim = outside / "victim.tif"
    original = np.full((2, 2), 7, np.uint8)
    from scopeflow.images import formats as data

    data.write_image(original, victim)
    kept = victim.read_bytes()
    (files / "link.tif").symlink_to(victim)
    (files / "door").symlink_to(outside)
    (files / "up").symlink_to("..")
    path = ESCAPES[form]
    path = str(victim) if path is None else path.format(files=files, name=files.name)
    expected = {"nul": "NUL", "empty": "empty"}.get(form, f"outside the folders allowed here: {hub.data_dir}")
    image = np.zeros((2, 2), np.uint8)
    for call in (io.write(image, path, "yx"), io.read(path), io.inspect(path)):
        with pytest.raises(Exception, match=expected):
            await call
    if form not in ("nul", "empty"):  # the message names the allowed folder and how to allow more
        with pytest.raises(Exception, match="SCOPEFLOW_IO_DIRS"):
            await io.read(path)
    assert victim.read_bytes() == kept
    assert sorted(os.listdir(outside)) == ["victim.tif"]


async def test_io_keeps_odd_names_inside(client, files):
    io = await client.get_plugin("io")
    array = np.arange(4, dtype=np.uint8).reshape(2, 2)
    for name in ("..%2Fx.tif", "%2E%2E%2Fx.tif", "..\\x.tif", "a..b.tif"):  # names, not ways up
        path = f"{files.name}/{name}"
        await io.write(array, path, "yx")
        assert (files / name).is_file()
        np.testing.assert_array_equal(await io.read(path), array)
    inner = f"{files.name}/sub/../inner.tif"  # .. that stays inside is fine
    await io.write(array, inner, "yx")
    assert (files / "inner.tif").is_file()
    with pytest.raises(Exception, match="an allowed folder itself"):
        await io.write(array, str(files.parent), "yx")  # the files folder itself is never replaced


@pytest.fixture(scope="module")
def extra_hub(tmp_path_factory):
    """A hub whose io may also use two folders of SCOPEFLOW_IO_DIRS."""
    tmp = tmp_path_factory.mktemp("io-hub")
    first, second = tmp / "first", tmp / "second"
    first.mkdir()
    second.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SCOPEFLOW_IO_DIRS", os.pathsep.join([str(first), "", str(second)]))
        env.delenv("SCOPEFLOW_FILES_DIR", raising=False)
        running = start_hub(tmp)
    yield running, first, second
    stop_hub(running)


async def test_io_uses_the_folders_the_user_configured(extra_hub):
    running, first, second = extra_hub
    server = await connect(running.url, token=running.token)
    try:
        io = await server.get_plugin("io")
        array = np.arange(6, dtype=np.uint16).reshape(2, 3)
        for folder in (first, second, running.data_dir / "files"):
            await io.write(array, str(folder / "x.tif"), "yx")
            np.testing.assert_array_equal(await io.read(str(folder / "x.tif")), array)
        await io.write(array, "relative.tif", "yx")  # relative: still the files folder
        assert (running.data_dir / "files" / "relative.tif").is_file()
        allowed = f"{running.data_dir / 'files'}, {first}, {second}"
        with pytest.raises(Exception, match=f"allowed here: {allowed}"):
            await io.write(array, str(first.parent / "x.tif"), "yx")
        (first / "back").symlink_to(first.parent)
        with pytest.raises(Exception, match="outside the folders allowed"):
            await io.write(array, str(first / "back" / "x.tif"), "yx")
        assert not (first.parent / "x.tif").exists()
    finally:
        await server.disconnect()


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


def test_io_folders_come_from_the_hub_and_the_user(tmp_path, monkeypatch):
    """Which folders io allows, from its kernel's environment (unit: the plugin's module, no hub)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "image_io_under_test", Path(__file__).parents[2] / "server/scopeflow/builtin_plugins/image_io.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data_dir = tmp_path / "data"
    for name in ("files", "runs", "runtime"):
        (data_dir / name).mkdir(parents=True)
    for name in ("SCOPEFLOW_FILES_DIR", "SCOPEFLOW_IO_DIRS", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert module.folders() == []  # nothing known: nothing allowed
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(data_dir / "runtime"))  # as `scopeflow serve` sets it
    assert module.folders() == [data_dir / "files"]
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # not a data dir's: no files folder
    (tmp_path / "files").mkdir()
    assert module.folders() == []
    monkeypatch.setenv("SCOPEFLOW_FILES_DIR", str(tmp_path / "files"))  # said outright: that one
    extra = os.pathsep.join([str(tmp_path / "a"), "", "relative/dir", " ", str(tmp_path / "b")])
    monkeypatch.setenv("SCOPEFLOW_IO_DIRS", extra)  # empty and relative entries count for nothing
    assert module.folders() == [tmp_path / "files", tmp_path / "a", tmp_path / "b"]
    with pytest.raises(PermissionError, match=f"allowed here: {tmp_path / 'files'}, .*SCOPEFLOW_IO_DIRS"):
        module._allowed(str(data_dir / "files" / "x.tif"))
    assert module._allowed("x.tif", write=True) == tmp_path / "files" / "x.tif"
