"""Fine-tuning nuclei-segmentation on annotations through a real hub: a new, pinned plugin version that
segments and runs in a workflow; cancellation; refusals; the best-not-last rule of the training loop."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.rpc.client import connect

SAMPLES = BUILTIN_PLUGINS.parent / "images" / "samples"
FOLDER = BUILTIN_PLUGINS / "nuclei_segmentation"


def painted(size: int = 160, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The top-left ``size`` px of the real sample, and a label image with ``count`` of its true nuclei
    (those wholly inside), as a user paints them: the rest unlabelled."""
    image = tifffile.imread(SAMPLES / "nuclei-2d.tif")[:size, :size]
    truth = tifffile.imread(SAMPLES / "nuclei-2d-labels.tif")[:size, :size].astype(np.int32)
    border = set(np.unique(np.concatenate([truth[0], truth[-1], truth[:, 0], truth[:, -1]])))
    inside = [i for i in np.unique(truth) if i and i not in border][:count]
    labels = np.zeros_like(truth)
    for new, old in enumerate(inside, start=1):
        labels[truth == old] = new
    return image, labels


@pytest.fixture
async def app(hub):
    """A client standing in for the web app: it receives the plugins' progress, plots and messages."""
    seen: dict[str, list] = {"createWindow": [], "showProgress": [], "showMessage": []}
    client = await connect(hub.url, token=hub.token, client_id="finetune-test-app")
    await client.register_service({"id": "imjoy-api", **{name: calls.append for name, calls in seen.items()}})
    client.seen = seen
    yield client
    await client.disconnect()


@pytest.mark.timeout(300)
async def test_finetune_makes_a_pinned_version_that_segments_and_runs_in_a_workflow(hub, app):
    image, labels = painted()
    plugin = await app.get_plugin("nuclei-segmentation")
    summary = await plugin.finetune(image, labels, name="tiny", minutes=1.0, max_steps=6)
    version = summary["version"]
    assert version["id"] == "nuclei-segmentation-tiny"
    base = hub.json("/api/plugins/nuclei-segmentation")["version"]
    assert version["version"] == f"{base}+ft." + version["weights_sha256"][:8]
    assert summary["steps"] <= 6 and summary["stopped"].startswith("step limit")
    assert summary["validation_objects"] == 2 and summary["training_objects"] == 6  # 8 painted
    for when in ("before", "after"):
        assert 0 <= summary[when]["validation_f1"] <= 1
    assert summary["after"]["validation_f1"] >= summary["before"]["validation_f1"]  # best, never worse
    # the app saw the live plot (three curves of the same length) and the progress bar
    plots = [w for w in app.seen["createWindow"] if w.get("name") == "nuclei-segmentation fine-tune"]
    assert plots and len(plots[-1]["data"]["x"]) >= 2
    assert {len(s) for s in plots[-1]["data"]["series"].values()} == {len(plots[-1]["data"]["x"])}
    assert max(app.seen["showProgress"]) == 100

    # the hub lists the new version, with its model card; the weights are the file its hash names
    listed = {p["id"]: p for p in hub.json("/api/plugins")["plugins"]}
    assert "nuclei-segmentation" in listed and listed[version["id"]]["builtin"] is False
    assert listed[version["id"]]["version"] == version["version"]
    assert listed[version["id"]]["sha256"] == version["sha256"]
    detail = hub.json(f"/api/plugins/{version['id']}")
    assert "## Model card" in detail["docs"] and "| image 1 | 160 x 160 | 8 | 2 |" in detail["docs"]
    assert f'WEIGHTS_SHA256 = "{version["weights_sha256"]}"' in detail["source"]
    assert hashlib.sha256(detail["source"].encode()).hexdigest() == version["sha256"]
    weights = hub.data_dir / "plugins" / "weights" / f"{version['weights_sha256']}.pt"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == version["weights_sha256"]
    index = json.loads((hub.data_dir / "plugins" / "index.json").read_text())
    assert index[version["id"]]["origin"]["kind"] == "fine-tune"

    # it segments like any plugin, with its own weights
    tuned = await app.get_plugin(version["id"])
    result = await tuned.segment(image)
    assert result.shape == image.shape and result.dtype == np.int32 and result.max() > 3

    # a workflow pinning it by its sha256 runs, and its pin holds
    doc = {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": "fine-tuned segmentation",
        "inputs": [{"name": "image", "kind": "ndarray", "axes": "yx"}],
        "nodes": [{"id": "seg", "plugin": version["id"], "op": "segment", "params": {}}],
        "edges": [{"from": ["$input", "image"], "to": ["seg", "image"]}],
        "outputs": [{"name": "labels", "from": ["seg", "result"]}],
        "plugins": {version["id"]: {"version": version["version"], "sha256": version["sha256"]}},
    }
    workflows = await app.get_service("workflows")
    record = await workflows.run(doc, {"image": image})
    assert record["state"] == "done", record
    assert [p["state"] for p in record["pins"] if p["plugin"] == version["id"]] == ["ok"]
    np.testing.assert_array_equal(await workflows.run_output(record["id"], "labels"), result)


@pytest.mark.timeout(300)
async def test_a_running_finetune_can_be_cancelled_and_bad_input_is_refused(hub, app):
    plugin = await app.get_plugin("nuclei-segmentation")
    image, labels = painted()
    with pytest.raises(Exception, match="must match"):
        await plugin.finetune(image, labels[:64], name="bad")
    with pytest.raises(Exception, match="name"):
        await plugin.finetune(image, labels, name="Not a name!")
    with pytest.raises(Exception, match="at least 2 annotated objects"):
        await plugin.finetune(image, np.where(labels == 1, 1, 0), name="one")
    assert await plugin.cancel_finetune() == "no fine-tune is running"
    before = len(app.seen["createWindow"])
    started = time.monotonic()
    running = asyncio.ensure_future(plugin.finetune(image, labels, name="never", minutes=5, max_steps=100000))
    while len(app.seen["createWindow"]) == before:  # training has started: the first validation is shown
        assert not running.done(), running.exception()
        assert time.monotonic() - started < 120
        await asyncio.sleep(0.2)
    await plugin.cancel_finetune()
    with pytest.raises(Exception, match="cancelled"):
        await asyncio.wait_for(running, 60)
    assert time.monotonic() - started < 150
    assert "nuclei-segmentation-never" not in {p["id"] for p in hub.json("/api/plugins")["plugins"]}


@pytest.mark.timeout(300)
def test_the_command_line_fine_tunes_on_files(hub, tmp_path):
    image, labels = painted()
    tifffile.imwrite(tmp_path / "field.tif", image)
    tifffile.imwrite(tmp_path / "field-labels.tif", labels)
    env = {**os.environ, "SCOPEFLOW_TOKEN": hub.token}
    command = [sys.executable, "-m", "scopeflow.cli.main", "finetune", "--hub", hub.url]
    files = [str(tmp_path / "field.tif"), str(tmp_path / "field-labels.tif")]
    done = subprocess.run(
        [*command, *files, "--name", "cli", "--max-steps", "4", "--json", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert f"new version: nuclei-segmentation-cli {summary['version']['version']}" in done.stdout
    assert summary["steps"] == 4 and "field.tif" in hub.json("/api/plugins/nuclei-segmentation-cli")["docs"]
    odd = subprocess.run([*command, files[0], "--name", "x"], capture_output=True, text=True, env=env)
    assert odd.returncode == 2 and "pairs" in odd.stderr


async def test_only_a_fine_tuning_kernel_may_register_a_version(hub, app):
    versions = await app.get_service("plugin-versions")
    with pytest.raises(Exception, match="may not register"):
        await versions.register_finetune({"name": "x", "card": "print('hi')"}, b"PK\x03\x04")


def module(name: str):
    return module_at(FOLDER / f"{name}.py", f"test_nuclei_{name}")


def module_at(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    loaded = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_the_best_validation_is_kept_not_the_last_and_overtraining_is_said():
    """Validation F1 rises, then falls while the training loss keeps falling: the weights of the best
    validation come back, and the history says it is overtraining."""
    import torch

    finetune = module("finetune")
    unet = module("unet")
    torch.manual_seed(0)
    model = unet.UNet(channels=4, depth=2)
    rng = np.random.default_rng(0)
    truth = np.zeros((4, 32, 32), np.float32)
    truth[:, 8:24, 8:24] = 1

    def batch():
        image = (truth + rng.normal(0, 0.1, truth.shape)).astype(np.float32)
        return [image, truth, truth * 0.5, np.ones_like(truth)]

    f1s = iter([0.5, 0.8, 0.6, 0.4, 0.3])
    snapshots = []

    def check(m):
        snapshots.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return 1.0, next(f1s)

    history = finetune.train_loop(model, batch, check, finetune.Limits(seconds=600, steps=8, every=2))
    assert history.f1 == [0.5, 0.8, 0.6, 0.4, 0.3] and history.step == [0, 2, 4, 6, 8]
    assert history.best == 1 and history.stopped.startswith("step limit")
    state = model.state_dict()
    for key, value in snapshots[1].items():
        torch.testing.assert_close(state[key], value)
    assert not all(torch.equal(state[k], v) for k, v in snapshots[-1].items())
    assert history.train[-1] < history.train[1]
    assert history.overtraining and "fell from 0.800 (step 2) to 0.300 (step 8)" in history.overtraining


def test_validation_keeps_whole_objects_and_at_least_one():
    finetune = module("finetune")
    rng = np.random.default_rng(0)
    chosen, note = finetune.split_validation([3], rng)
    assert len(chosen[0]) == 1 and "coarse" in note
    chosen, _ = finetune.split_validation([12, 8], rng)
    assert sum(map(len, chosen)) == 4
    assert all(set(c) <= set(range(1, n + 1)) for c, n in zip(chosen, [12, 8], strict=True))
    with pytest.raises(ValueError, match="at least 2"):
        finetune.split_validation([1], rng)


def test_unlabelled_nuclei_beside_labelled_ones_are_not_taught_as_background():
    """Only the annotated regions count by default, and in them a nucleus nobody labelled is left out of the
    loss; with "unlabelled pixels are background" everything outside the validation objects counts."""
    plugin = module_at(BUILTIN_PLUGINS / "nuclei_segmentation.py", "test_nuclei_plugin")
    finetune = plugin.local("finetune")
    image, labels = painted(size=160, count=8)
    truth = tifffile.imread(SAMPLES / "nuclei-2d-labels.tif")[:160, :160].astype(np.int32)
    unlabelled = (truth > 0) & (labels == 0)
    items, note = finetune.prepare(plugin, [(image, labels, "crop")], False, 0)
    item = items[0]
    assert item.scale != 1.0 and "2 of the 8" in note  # nuclei of about 21 px are seen at the trained 15
    from skimage.transform import resize

    small = resize(unlabelled, item.labels.shape, order=0, anti_aliasing=False)
    edge = finetune._disc(finetune.EDGE + 1)
    margin = ndimage.binary_dilation(item.labels > 0, finetune._disc(8))
    near = margin & small & ~ndimage.binary_dilation(item.labels > 0, edge)
    assert near.sum() > 20  # unlabelled nuclei lie inside the margins of the labelled ones
    assert item.train_mask[near].mean() < 0.05 and item.val_mask[near].mean() < 0.05
    ring = ndimage.binary_dilation(item.labels > 0, edge) & (item.labels == 0) & ~small
    assert item.train_mask[ring].mean() + item.val_mask[ring].mean() > 0.9  # the outlines count
    everything = finetune.prepare(plugin, [(image, labels, "crop")], True, 0)[0][0]
    assert everything.train_mask.mean() > 0.8 and not (everything.train_mask * everything.val_mask).any()


async def test_the_hub_writes_versions_from_its_template_and_keeps_what_is_not_its_own(tmp_path):
    """A model card cannot become code; a plugin of the same id that the hub did not write is kept; a
    version of the same name is replaced (the earlier file kept by its hash)."""
    import ast

    from scopeflow.plugins.registry import Registry
    from scopeflow.plugins.versions import PluginVersions

    registry = Registry(BUILTIN_PLUGINS, [], tmp_path)
    registry.scan()
    versions = PluginVersions(registry)
    kernel = {"from": "default/nuclei-segmentation"}
    card = 'A card.\n"""\nimport os\nos.remove("x")\n"""\\ and a backslash \\"""'
    weights = b"PK\x03\x04" + bytes(100)
    made = await versions.register_finetune({"name": "lab-a", "card": card}, weights, context=kernel)
    source = registry.source(made["id"])
    tree = ast.parse(source)
    assert ast.get_docstring(tree, clean=False) == card
    assert not [n for n in tree.body if isinstance(n, ast.Import) and n.names[0].name == "os"]
    assert (
        tmp_path / "plugins" / "weights" / f"{hashlib.sha256(weights).hexdigest()}.pt"
    ).read_bytes() == weights
    again = await versions.register_finetune({"name": "lab-a", "card": "B"}, weights + b"1", context=kernel)
    assert again["id"] == made["id"] and again["sha256"] != made["sha256"]
    assert list((tmp_path / "plugins" / ".versions").glob(f"{made['id']}-{made['sha256'][:12]}*"))
    other = (
        "from scopeflow import op\n\nPLUGIN = {'id': 'nuclei-segmentation-mine', 'name': 'Mine'}\n\n\n"
        "@op\ndef f(x: int) -> int:\n    return x\n"
    )
    registry.install_source(other, "mine.py")
    with pytest.raises(ValueError, match="not a fine-tuned version"):
        await versions.register_finetune({"name": "mine", "card": "C"}, weights, context=kernel)
    for request, data, message in (
        ({"name": "../x", "card": "C"}, weights, "name"),
        ({"name": "ok", "card": 3}, weights, "model card"),
        ({"name": "ok", "card": "C"}, b"not a zip", "torch.save"),
    ):
        with pytest.raises(ValueError, match=message):
            await versions.register_finetune(request, data, context=kernel)
    with pytest.raises(PermissionError):
        await versions.register_finetune(
            {"name": "ok", "card": "C"}, weights, context={"from": "default/mine"}
        )
