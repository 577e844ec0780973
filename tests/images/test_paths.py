"""No file-taking door leads out of its place: /api/images/write takes no path at all, and
``formats.confine`` (what the io plugin checks its paths with) keeps every path form inside its folders."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from scopeflow.images import formats as data


def post(hub, query: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(  # the query goes as written: %2F and %00 stay encoded on the wire
        f"{hub.url}/api/images/write?{query}",
        data=body,
        method="POST",
        headers={"Authorization": f"token {hub.token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# -- write_image: a str is a format's name, never a path ------------------------------------------------
def test_write_image_never_takes_a_string_for_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image = np.zeros((2, 2), np.uint8)
    for target in (str(tmp_path / "x.png"), "x.png", "../x.png", "x.tif", "png/x.png", "tiff\x00", ""):
        with pytest.raises(data.ImageError, match="unknown image format"):
            data.write_image(image, target)
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "x.png").exists()
    assert data.write_image(image, "PNG")[:8] == b"\x89PNG\r\n\x1a\n"  # the names themselves still work
    assert data.write_image(image, "tif")[:4] == b"II*\x00"
    assert data.write_image(image, tmp_path / "ok.png") is None and (tmp_path / "ok.png").is_file()
    with pytest.raises(data.ImageError, match=r"x\.jpg: write images to a \.tif"):
        data.write_image(image, tmp_path / "x.jpg")
    with pytest.raises(TypeError):
        data.write_image(image, b"/tmp/x.png")  # type: ignore[arg-type]


def test_image_format_names_only():
    assert [data.image_format(n) for n in ("tiff", "TIF", "png")] == ["tiff", "tiff", "png"]
    for name in ("/etc/x.png", "png ", "jpeg", "", "x" * 500):
        with pytest.raises(data.ImageError, match="use tiff or png"):
            data.image_format(name)


# -- confine: every path form ----------------------------------------------------------------------------
@pytest.fixture
def place(tmp_path) -> tuple[Path, Path]:
    """(files, outside): an allowed folder and a folder beside it with a file that must stay untouched."""
    files, outside = tmp_path / "files", tmp_path / "outside"
    files.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("keep")
    return files, outside


def test_confine_allows_paths_inside(place):
    files, _ = place
    (files / "sub").mkdir()
    for write in (False, True):
        assert data.confine("a.tif", [files], write=write) == files / "a.tif"
        assert data.confine("sub/a.tif", [files], write=write) == files / "sub" / "a.tif"
        assert data.confine("sub/../a.tif", [files], write=write) == files / "a.tif"
        assert data.confine(str(files / "sub" / "a.tif"), [files], write=write) == files / "sub" / "a.tif"
        assert data.confine(files / "a.tif", [str(files)], write=write) == files / "a.tif"  # PathLike too
        assert data.confine("..%2Fa.tif", [files], write=write) == files / "..%2Fa.tif"  # a name, not a path
    assert data.confine(str(files), [files]) == files  # the folder itself: readable (an OME-Zarr folder)
    with pytest.raises(PermissionError, match="an allowed folder itself"):
        data.confine(str(files), [files], write=True)  # never replaced
    with pytest.raises(PermissionError, match="an allowed folder itself"):
        data.confine("sub/..", [files], write=True)


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize(
    "form",
    [
        "absolute",
        "dotdot",
        "dotdot-deep",
        "dotdot-absolute",
        "sibling-prefix",
        "home",
        "symlink-file",
        "symlink-dir",
        "symlink-chain",
        "symlink-dotdot",
    ],
)
def test_confine_refuses_every_way_out(place, form, write):
    files, outside = place
    (outside.parent / "files-evil").mkdir()
    (files / "to-secret").symlink_to(outside / "secret.txt")
    (files / "to-outside").symlink_to(outside)
    (files / "hop").symlink_to(files / "to-outside")
    (files / "up").symlink_to("..")
    path = {
        "absolute": str(outside / "secret.txt"),
        "dotdot": "../outside/secret.txt",
        "dotdot-deep": "a/b/../../../outside/secret.txt",
        "dotdot-absolute": str(files / ".." / "outside" / "secret.txt"),
        "sibling-prefix": str(outside.parent / "files-evil" / "x.tif"),  # starts with the folder's text
        "home": "~/x.tif",
        "symlink-file": "to-secret",
        "symlink-dir": "to-outside/secret.txt",
        "symlink-chain": "hop/new.tif",
        "symlink-dotdot": "up/outside/secret.txt",
    }[form]
    with pytest.raises(PermissionError, match=f"outside the folders allowed here: {files}"):
        data.confine(path, [files], write=write)
    assert (outside / "secret.txt").read_text() == "keep"


def test_confine_refuses_nul_empty_and_non_text(place):
    files, _ = place
    for bad in ("a\x00.tif", "\x00", "../\x00", str(files / "a.tif\x00.png")):
        with pytest.raises(ValueError, match="NUL"):
            data.confine(bad, [files])
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="empty"):
            data.confine(empty, [files])
    for other in (b"a.tif", 5, None, ["a.tif"]):
        with pytest.raises(TypeError):
            data.confine(other, [files])  # type: ignore[arg-type]


def test_confine_with_several_folders_and_linked_folders(place, tmp_path):
    files, outside = place
    extra = tmp_path / "extra"
    extra.mkdir()
    linked = tmp_path / "linked"
    linked.symlink_to(extra)  # a configured folder that is itself a link: resolved too
    assert data.confine("a.tif", [files, linked]) == files / "a.tif"  # relative: from the first
    assert data.confine(str(linked / "b.tif"), [files, linked]) == extra / "b.tif"
    assert data.confine(str(extra / "b.tif"), [files, linked]) == extra / "b.tif"
    with pytest.raises(PermissionError, match=f"{files}, {extra}"):
        data.confine(str(outside / "secret.txt"), [files, linked])
    with pytest.raises(PermissionError, match="no folder is allowed here"):
        data.confine("a.tif", [])
    with pytest.raises(PermissionError, match="no folder is allowed here"):
        data.confine(str(files / "a.tif"), [])


# -- the hub's door ----------------------------------------------------------------------------------------
PATH_FORMS = [
    "{outside}/victim.png",  # absolute
    "{outside_q}%2Fvictim.png",  # absolute, slashes encoded
    "../victim.png",
    "..%2F..%2Fvictim.png",
    "..%2f..%2fvictim.png",
    "%2E%2E%2Fvictim.png",
    "victim.png",  # relative: the hub's working directory, or its files folder
    "files%2Fvictim.png",
    "{outside}/victim.png%00",
    "png%00{outside}/victim.png",
    "png%00",  # tornado takes control characters out: this is "png", harmless
    "{outside}/victim.tif",
    "file:{outside}/victim.png",
    "tiff/../png",
]


@pytest.mark.parametrize("form", PATH_FORMS)
def test_image_write_takes_no_path(hub, tmp_path, form):
    outside = tmp_path
    for name in ("victim.png", "victim.tif"):
        (outside / name).write_bytes(b"untouched")
    watched = [hub.data_dir, hub.data_dir.parent, hub.data_dir / "files", outside]  # the hub runs in .parent
    listing = {d: sorted(os.listdir(d)) for d in watched}
    fmt = form.format(outside=outside, outside_q=str(outside).replace("/", "%2F"))
    image = np.arange(4, dtype=np.uint8).reshape(2, 2)
    status, body = post(hub, f"format={fmt}&shape=2,2&dtype=uint8", image.tobytes())
    if form == "png%00":
        assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert status == 400, body[:300]
        assert b"format must be tiff or png" in body
    for name in ("victim.png", "victim.tif"):
        assert (outside / name).read_bytes() == b"untouched"
    assert {d: sorted(os.listdir(d)) for d in watched} == listing


def test_image_write_formats_still_work(hub):
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    for fmt, magic in (("tiff", b"II*\x00"), ("png", b"\x89PNG\r\n\x1a\n")):
        status, body = post(hub, f"format={fmt}&shape=3,4&dtype=uint16&axes=yx", image.tobytes())
        assert status == 200 and body.startswith(magic)
        assert np.array_equal(data.read_image(body)[0], image)
    status, body = post(hub, "shape=3,4&dtype=uint16", image.tobytes())  # tiff by default
    assert status == 200 and body.startswith(b"II*\x00")
    for fmt in ("TIFF", "tif", "jpeg", ""):  # exactly the two names of the API
        assert post(hub, f"format={fmt}&shape=3,4&dtype=uint16", image.tobytes())[0] == 400
