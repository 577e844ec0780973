"""Annotations through a real hub: label images saved as TIFF beside the image they belong to (keyed by the
image's content hash), listed, read back pixel for pixel, overwritten, deleted; bad input is a clear 4xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import HubProcess
from scopeflow._util import content_hash
from scopeflow.images import formats as data

pytestmark = pytest.mark.hub


def call(
    hub: HubProcess, method: str, path: str, body: bytes | None = None, token: str | None = "default"
) -> tuple[int, bytes]:
    headers = {"Content-Type": "image/tiff"} if body is not None else {}
    if token:
        headers["Authorization"] = f"token {hub.token if token == 'default' else token}"
    req = urllib.request.Request(hub.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def tiff(array: np.ndarray, axes: str | None = None) -> bytes:
    made = data.write_image(array, "tiff", axes=axes)
    assert made is not None
    return made


def message(body: bytes) -> str:
    return str(json.loads(body).get("message", ""))


def put_query(shape: tuple[int, ...], axes: str, name: str = "cells.tif") -> str:
    return f"image_shape={','.join(map(str, shape))}&image_axes={axes}&image_name={name}"


@pytest.fixture
def image() -> np.ndarray:
    return (np.arange(3 * 40 * 50, dtype=np.uint16) % 977).reshape(3, 40, 50)  # zyx


def test_round_trip_overwrite_list_delete(hub: HubProcess, image: np.ndarray) -> None:
    key = content_hash(image)
    labels = np.zeros(image.shape, np.int32)
    labels[1, 5:15, 10:30] = 7
    labels[2, 20:25, 0:5] = 2**31 - 1  # the whole int32 range survives
    where = f"/api/annotations/{key}/nuclei"
    status, body = call(hub, "PUT", f"{where}?{put_query(image.shape, 'zyx')}", tiff(labels, "zyx"))
    assert status == 201, body
    entry = json.loads(body)
    assert entry["image"] == key and entry["name"] == "nuclei" and entry["shape"] == [3, 40, 50]
    assert entry["axes"] == "zyx" and entry["dtype"] == "int32" and entry["image_name"] == "cells.tif"
    # stored under the data dir, as TIFF, and read back exactly
    assert (hub.data_dir / "annotations" / key / "nuclei.tif").is_file()
    status, body = call(hub, "GET", where)
    assert status == 200 and body[:4] in (b"II*\x00", b"II+\x00")
    back, axes = data.read_image(body)
    assert axes == "zyx" and back.dtype == np.int32 and np.array_equal(back, labels)
    # overwrite: 200, the new pixels; a second name beside it
    labels[0, 0, 0] = 3
    status, _ = call(hub, "PUT", f"{where}?{put_query(image.shape, 'zyx')}", tiff(labels, "zyx"))
    assert status == 200
    assert np.array_equal(data.read_image(call(hub, "GET", where)[1])[0], labels)
    status, _ = call(
        hub, "PUT", f"/api/annotations/{key}/second?{put_query(image.shape, 'zyx')}", tiff(labels)
    )
    assert status == 201  # a TIFF without axes is taken too when its shape fits
    listed = hub.json(f"/api/annotations?image={key}")
    assert sorted(e["name"] for e in listed) == ["nuclei", "second"]
    assert all(e["image"] == key for e in hub.json("/api/annotations"))
    other = content_hash(image + 1)
    assert hub.json(f"/api/annotations?image={other}") == []
    # delete: gone from the listing and the disk; a second delete is a 404
    assert call(hub, "DELETE", where)[0] == 204
    assert [e["name"] for e in hub.json(f"/api/annotations?image={key}")] == ["second"]
    assert call(hub, "DELETE", where)[0] == 404
    assert call(hub, "GET", where)[0] == 404
    assert call(hub, "DELETE", f"/api/annotations/{key}/second")[0] == 204
    assert not (hub.data_dir / "annotations" / key).exists()  # an image without annotations leaves nothing


def test_labels_of_a_multichannel_image_have_no_channel_axis(hub: HubProcess) -> None:
    image = np.ones((2, 4, 16, 16), np.uint16)  # czyx
    key = content_hash(image)
    labels = np.zeros((4, 16, 16), np.int32)
    labels[2, 3:6, 3:6] = 1
    where = f"/api/annotations/{key}/cells?{put_query(image.shape, 'czyx')}"
    assert call(hub, "PUT", where, tiff(labels, "zyx"))[0] == 201
    status, body = call(hub, "PUT", where, tiff(np.zeros((2, 4, 16, 16), np.int32), "czyx"))
    assert status == 400 and "do not fit the image: its labels are zyx [4, 16, 16]" in message(body)
    assert hub.json(f"/api/annotations?image={key}")[0]["image_axes"] == "czyx"


def test_malformed_input_is_a_clear_4xx(hub: HubProcess, image: np.ndarray) -> None:
    key = content_hash(image)
    ok = put_query(image.shape, "zyx")
    good = np.zeros(image.shape, np.int32)

    def put(path: str, body: bytes) -> tuple[int, str]:
        status, raw = call(hub, "PUT", path, body)
        return status, message(raw) if raw.startswith(b"{") else raw.decode(errors="replace")

    where = f"/api/annotations/{key}/labels"
    status, text = put(f"{where}?{ok}", tiff(np.zeros((3, 40, 49), np.int32), "zyx"))
    assert status == 400 and "[3, 40, 49] do not fit the image" in text
    status, text = put(f"{where}?{ok}", tiff(good.astype(np.uint16), "zyx"))
    assert status == 400 and "labels are int32" in text and "uint16" in text
    status, text = put(f"{where}?{ok}", tiff(good.astype(np.float32), "zyx"))
    assert status == 400 and "float32" in text
    status, text = put(f"{where}?{ok}", b"\x89PNG\r\n\x1a\n not a tiff")
    assert status == 400 and "not a TIFF" in text
    status, text = put(f"{where}?{ok}", b"II*\x00 a broken one")
    assert status == 400 and text.startswith("labels.tif: ")
    status, text = put(f"{where}?{ok}", b"")
    assert status == 400 and "empty" in text
    status, text = put(f"{where}?image_shape=3,40,50&image_axes=xyz", tiff(good))
    assert status == 400 and "image axes 'xyz'" in text
    status, text = put(f"{where}?image_shape=3,40&image_axes=zyx", tiff(good))
    assert status == 400 and "do not fit an image of shape" in text
    status, text = put(f"{where}?image_shape=-3,40,50&image_axes=zyx", tiff(good))
    assert status == 400 and "image_shape" in text
    status, text = put(f"{where}?image_shape=100000,100000,100000&image_axes=zyx", tiff(good))
    assert status == 413 and "the limit is" in text
    # the first save fixes the image's shape: another one under the same key is a conflict
    assert put(f"{where}?{ok}", tiff(good, "zyx"))[0] == 201
    status, text = put(f"/api/annotations/{key}/other?image_shape=3,50,40&image_axes=zyx", tiff(good))
    assert status == 409 and "was annotated as zyx [3, 40, 50]" in text
    # unknown ids, and path tricks: never a file outside, never a 5xx
    unknown = content_hash(np.zeros(3))
    assert call(hub, "GET", f"/api/annotations/{unknown}/labels")[0] == 404
    assert call(hub, "GET", f"/api/annotations/{key}/nothing")[0] == 404
    outside = hub.data_dir / "outside.tif"
    outside.write_bytes(tiff(good))
    for image_part, name_part in [
        ("..", "outside"),
        ("%2E%2E", "outside"),
        (key, "..%2F..%2Foutside"),
        (key, "%2E%2E"),
        (key, ".hidden"),
        (key.upper(), "labels"),
        (key[:-1], "labels"),
        (key, "a" * 200),
        (key, "labels%00"),
    ]:
        for method in ("GET", "PUT", "DELETE"):
            path = f"/api/annotations/{image_part}/{name_part}"
            status, raw = call(hub, method, f"{path}?{ok}", tiff(good) if method == "PUT" else None)
            assert 400 <= status < 500, (method, path, status, raw[:200])
    status, raw = call(hub, "GET", "/api/annotations/../../outside")
    assert 400 <= status < 500
    status, raw = call(hub, "GET", "/api/annotations?image=../x")
    assert status == 400 and "not an image key" in message(raw)
    assert outside.read_bytes() == tiff(good)
    assert all(len(p.name) == 64 for p in (hub.data_dir / "annotations").iterdir())
    assert not (hub.data_dir / "annotations" / key / "outside.tif").exists()


def test_no_token_no_annotations(hub: HubProcess, image: np.ndarray) -> None:
    key = content_hash(image + 5)
    where = f"/api/annotations/{key}/labels"
    labels = tiff(np.zeros(image.shape, np.int32))
    for method, path, body in [
        ("GET", "/api/annotations", None),
        ("GET", where, None),
        ("PUT", f"{where}?{put_query(image.shape, 'zyx')}", labels),
        ("DELETE", where, None),
    ]:
        for token in (None, "wrong-token"):
            status, _ = call(hub, method, path, body, token=token)
            assert status in (401, 403), (method, path, token, status)
    assert not (Path(hub.data_dir) / "annotations" / key / "labels.tif").exists()
