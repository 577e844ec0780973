"""Workflow results on disk: TIFF/PNG/CSV/JSON, each with provenance that reads back."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import tifffile

from scopeflow._util import content_hash
from scopeflow.cli import provenance
from scopeflow.cli.results import as_table, table_to_csv, write_result
from scopeflow.images import formats as data

DOC = {"format": "scopeflow.workflow", "version": 1, "title": "t", "nodes": [], "edges": [], "outputs": []}
RUN = {
    "id": "run-1",
    "state": "done",
    "seconds": 0.5,
    "nodes": {"seg": {"state": "done", "cached": True}},
    "outputs": {"labels": {"node": "seg", "port": "result", "key": "k" * 64}},
    "plugins": {"otsu-watershed": {"version": "0.1.0", "sha256": "a" * 64}},
}


def meta(output: str = "labels") -> dict:
    inputs = {"image": {"source": "x.tif", "sha256": content_hash(np.zeros(3))}}
    return provenance.record(DOC, RUN, inputs, output)


def test_image_is_an_ome_tiff_with_its_provenance(tmp_path):
    labels = np.arange(64 * 80, dtype=np.int32).reshape(64, 80)
    [path] = write_result(labels, tmp_path, "labels", meta(), axes="yx")
    assert path.name == "labels.tif"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.series[0].axes == "YX"
        np.testing.assert_array_equal(tif.asarray(), labels)
    found = data.read_provenance(path)
    assert found is not None
    assert found["format"] == "scopeflow.provenance"
    assert found["workflow"] == DOC and found["workflow_sha256"] == provenance.workflow_hash(DOC)
    assert found["plugins"]["otsu-watershed"]["sha256"] == "a" * 64
    assert found["inputs"]["image"]["sha256"] == content_hash(np.zeros(3))
    assert found["output"] == {
        "name": "labels",
        "node": "seg",
        "port": "result",
        "key": "k" * 64,
        "cached": True,
    }
    assert found["scopeflow"]


def test_image_axes_fall_back_to_the_dimensions(tmp_path):
    stack = np.zeros((3, 16, 16), np.uint16)
    [path] = write_result(stack, tmp_path, "stack", meta(), axes="yx")  # wrong length: ignored
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "ZYX"


def test_png_on_request_carries_the_provenance_in_a_text_chunk(tmp_path):
    image = (np.arange(32 * 32) % 200).astype(np.uint8).reshape(32, 32)
    [path] = write_result(image, tmp_path, "image", meta(), axes="yx", image_format="png")
    assert path.suffix == ".png"
    assert b"iTXt" in path.read_bytes()[:200]
    np.testing.assert_array_equal(data.read_image(path)[0], image)
    assert data.read_provenance(path)["output"]["name"] == "labels"
    stack = np.zeros((5, 8, 8), np.uint8)  # not a picture: stays TIFF
    [path] = write_result(stack, tmp_path, "stack", meta(), axes="zyx", image_format="png")
    assert path.suffix == ".tif"


def test_table_is_csv_with_a_provenance_sidecar(tmp_path):
    table = {
        "label": [1, 2],
        "area": [10, 12.5],
        "bbox": [[0, 0, 3, 4], [1, 1, 5, 5]],
        "note": ["=1+1", "ok"],
    }
    paths = write_result(table, tmp_path, "nuclei", meta())
    assert [p.name for p in paths] == ["nuclei.csv", "nuclei.provenance.json"]
    rows = list(csv.reader(io.StringIO(paths[0].read_text())))
    assert rows[0] == ["label", "area", "bbox", "note"]
    assert rows[1] == ["1", "10", "0,0,3,4", "'=1+1"]  # formulas are defused, as the web app's export does
    assert rows[2] == ["2", "12.5", "1,1,5,5", "ok"]
    assert data.read_provenance(paths[0])["workflow"] == DOC


def test_rows_and_values(tmp_path):
    rows = [{"id": "a", "n": 1}, {"id": "b", "extra": True}]
    assert as_table(rows) == (["id", "n", "extra"], [["a", 1, None], ["b", None, True]])
    assert table_to_csv(*as_table(rows)) == "id,n,extra\na,1,\nb,,true\n"
    assert as_table({"a": [1], "b": [1, 2]}) is None
    paths = write_result({"a": [1], "b": [2]}, tmp_path, "ordered", meta(), columns=["b", "a"])
    assert paths[0].read_text() == "b,a\n2,1\n"  # unequal columns are not a table
    paths = write_result({"count": 3, "warnings": []}, tmp_path, "stats", meta())
    assert paths[0].name == "stats.json"
    assert json.loads(paths[0].read_text()) == {"count": 3, "warnings": []}
    assert data.read_provenance(paths[0])["output"]["name"] == "labels"
    assert data.read_provenance(tmp_path / "stats.provenance.json") is not None


def test_files_without_provenance_give_none(tmp_path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, 4), np.uint8))
    assert data.read_provenance(plain) is None
    (tmp_path / "t.csv").write_text("a\n1\n")
    assert data.read_provenance(tmp_path / "t.csv") is None


def test_content_hash_depends_on_dtype_shape_and_bytes():
    a = np.arange(6, dtype=np.uint16)
    assert content_hash(a) == content_hash(a.copy())
    assert content_hash(a) != content_hash(a.reshape(2, 3))
    assert content_hash(a) != content_hash(a.astype(np.int16))
    assert content_hash(a) == content_hash(a.astype(">u2"))  # same values
    assert content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
