"""The example workflows in plugins/workflows: valid documents, pinned to the built-ins as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.images import formats as data
from scopeflow.plugins.registry import Registry
from scopeflow.workflows import gallery
from scopeflow.workflows.document import validate

ROOT = Path(__file__).resolve().parents[2]
NAMES = gallery.names()


def problems(doc: dict, tmp: Path) -> list[str]:
    """What the hub's validator finds wrong with a document against the built-in plugins, and what a
    gallery document needs besides: a title, a description, defaults for every input."""
    registry = Registry(BUILTIN_PLUGINS, [], tmp)
    registry.scan()
    result = validate(doc, registry, list(data.SAMPLES))
    found = [f"{e['node'] or '-'} {e['field']}: {e['message']}" for e in result["errors"]]
    if not doc.get("title") or not doc.get("description"):
        found.append("a gallery workflow needs a title and a description")
    for spec in doc.get("inputs") or []:
        if "default" not in spec:
            found.append(f"input {spec['name']}: needs a default")
    return found


def test_the_gallery_has_at_least_three_workflows():
    assert len(NAMES) >= 3, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_gallery_workflow_is_valid(name, tmp_path):
    doc = json.loads((gallery.GALLERY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert problems(doc, tmp_path) == []


@pytest.mark.parametrize("name", NAMES)
def test_gallery_pins_match_the_built_in_plugins(name):
    doc = json.loads((gallery.GALLERY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert gallery.stale_pins(doc) == [], f"run scripts/pin-workflows: {gallery.stale_pins(doc)}"
    assert set(doc["plugins"]) == set(gallery.used_plugins(doc))


def test_a_broken_document_is_caught(tmp_path):
    doc = json.loads((gallery.GALLERY_DIR / f"{NAMES[0]}.json").read_text(encoding="utf-8"))
    doc["nodes"][0]["op"] = "no_such_op"
    del doc["description"]
    found = problems(doc, tmp_path)
    assert any(doc["nodes"][0]["id"] in line and "no_such_op" in line for line in found), found
    assert "a gallery workflow needs a title and a description" in found


def test_a_changed_plugin_makes_the_pin_stale_and_the_script_repins(tmp_path):
    doc = json.loads((gallery.GALLERY_DIR / f"{NAMES[0]}.json").read_text(encoding="utf-8"))
    plugin = gallery.used_plugins(doc)[0]
    changed = dict(gallery.pins())
    changed[plugin] = {**changed[plugin], "sha256": "0" * 64}
    stale = gallery.stale_pins(doc, changed)
    assert len(stale) == 1 and stale[0].startswith(f"{plugin}: pinned")
    assert gallery.stale_pins(gallery.repin(doc, changed), changed) == []
    unpinned = {**doc, "plugins": {}}
    assert len(gallery.stale_pins(unpinned)) == len(gallery.used_plugins(doc))


def test_pin_script_reports_the_gallery_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "pin-workflows"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("up to date") == len(NAMES)


def test_pin_script_repins_a_stale_copy(tmp_path):
    name = NAMES[0]
    doc = json.loads((gallery.GALLERY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    plugin = gallery.used_plugins(doc)[0]
    doc["plugins"][plugin]["sha256"] = "0" * 64
    (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    script = [sys.executable, str(ROOT / "scripts" / "pin-workflows"), "--gallery", str(tmp_path)]
    check = subprocess.run([*script, "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and f"{name}: {plugin}: pinned" in check.stdout
    fix = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert fix.returncode == 0 and f"{name}: re-pinned" in fix.stdout
    fixed = json.loads((tmp_path / f"{name}.json").read_text())
    assert gallery.stale_pins(fixed) == []
    assert {k: v for k, v in fixed.items() if k != "plugins"} == {
        k: v for k, v in doc.items() if k != "plugins"
    }


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
async def test_every_gallery_workflow_runs_with_its_defaults_then_from_the_cache(hub, name):
    """Each example runs on its default sample through the hub's runner; a second run calls no plugin."""
    from scopeflow.rpc.client import connect

    doc = json.loads(gallery.find(name).read_text(encoding="utf-8"))
    server = await connect(hub.url, token=hub.token)
    try:
        svc = await server.get_service("workflows")
        first = await svc.run(doc)
        assert first["state"] == "done", {k: v.get("error") for k, v in first["nodes"].items()}
        assert {n["id"] for n in doc["nodes"]} == set(first["nodes"])
        for output in doc["outputs"]:
            summary = first["outputs"][output["name"]]["summary"]
            if summary["kind"] == "ndarray":
                assert summary["shape"][-2:] == [512, 512]  # the nuclei-2d sample, whatever was done to it
            if summary["kind"] == "table":  # one row per nucleus found: the sample has 125
                assert 50 < summary["rows"] < 250, summary
        second = await svc.run(doc)
        assert second["state"] == "done"
        # every node from the cache (the first run may have been cached already: other tests share the hub,
        # so the two runs' times are not compared)
        assert {node["state"] for node in second["nodes"].values()} == {"cached"}
        assert second["outputs"] == first["outputs"]
    finally:
        await server.disconnect()
