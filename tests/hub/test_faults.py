"""Faults in the middle of work: the hub killed (SIGKILL, no goodbye) while clients save workflows.

Every save the hub acknowledged survives; a document always agrees with the last version in its history
after a restart; no version repeats; no temporary file is left. (A kernel killed with calls in flight and a
client killed with calls in flight are covered in tests/plugins/test_engine.py and
tests/transfer/test_transfer.py.)"""

from __future__ import annotations

import functools
import itertools
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.registry import Registry
from scopeflow.workflows.pins import make_pins

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"
NAMES = [f"saved-{i}" for i in range(6)]

pytestmark = pytest.mark.hub


@functools.cache
def pins() -> dict[str, Any]:
    registry = Registry(None, [PLUGINS], Path("/nonexistent"))
    registry.scan()
    return make_pins(registry, ["wf-ops"])


def document(value: int) -> dict[str, Any]:
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": f"value {value}",
        "nodes": [{"id": "make", "plugin": "wf-ops", "op": "make", "params": {"value": value}}],
        "edges": [],
        "outputs": [{"name": "image", "from": ["make", "result"]}],
        "plugins": pins(),
    }


def value_of(doc: dict[str, Any]) -> int:
    return int(doc["nodes"][0]["params"]["value"])


def test_the_hub_killed_during_saves_loses_no_acknowledged_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOPEFLOW_SPARE_KERNEL", "0")  # no kernel is left behind by the kills
    rng = random.Random(5)
    acknowledged: dict[str, int] = {}  # name → the value of its last acknowledged save
    attempts = [0]
    counter = itertools.count(1)  # values only grow; each saver owns its names, so each name's saves go
    # out in order and its versions' values must grow too
    for _kill in range(6):
        hub = start_hub(tmp_path, "--plugins-dir", str(PLUGINS))
        stop = threading.Event()

        def save_in_a_loop(names: list[str], hub: HubProcess = hub, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                value = next(counter)
                name = names[value % len(names)]
                attempts[0] += 1
                try:
                    status, _ = hub.request(f"/api/workflows/{name}", "PUT", document(value))
                except OSError:  # the hub is gone: this save was never acknowledged
                    return
                if status == 200:
                    acknowledged[name] = value

        savers = [threading.Thread(target=save_in_a_loop, args=(NAMES[i::3],)) for i in range(3)]
        for saver in savers:
            saver.start()
        time.sleep(rng.uniform(0.3, 1.2))
        os.kill(hub.process.pid, signal.SIGKILL)
        stop.set()
        for saver in savers:
            saver.join(30)
        stop_hub(hub)

    hub = start_hub(tmp_path, "--plugins-dir", str(PLUGINS))
    try:
        assert len(acknowledged) == len(NAMES) and attempts[0] > 50, (acknowledged, attempts)
        for name, last in acknowledged.items():
            doc = hub.json(f"/api/workflows/{name}")
            # the acknowledged save, or a later one the kill cut off before its answer
            assert value_of(doc) >= last, (name, value_of(doc), last)
            versions = [v["version"] for v in hub.json(f"/api/workflows/{name}/versions")]
            assert versions == list(range(1, len(versions) + 1)), versions
            latest = hub.json(f"/api/workflows/{name}?version={versions[-1]}")
            assert latest == doc, f"{name}: the document and its history disagree"
            values = [value_of(hub.json(f"/api/workflows/{name}?version={v}")) for v in versions]
            assert all(a < b for a, b in itertools.pairwise(values)), values  # none repeats
        leftovers = [p.name for p in (hub.data_dir / "workflows").rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []
    finally:
        stop_hub(hub)
