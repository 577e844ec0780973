"""``scopeflow run`` end to end: a subprocess, a real hub (its own, or one given by --hub), real kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from scopeflow._util import content_hash
from scopeflow.cli import provenance
from scopeflow.cli.batch import STATE_FILE, BatchState
from scopeflow.images import formats as data
from scopeflow.workflows import gallery

GALLERY = "smooth-threshold-measure"


def scopeflow_run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scopeflow.cli.main", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )


def nuclei(path: Path, seed: int, size: int = 96) -> np.ndarray:
    """A small image of bright discs on a dark noisy background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    image = rng.normal(100, 10, (size, size))
    for _ in range(6):
        cy, cx = rng.uniform(12, size - 12, 2)
        image[(y - cy) ** 2 + (x - cx) ** 2 < 36] += 800
    array = np.clip(image, 0, 65535).astype(np.uint16)
    tifffile.imwrite(path, array, photometric="minisblack")
    return array


@pytest.mark.hub
def test_gallery_workflow_runs_on_its_own_hub_then_from_the_cache(tmp_path):
    data_dir = tmp_path / "data"
    first = scopeflow_run(GALLERY, "--output", str(tmp_path / "one"), "--data-dir", str(data_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "done in" in first.stdout and "3 done" in first.stdout
    assert "smooth: done" in first.stderr  # not a terminal: one line per node event
    out = tmp_path / "one"
    assert {p.name for p in out.iterdir()} >= {"smoothed.tif", "labels.tif", "nuclei.csv", "run.json"}

    labels, axes = data.read_image(out / "labels.tif")
    assert axes == "yx" and labels.shape == (512, 512) and labels.max() > 20
    found = data.read_provenance(out / "labels.tif")
    doc = json.loads(gallery.find(GALLERY).read_text())
    assert found["workflow"] == doc
    assert found["workflow_sha256"] == provenance.workflow_hash(doc)
    assert found["plugins"]["otsu-watershed"]["sha256"] == doc["plugins"]["otsu-watershed"]["sha256"]
    sample, _ = data.load_sample("nuclei-2d")
    assert found["inputs"]["image"] == {
        "source": "default",
        "default": {"sample": "nuclei-2d"},
        "sha256": content_hash(sample),
    }
    assert found["inputs"]["sigma"]["default"] == 2.0
    assert found["output"]["cached"] is False
    table = data.read_provenance(out / "nuclei.csv")
    assert table["output"]["name"] == "nuclei" and (out / "nuclei.provenance.json").is_file()
    header = (out / "nuclei.csv").read_text().splitlines()[0]
    assert header.startswith("label,area,")

    second = scopeflow_run(
        GALLERY, "--output", str(tmp_path / "two"), "--data-dir", str(data_dir), "--format", "png"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "(3 cached)" in second.stdout
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert all(node["cached"] for node in record["nodes"].values())
    assert data.read_provenance(tmp_path / "two" / "labels.png")["output"]["cached"] is True
    again, _ = data.read_image(tmp_path / "two" / "labels.png")  # labels < 65536: exact in a 16-bit PNG
    np.testing.assert_array_equal(again, labels)


def test_batch_over_a_folder_with_a_broken_file_and_resume(hub, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index, name in enumerate(("a", "b")):
        nuclei(folder / f"{name}.tif", seed=index)
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not an image")
    out = tmp_path / "out"
    args = [GALLERY, "--input", f"image={folder}/*.tif", "--input", "sigma=1.0", "--output", str(out)]
    args += ["--hub", hub.url, "--token", hub.token]

    first = scopeflow_run(*args)
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("[1/3] a.tif: done in") and lines[0].endswith("→ a/")
    assert lines[1].startswith("[2/3] b.tif: done in")
    assert lines[2].startswith("[3/3] broken.tif: failed: broken.tif: ")
    assert "3 items: 2 done, 1 failed, 0 skipped" in lines[3]
    assert "1 of 3 items failed" in first.stderr
    for name in ("a", "b"):
        assert (out / name / "labels.tif").is_file() and (out / name / "nuclei.csv").is_file()
        found = data.read_provenance(out / name / "labels.tif")
        original, _ = data.read_image(folder / f"{name}.tif")
        assert found["inputs"]["image"]["sha256"] == content_hash(original)
        assert found["inputs"]["image"]["source"] == str(folder / f"{name}.tif")
        assert found["inputs"]["sigma"]["value"] == 1.0
    assert not (out / "broken").exists()
    state = json.loads((out / STATE_FILE).read_text())
    assert sorted(Path(item["item"]).name for item in state["items"].values()) == ["a.tif", "b.tif"]

    second = scopeflow_run(*args)
    assert second.returncode == 1
    assert "[1/3] a.tif: skipped" in second.stdout and "[2/3] b.tif: skipped" in second.stdout
    assert "3 items: 0 done, 1 failed, 2 skipped" in second.stdout

    (folder / "broken.tif").unlink()  # fixed: the batch now finishes, the others are still skipped
    nuclei(folder / "c.tif", seed=7)
    third = scopeflow_run(*args)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "3 items: 1 done, 0 failed, 2 skipped" in third.stdout

    changed = scopeflow_run(*[a if a != "sigma=1.0" else "sigma=1.5" for a in args])
    assert "3 items: 3 done, 0 failed, 0 skipped" in changed.stdout  # other inputs: other results


def test_strict_refuses_a_stale_pin_and_the_default_warns(hub, tmp_path):
    doc = json.loads(gallery.find(GALLERY).read_text())
    doc["plugins"]["gaussian"]["sha256"] = "0" * 64
    path = tmp_path / "stale.json"
    path.write_text(json.dumps(doc))
    hub_args = ["--hub", hub.url, "--token", hub.token]
    strict = scopeflow_run(str(path), "--output", str(tmp_path / "s"), "--strict", *hub_args)
    assert strict.returncode == 2
    assert "plugin gaussian is changed" in strict.stderr and "--strict" in strict.stderr
    assert not (tmp_path / "s").exists()
    loose = scopeflow_run(str(path), "--output", str(tmp_path / "l"), *hub_args)
    assert loose.returncode == 0, loose.stdout + loose.stderr
    assert "warning: plugin gaussian is changed" in loose.stderr
    ran = data.read_provenance(tmp_path / "l" / "smoothed.tif")["plugins"]["gaussian"]["sha256"]
    assert ran == gallery.pins()["gaussian"]["sha256"]  # the file says what really ran


def test_an_invalid_workflow_is_refused_naming_node_and_field(hub, tmp_path):
    doc = json.loads(gallery.find(GALLERY).read_text())
    doc["nodes"][1]["params"]["min_distance"] = 500
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    result = scopeflow_run(str(path), "--output", str(tmp_path / "o"), "--hub", hub.url, "--token", hub.token)
    assert result.returncode == 2
    assert "the workflow is not valid" in result.stderr
    assert "node segment, field nodes[1].params.min_distance" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "scopeflow.workflow",', "not valid JSON: Expecting"),
        ("[1, 2]", "a workflow is a JSON object, not list"),
    ],
)
def test_a_file_that_is_not_a_workflow_is_refused_before_any_hub_starts(tmp_path, text, message):
    path = tmp_path / "w.json"
    path.write_text(text)
    result = scopeflow_run(str(path), "--output", str(tmp_path / "o"), timeout=60)
    assert result.returncode == 2 and message in result.stderr


def test_unknown_inputs_and_workflows_are_named(tmp_path):
    result = scopeflow_run(GALLERY, "--input", "colour=3", "--output", str(tmp_path), timeout=60)
    assert result.returncode == 2 and "no input of that name (its inputs: image, sigma)" in result.stderr
    result = scopeflow_run("no-such-workflow", "--output", str(tmp_path), timeout=60)
    assert result.returncode == 2 and GALLERY in result.stderr


def test_batch_state_keeps_finished_items_while_their_files_exist(tmp_path):
    state = BatchState(tmp_path)
    key = BatchState.key("w" * 64, "i" * 64, {"input": "image"})
    assert key != BatchState.key("w" * 64, "i" * 64, {"input": "other"})
    assert state.finished(key) is None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.tif").write_bytes(b"x")
    state.record(key, {"item": "a.tif", "folder": "a", "files": ["a/x.tif"]})
    assert BatchState(tmp_path).finished(key)["item"] == "a.tif"
    (tmp_path / "a" / "x.tif").unlink()  # its result is gone: run it again
    assert BatchState(tmp_path).finished(key) is None
    # a new file with the same name (another folder) never gets a finished item's output folder
    state = BatchState(tmp_path)
    other = BatchState.key("w" * 64, "j" * 64, {"input": "image"})
    assert state.folder_for(other, "a", set()) == "a-2"
    assert state.folder_for(key, "renamed", set()) == "a"  # an item keeps the folder it had
    assert state.folder_for(other, "b", {"b"}) == "b-2"  # nor one given out in this invocation
    (tmp_path / STATE_FILE).write_text("{not json")
    assert BatchState(tmp_path).items == {}


def test_a_node_that_fails_is_named_and_the_other_outputs_are_kept(hub, tmp_path):
    doc = json.loads(gallery.find(GALLERY).read_text())
    for edge in doc["edges"]:
        if edge["to"] == ["measure", "labels"]:
            edge["from"] = ["smooth", "result"]  # float pixels are no labels: the measure node raises
    path = tmp_path / "fails.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "out"
    result = scopeflow_run(str(path), "--output", str(out), "--hub", hub.url, "--token", hub.token)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: node measure:" in result.stderr and "whole numbers" in result.stderr
    assert "measure: error" in result.stderr  # the node's own line
    assert (out / "smoothed.tif").is_file() and (out / "labels.tif").is_file()
    assert not (out / "nuclei.csv").exists()
    assert json.loads((out / "run.json").read_text())["nodes"]["measure"]["state"] == "error"
