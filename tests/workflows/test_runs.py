"""Run records on disk: ids sortable by time, pruning, runs the hub stopped during."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scopeflow.workflows.runs import RunStore, new_run_id


def test_run_records_are_pruned_to_the_newest(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    ids = []
    for _ in range(5):
        ids.append(new_run_id())
        store.save({"id": ids[-1], "state": "done", "nodes": {}, "events": []})
        time.sleep(0.002)
    assert store.ids() == sorted(ids, reverse=True)
    assert store.prune(keep=2) == sorted(ids, reverse=True)[2:]
    assert [s["id"] for s in store.latest(10, set())] == sorted(ids, reverse=True)[:2]


def test_a_running_record_nobody_owns_ended_with_the_hub(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run_id = new_run_id()
    nodes = {"a": {"state": "done"}, "b": {"state": "running"}, "c": {"state": "queued"}}
    store.save({"id": run_id, "state": "running", "started": 1.0, "nodes": nodes, "events": []})
    assert store.load(run_id, live=True)["state"] == "running"
    record = store.load(run_id)
    assert record["state"] == "cancelled" and "hub stopped" in record["error"]
    assert [record["nodes"][n]["state"] for n in "abc"] == ["done", "cancelled", "cancelled"]
    assert store.load(run_id, live=True)["state"] == "cancelled"  # written back
    with pytest.raises(KeyError):
        store.load("../etc/passwd")
    (tmp_path / "runs" / f"{new_run_id()}.json").write_text("{")
    assert [s["id"] for s in store.latest(5, set())] == [run_id]  # an unreadable record is skipped
