"""Workflow inputs from the command line: files, batch patterns, samples, JSON values, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from scopeflow._util import content_hash
from scopeflow.cli.inputs import InputError, defaults, parse

DOC = {
    "inputs": [
        {"name": "image", "kind": "ndarray", "axes": "yx", "default": {"sample": "nuclei-2d"}},
        {"name": "sigma", "kind": "value", "default": 2.0},
        {"name": "table", "kind": "table"},
    ]
}


def tiff(path, shape=(64, 64)):
    array = np.random.default_rng(0).integers(0, 1000, shape, dtype=np.uint16)
    tifffile.imwrite(path, array, photometric="minisblack")
    return array


def test_a_file_a_json_value_and_a_sample(tmp_path):
    array = tiff(tmp_path / "a.tif")
    parsed = parse([f"image={tmp_path / 'a.tif'}", "sigma=3.5"], DOC)
    assert parsed.batch_name is None
    np.testing.assert_array_equal(parsed.fixed["image"].value, array)
    assert parsed.fixed["image"].provenance["sha256"] == content_hash(array)
    assert parsed.fixed["sigma"].value == 3.5
    parsed = parse(["image=sample:nuclei-2d", "sigma=wide"], DOC)
    assert parsed.fixed["image"].value == {"sample": "nuclei-2d"}
    assert parsed.fixed["sigma"].value == "wide"  # not JSON: a string


def test_a_csv_table_has_numbers_where_its_columns_hold_numbers(tmp_path):
    (tmp_path / "t.csv").write_text("label,area,mean,name\n1,10,0.5,a\n2,,1e3,7\n")
    parsed = parse([f"table={tmp_path / 't.csv'}"], DOC)
    assert parsed.fixed["table"].value == {
        "label": [1, 2],
        "area": [10, None],
        "mean": [0.5, 1000.0],
        "name": ["a", "7"],
    }


def test_a_pattern_makes_a_batch(tmp_path):
    for name in ("b.tif", "a.tif", "c.tif"):
        tiff(tmp_path / name)
    parsed = parse([f"image={tmp_path}/*.tif"], DOC)
    assert parsed.batch_name == "image"
    assert [p.name for p in parsed.batch_files] == ["a.tif", "b.tif", "c.tif"]


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("image", "write NAME=VALUE"),
        ("nothing=1", "no input of that name (its inputs: image, sigma, table)"),
        ("image=/no/such/file.tif", "no such file"),
        ("image=/no/such/*.tif", "no file matches"),
        ("image=sample:unknown", "no sample 'unknown'"),
    ],
)
def test_bad_inputs_are_named(pair, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse([pair], DOC)


def test_axes_and_unreadable_files_are_refused(tmp_path):
    tiff(tmp_path / "stack.tif", (3, 16, 16))
    with pytest.raises(InputError, match="axes are zyx, input image expects yx"):
        parse([f"image={tmp_path / 'stack.tif'}"], DOC)
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match=r"broken\.tif"):
        parse([f"image={tmp_path / 'broken.tif'}"], DOC)


def test_defaults_are_recorded_with_their_hashes():
    found = defaults(DOC, {})
    assert found["image"]["source"] == "default" and len(found["image"]["sha256"]) == 64
    assert found["sigma"]["sha256"] == content_hash(2.0)
    assert "table" not in found
