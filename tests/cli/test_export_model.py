"""``scopeflow export-model``: the nuclei network as a bioimage.io package that bioimageio.core's own test
passes (it runs both weight formats on the package's test tensors and checks the outputs)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.unit


def test_the_exported_package_passes_bioimageio_test(tmp_path: Path) -> None:
    core = pytest.importorskip("bioimageio.core", reason="the check needs bioimageio.core (test extras)")
    target = tmp_path / "nuclei.zip"
    done = subprocess.run(
        [sys.executable, "-m", "scopeflow.cli.main", "export-model", "nuclei-segmentation", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "bioimage.io format 0.5" in done.stdout
    with zipfile.ZipFile(target) as package:
        names = set(package.namelist())
        rdf = yaml.safe_load(package.read("rdf.yaml"))
        test_input = np.load(package.open("test_input.npy"))
    assert {"weights.pt", "weights.torchscript", "unet.py", "README.md", "cover.png"} <= names
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript"}
    assert rdf["inputs"][0]["preprocessing"][0]["id"] == "scale_range"
    assert test_input.shape == (1, 1, 256, 256) and test_input.std() > 0  # a real image, not zeros
    assert rdf["license"] == "MIT" and len(rdf["cite"]) == 2
    summary = core.test_model(str(target))
    failed = [(d.name, [e.msg for e in d.errors]) for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed


def test_what_cannot_be_exported_says_why(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scopeflow.cli.main", "export-model", "noise2void", str(tmp_path / "n.zip")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "ships no trained network" in done.stderr
    assert not (tmp_path / "n.zip").exists()
