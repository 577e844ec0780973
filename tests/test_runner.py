"""The workflow runner against a real hub with real kernels, through the ``workflows`` service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.client import connect
from scopeflow.registry import Registry
from scopeflow.workflow import make_pins

PLUGINS = Path(__file__).parent / "workflow_plugins"


@pytest.fixture(scope="module")
def wf_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("wf-hub"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)


@pytest.fixture
async def svc(wf_hub: HubProcess) -> AsyncIterator[Any]:
    server = await connect(wf_hub.url, token=wf_hub.token)
    try:
        yield await server.get_service("workflows")
    finally:
        await server.disconnect()


def pins() -> dict[str, Any]:
    registry = Registry(None, [PLUGINS], Path("/nonexistent"))
    registry.scan()
    return make_pins(registry, ["wf-ops"])


def workflow(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str, str, str]], **extra: Any
) -> dict[str, Any]:
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": extra.pop("title", "test"),
        "nodes": [{"plugin": "wf-ops", **n} for n in nodes],
        "edges": [{"from": [a, b], "to": [c, d]} for a, b, c, d in edges],
        "plugins": pins(),
        **extra,
    }


def journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def chain(log: Path, value: float = 3, factor: float = 2) -> dict[str, Any]:
    """make → scale → total."""
    return workflow(
        [
            {"id": "make", "op": "make", "params": {"value": value, "journal": str(log)}},
            {"id": "scale", "op": "scale", "params": {"factor": factor, "journal": str(log)}},
            {"id": "sum", "op": "total", "params": {"journal": str(log)}},
        ],
        [("make", "result", "scale", "image"), ("scale", "result", "sum", "image")],
        outputs=[
            {"name": "total", "from": ["sum", "result"]},
            {"name": "image", "from": ["scale", "result"]},
        ],
    )


async def test_runs_in_order_caches_and_reruns_only_downstream(svc: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    events: list[dict[str, Any]] = []
    record = await svc.run(chain(log), None, None, events.append)
    assert record["state"] == "done", record
    assert [c["op"] for c in journal(log)] == ["make", "scale", "total"]
    assert {n: s["state"] for n, s in record["nodes"].items()} == {
        "make": "done",
        "scale": "done",
        "sum": "done",
    }
    assert record["nodes"]["sum"]["outputs"]["result"] == {"kind": "value", "value": 8 * 8 * 3 * 2}
    assert record["outputs"]["total"]["summary"]["value"] == 384
    assert record["outputs"]["image"]["summary"] == {"kind": "ndarray", "shape": [8, 8], "dtype": "float32"}
    assert record["plugins"]["wf-ops"]["sha256"] == pins()["wf-ops"]["sha256"]
    assert [p["state"] for p in record["pins"]] == ["ok"]
    image = await svc.run_output(record["id"], "image")
    assert isinstance(image, np.ndarray) and np.array_equal(image, np.full((8, 8), 6, dtype="float32"))
    assert await svc.output(record["nodes"]["sum"]["key"], "result") == 384
    for _ in range(50):  # events are sent one at a time, after the record is done
        if events and events[-1]["type"] == "run":
            break
        await asyncio.sleep(0.05)
    states = [(e["node"], e["state"]) for e in events if e["type"] == "node"]
    assert (
        states.index(("make", "done")) < states.index(("scale", "running")) < states.index(("sum", "running"))
    )
    assert events[-1] == {"run": record["id"], "type": "run", "state": "done", "seconds": record["seconds"]}
    # the same document again: every node cached, no plugin call
    again = await svc.run(chain(log))
    assert {n: s["state"] for n, s in again["nodes"].items()} == dict.fromkeys(
        ("make", "scale", "sum"), "cached"
    )
    assert all(s["cached"] for s in again["nodes"].values())
    assert len(journal(log)) == 3
    # editing scale re-runs scale and what is downstream of it, not make
    edited = await svc.run(chain(log, factor=5))
    assert [edited["nodes"][n]["state"] for n in ("make", "scale", "sum")] == ["cached", "done", "done"]
    assert [c["op"] for c in journal(log)][3:] == ["scale", "total"]
    assert edited["nodes"]["sum"]["outputs"]["result"]["value"] == 8 * 8 * 3 * 5
    # cache off: everything runs again
    fresh = await svc.run(chain(log, factor=5), None, {"cache": False})
    assert [fresh["nodes"][n]["state"] for n in ("make", "scale", "sum")] == ["done"] * 3
    assert len(journal(log)) == 8


async def test_a_change_that_gives_the_same_result_stops_there(svc: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"value": 2, "journal": str(log)}},
            {"id": "mode", "op": "mode", "params": {"how": "max"}},
            {"id": "other", "op": "total", "params": {"journal": str(log)}},
        ],
        [("make", "result", "mode", "image"), ("make", "result", "other", "image")],
    )
    await svc.run(doc)
    doc["nodes"][0]["params"]["journal"] = str(log) + "x"  # make runs again, with the same result
    record = await svc.run(doc)
    assert record["nodes"]["make"]["state"] == "done"
    assert record["nodes"]["other"]["state"] == "cached"


async def test_independent_branches_run_at_once(svc: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"journal": str(log)}},
            {"id": "left", "op": "pause", "params": {"seconds": 1.5, "tag": "left", "journal": str(log)}},
            {"id": "right", "op": "pause", "params": {"seconds": 1.5, "tag": "right", "journal": str(log)}},
            {"id": "join", "op": "add", "params": {"journal": str(log)}},
        ],
        [
            ("make", "result", "left", "image"),
            ("make", "result", "right", "image"),
            ("left", "result", "join", "a"),
            ("right", "result", "join", "b"),
        ],
    )
    record = await svc.run(doc)
    assert record["state"] == "done", record
    calls = {(c["op"], c.get("tag")): c["time"] for c in journal(log)}
    # both pauses started before either ended: the branches overlapped
    assert max(calls[("pause-start", "left")], calls[("pause-start", "right")]) < min(
        calls[("pause-end", "left")], calls[("pause-end", "right")]
    )
    assert calls[("add", None)] >= max(calls[("pause-end", "left")], calls[("pause-end", "right")])
    assert record["seconds"] < 2 * 1.5 + 2  # generous: in series it would be 3 s of pauses alone


async def test_an_error_names_the_node_with_traceback_and_cancels_downstream(
    svc: Any, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    doc = workflow(
        [
            {"id": "make", "op": "make"},
            {"id": "fail", "op": "boom", "params": {"message": "no nuclei here"}},
            {"id": "after", "op": "total"},
            {"id": "side", "op": "total", "params": {"journal": str(log)}},
        ],
        [
            ("make", "result", "fail", "image"),
            ("fail", "result", "after", "image"),
            ("make", "result", "side", "image"),
        ],
    )
    events: list[dict[str, Any]] = []
    record = await svc.run(doc, None, None, events.append)
    assert record["state"] == "error"
    failed = record["nodes"]["fail"]
    assert failed["state"] == "error"
    assert failed["error"] == "ValueError: no nuclei here"
    assert "Traceback" in failed["traceback"] and "wf_ops.py" in failed["traceback"]
    assert "raise ValueError(message)" in failed["traceback"]
    assert record["nodes"]["after"]["state"] == "cancelled"
    assert record["nodes"]["side"]["state"] == "done"  # the other branch finished
    await asyncio.sleep(0.3)
    error_event = next(e for e in events if e.get("state") == "error")
    assert error_event["node"] == "fail" and "no nuclei here" in error_event["error"]


async def test_until_runs_only_what_a_node_needs(svc: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    record = await svc.run(chain(log, value=7), None, {"until": "scale"})
    assert set(record["nodes"]) == {"make", "scale"}
    assert [c["op"] for c in journal(log)] == ["make", "scale"]
    with pytest.raises(Exception, match="no node 'nope'"):
        await svc.start(chain(log), None, {"until": "nope"})


async def test_inputs_defaults_and_invalid_documents(svc: Any, tmp_path: Path) -> None:
    doc = workflow(
        [{"id": "sum", "op": "total"}],
        [("$input", "image", "sum", "image")],
        inputs=[{"name": "image", "kind": "ndarray", "axes": "yx"}],
    )
    with pytest.raises(Exception, match="input image has no default"):
        await svc.start(doc)
    given = np.arange(6, dtype="uint16").reshape(2, 3)
    record = await svc.run(doc, {"image": given})
    assert record["nodes"]["sum"]["outputs"]["result"]["value"] == 15
    doc["inputs"][0]["default"] = {"sample": "nuclei-2d"}
    record = await svc.run(doc)
    assert record["state"] == "done" and record["nodes"]["sum"]["outputs"]["result"]["value"] > 0
    bad = workflow([{"id": "make", "op": "make", "params": {"value": 1000}}], [])
    result = await svc.validate(bad)
    assert result["ok"] is False
    assert result["errors"][0]["node"] == "make" and "≤ 100" in result["errors"][0]["message"]
    with pytest.raises(Exception, match="value must be ≤ 100"):
        await svc.start(bad)


async def test_runs_are_listed_newest_first(svc: Any, tmp_path: Path) -> None:
    first = await svc.run(chain(tmp_path / "a.jsonl"))
    second = await svc.run(chain(tmp_path / "b.jsonl"))
    runs = await svc.list_runs(2)
    assert [r["id"] for r in runs] == [second["id"], first["id"]]
    assert runs[0]["state"] == "done" and runs[0]["nodes"] == {"done": 3}
    assert (await svc.get_run(first["id"]))["id"] == first["id"]
    assert (await svc.wait(first["id"]))["state"] == "done"
