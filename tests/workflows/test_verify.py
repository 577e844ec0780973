"""*Verify*: a plugin's declared test cases run in its kernel through a real hub; the report says pass or
fail, by which measure, and the largest difference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.cases import VerifyCase
from scopeflow.plugins.manifest import ManifestError, parse_plugin
from scopeflow.workflows.verify import close, compare, label_f1, psnr_of

BUILTIN = [
    "hello",
    "gaussian",
    "io",
    "measure",
    "sample-data",
    "otsu-watershed",
    "nl-means",
    "noise2void",
    "nuclei-segmentation",
]


@pytest.mark.parametrize("plugin", BUILTIN)
def test_every_builtin_plugin_passes_its_cases(hub: HubProcess, plugin: str) -> None:
    report = hub.json(f"/api/plugins/{plugin}/verify", "POST")
    assert report["plugin"] == plugin and report["cases"], report
    for case in report["cases"]:
        assert case["passed"], case
        assert case["difference"] is not None and case["difference"] <= case["tolerance"] + 1e-12, case
    assert report["passed"] is True


@pytest.mark.hub
def test_a_wrong_expectation_fails_and_says_by_how_much(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "ones.npy", np.ones((8, 8), np.float32))
    np.save(tmp_path / "data" / "twos.npy", np.full((8, 8), 2.5, np.float32))
    source = '''"""Doubles."""
from scopeflow import Image, op

PLUGIN = {"id": "doubler", "name": "Doubler", "tests": [
    {"name": "right", "op": "double", "inputs": {"image": {"file": "data/ones.npy"}},
     "expected": {"result": TWOS}},
    {"name": "wrong", "op": "double", "inputs": {"image": {"file": "data/ones.npy"}},
     "expected": {"result": {"file": "data/twos.npy"}}, "atol": 0.1},
    {"name": "raises", "op": "double", "inputs": {"image": {"file": "data/missing.npy"}},
     "expected": {"result": 1}},
]}


@op()
def double(image: Image["yx"]) -> Image["yx"]:
    return image * 2
'''
    (tmp_path / "doubler.py").write_text(source.replace("TWOS", json.dumps([[2.0] * 8] * 8)))
    hub = start_hub(tmp_path, "--plugins-dir", str(tmp_path))
    try:
        report = hub.json("/api/plugins/doubler/verify", "POST")
        right, wrong, raises = report["cases"]
        assert right["passed"] and right["difference"] == 0
        assert not wrong["passed"] and wrong["difference"] == pytest.approx(0.5)
        assert not raises["passed"] and "missing.npy" in raises["error"]
        assert report["passed"] is False
        assert hub.request("/api/plugins/no-such/verify", "POST")[0] == 404
        assert hub.request("/api/plugins/doubler/verify", "POST", token=None)[0] in (401, 403)
    finally:
        stop_hub(hub)


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        ('[{"op": "f", "expected": {"result": 1}, "inputs": {"x": {"file": "../secret.npy"}}}]', "inside"),
        ('[{"op": "f", "expected": {"result": 1}, "inputs": {"x": {"file": "/etc/passwd"}}}]', "inside"),
        ('[{"op": "f"}]', "expected"),
        ('[{"op": "f", "expected": {}, "min_f1": 2}]', "min_f1"),
        ('[{"op": "f", "expected": {}, "surprise": 1}]', "surprise"),
    ],
)
def test_malformed_cases_are_refused_with_the_field(tests: str, message: str) -> None:
    source = f'PLUGIN = {{"name": "x", "tests": {tests}}}\n'
    with pytest.raises(ManifestError, match=r"PLUGIN\.tests") as error:
        parse_plugin(source, "x.py")
    assert message in str(error.value)


def test_measures() -> None:
    truth = np.zeros((20, 20), np.int32)
    truth[2:8, 2:8], truth[10:18, 10:18] = 1, 2
    found = np.zeros_like(truth)
    found[2:8, 2:7], found[10:12, 10:12] = 7, 3  # one matched (IoU 5/6), one not (IoU 4/64)
    assert label_f1(truth, truth) == 1.0
    assert label_f1(found, truth) == pytest.approx(0.5)
    assert label_f1(np.zeros_like(truth), truth) == 0.0
    assert psnr_of(np.ones((4, 4)), np.ones((4, 4))) == float("inf")
    reference = np.linspace(0, 1, 100).reshape(10, 10)
    assert psnr_of(reference + 0.1, reference) == pytest.approx(20.0)
    assert close({"a": [1, 2], "b": "x"}, {"a": [1, 2.5], "b": "x"}, 0.6, 0, "r") == (0.5, True)
    assert close({"a": [1, 2]}, {"a": [1, 2.5]}, 0.1, 0, "r") == (0.5, False)
    assert close("x", "y", 0, 0, "r")[1] is False
    with pytest.raises(ValueError, match="shape"):
        close([1, 2], [1, 2, 3], 0, 0, "r")
    case = VerifyCase(op="f", expected={"result": 0}, min_f1=0.9)
    assert compare({"result": found}, {"result": truth}, case)["passed"] is False
    assert json.dumps(compare({"result": 1}, {"result": 2}, VerifyCase(op="f", expected={})))
