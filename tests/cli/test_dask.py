"""``scopeflow run ... --dask local:2``: a folder batch on a Dask LocalCluster of two workers, each with a hub
of its own; results identical to a local run, resume, a broken item tried twice then reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scopeflow.cli.batch import STATE_FILE
from scopeflow.images import formats as data

sys.path.insert(0, str(Path(__file__).parent))
from test_batch import GALLERY, nuclei, scopeflow_run

pytest.importorskip("distributed", reason="Dask batches need pip install 'scopeflow[dask]'")
pytestmark = pytest.mark.hub


def test_a_batch_on_two_dask_workers_matches_a_local_run_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index, name in enumerate(("a", "b", "c", "d")):
        nuclei(folder / f"{name}.tif", seed=index)
    (folder / "e-broken.tif").write_bytes(b"II*\x00 this is not an image")
    common = [GALLERY, "--input", f"image={folder}/*.tif", "--input", "sigma=1.0"]
    common += ["--data-dir", str(tmp_path / "data")]

    local = scopeflow_run(*common, "--output", str(tmp_path / "local"))
    assert local.returncode == 1, local.stdout + local.stderr  # the broken file
    spread = scopeflow_run(*common, "--output", str(tmp_path / "dask"), "--dask", "local:2", timeout=600)
    assert spread.returncode == 1, spread.stdout + spread.stderr
    lines = spread.stdout.splitlines()
    done = [line for line in lines if ": done in " in line]
    assert len(done) == 4 and all(" on worker " in line for line in done), spread.stdout
    assert len({line.split(" on worker ")[1].split()[0] for line in done}) == 2, "one worker did it all"
    assert any("e-broken.tif: failed on" in line and "trying again" in line for line in lines), spread.stdout
    assert any(line.startswith("[5/5] e-broken.tif: failed: ") for line in lines), spread.stdout
    assert "5 items: 4 done, 1 failed, 0 skipped" in spread.stdout and "on 2 Dask workers" in spread.stdout

    for name in ("a", "b", "c", "d"):  # the same code, the same results
        here, _ = data.read_image(tmp_path / "local" / name / "labels.tif")
        there, _ = data.read_image(tmp_path / "dask" / name / "labels.tif")
        assert (here == there).all()
        table = (tmp_path / "dask" / name / "nuclei.csv").read_text()
        assert table == (tmp_path / "local" / name / "nuclei.csv").read_text()
        found = data.read_provenance(tmp_path / "dask" / name / "labels.tif")
        assert found["inputs"]["image"]["source"] == str(folder / f"{name}.tif")
    state = json.loads((tmp_path / "dask" / STATE_FILE).read_text())
    assert len(state["items"]) == 4 and all("worker" in item for item in state["items"].values())

    (folder / "e-broken.tif").unlink()
    nuclei(folder / "e-fixed.tif", seed=9)
    again = scopeflow_run(*common, "--output", str(tmp_path / "dask"), "--dask", "local:2", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count(": skipped (finished") == 4
    assert "5 items: 1 done, 0 failed, 4 skipped" in again.stdout
    # a local run resumes a Dask batch too: the state file is the same
    local_again = scopeflow_run(*common, "--output", str(tmp_path / "dask"))
    assert local_again.returncode == 0 and local_again.stdout.count(": skipped (finished") == 5


def test_on_a_running_scheduler_without_shared_storage_the_bytes_travel(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index, name in enumerate(("a", "b")):
        nuclei(folder / f"{name}.tif", seed=index)
    common = [GALLERY, "--input", f"image={folder}/*.tif", "--input", "sigma=1.0"]
    common += ["--data-dir", str(tmp_path / "data")]
    local = scopeflow_run(*common, "--output", str(tmp_path / "local"))
    assert local.returncode == 0, local.stdout + local.stderr
    from distributed import LocalCluster  # a running scheduler: --dask takes its tcp:// address

    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        args = ["--output", str(tmp_path / "shipped"), "--dask", address, "--no-shared-storage"]
        shipped = scopeflow_run(*common, *args, timeout=600)
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    for name in ("a", "b"):
        here, _ = data.read_image(tmp_path / "local" / name / "labels.tif")
        there, _ = data.read_image(tmp_path / "shipped" / name / "labels.tif")
        assert (here == there).all()
        found = data.read_provenance(tmp_path / "shipped" / name / "labels.tif")
        assert found["inputs"]["image"]["source"] == str((folder / f"{name}.tif").resolve())
    state = json.loads((tmp_path / "shipped" / STATE_FILE).read_text())
    assert sorted(
        f for item in state["items"].values() for f in item["files"] if f.endswith("labels.tif")
    ) == [
        "a/labels.tif",
        "b/labels.tif",
    ]


def test_dask_needs_a_folder_and_a_known_address(tmp_path: Path) -> None:
    single = scopeflow_run(GALLERY, "--output", str(tmp_path / "o"), "--dask", "local:2")
    assert single.returncode == 2 and "--dask spreads a batch" in single.stderr
    folder = tmp_path / "images"
    folder.mkdir()
    nuclei(folder / "a.tif", seed=1)
    wrong = scopeflow_run(
        GALLERY, "--input", f"image={folder}/*.tif", "--output", str(tmp_path / "o"), "--dask", "nowhere"
    )
    assert wrong.returncode == 2 and "use local, local:N or a scheduler address" in wrong.stderr
