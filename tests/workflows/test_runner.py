"""The workflow runner against a real hub with real kernels, through the ``workflows`` service."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.registry import Registry
from scopeflow.rpc.client import connect
from scopeflow.workflows.pins import make_pins

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"


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
    # a node's seconds are its own work, not the time it waited for its parents
    assert record["nodes"]["left"]["seconds"] >= 1.5
    assert record["nodes"]["join"]["seconds"] < 1.0


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


async def test_progress_of_a_node_becomes_running_events(svc: Any) -> None:
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"value": 4}},
            {"id": "slow", "op": "progress", "params": {"steps": 4}},
        ],
        [("make", "result", "slow", "image")],
    )
    events: list[dict[str, Any]] = []
    record = await svc.run(doc, None, {"cache": False}, events.append)
    assert record["state"] == "done"
    for _ in range(50):
        if events and events[-1]["type"] == "run":
            break
        await asyncio.sleep(0.05)
    progress = [e["progress"] for e in events if e.get("node") == "slow" and e["state"] == "running"]
    assert progress == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [
        e["progress"] for e in record["events"] if e.get("node") == "slow" and e["state"] == "running"
    ] == progress


async def test_progress_reaches_only_the_run_whose_call_made_it(svc: Any) -> None:
    """Two runs use the same plugin at once: each node sees its own progress, never the other's."""

    def doc(steps: int) -> dict[str, Any]:
        return workflow(
            [
                {"id": "make", "op": "make", "params": {"value": steps}},
                {"id": "slow", "op": "progress", "params": {"steps": steps, "delay": 0.2}},
            ],
            [("make", "result", "slow", "image")],
        )

    seen: dict[int, list[dict[str, Any]]] = {4: [], 5: []}
    records = await asyncio.gather(
        *(svc.run(doc(steps), None, {"cache": False}, seen[steps].append) for steps in seen)
    )
    assert [r["state"] for r in records] == ["done", "done"]
    for steps, record in zip(seen, records, strict=True):
        progress = [
            e["progress"] for e in record["events"] if e.get("node") == "slow" and e["state"] == "running"
        ]
        assert progress == [0.0, *((i + 1) / steps for i in range(steps))], (steps, progress)


async def test_a_runs_plugins_show_their_progress_in_the_tab_that_started_it(wf_hub: HubProcess) -> None:
    """The app's tab that started a run gets its plugins' UI calls, not the newest tab."""
    shown: dict[str, list[Any]] = {"first": [], "second": []}
    tabs = {name: await connect(wf_hub.url, token=wf_hub.token, client_id=f"app-{name}") for name in shown}
    try:
        for name, tab in tabs.items():  # the second tab is the newest
            await tab.register_service({"id": "imjoy-api", "showProgress": shown[name].append})
        doc = workflow(
            [
                {"id": "make", "op": "make", "params": {"value": 3}},
                {"id": "slow", "op": "progress", "params": {"steps": 2, "delay": 0.1}},
            ],
            [("make", "result", "slow", "image")],
        )
        record = await (await tabs["first"].get_service("workflows")).run(doc, None, {"cache": False})
        assert record["state"] == "done"
        assert shown == {"first": [50, 100], "second": []}
    finally:
        for tab in tabs.values():
            await tab.disconnect()


async def test_a_plugin_that_dies_fails_its_node_not_the_hub(svc: Any, wf_hub: HubProcess) -> None:
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"value": 9}},
            {"id": "die", "op": "die"},
            {"id": "after", "op": "total"},
        ],
        [("make", "result", "die", "image"), ("die", "result", "after", "image")],
    )
    started = time.monotonic()
    record = await svc.run(doc)
    assert time.monotonic() - started < 60
    assert record["state"] == "error"
    assert record["nodes"]["die"]["state"] == "error" and record["nodes"]["die"]["error"]
    assert record["nodes"]["after"]["state"] == "cancelled"
    assert wf_hub.request("/api/hub")[0] == 200
    again = await svc.run(chain(Path(str(record["id"]))))  # the plugin starts again for the next run
    assert again["state"] == "done"


async def test_cancel_mid_run(svc: Any, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"value": 5}},
            {"id": "wait", "op": "pause", "params": {"seconds": 30, "journal": str(log)}},
            {"id": "after", "op": "total"},
        ],
        [("make", "result", "wait", "image"), ("wait", "result", "after", "image")],
    )
    run_id = await svc.start(doc, None, {"cache": False})
    for _ in range(200):
        if any(c["op"] == "pause-start" for c in journal(log)):
            break
        await asyncio.sleep(0.1)
    started = time.monotonic()
    record = await svc.cancel(run_id)
    assert time.monotonic() - started < 10
    assert record["state"] == "cancelled"
    assert record["nodes"]["make"]["state"] == "done"
    assert record["nodes"]["wait"]["state"] == "cancelled"
    assert record["nodes"]["after"]["state"] == "cancelled"
    assert (await svc.get_run(run_id))["state"] == "cancelled"
    assert (await svc.wait(run_id))["state"] == "cancelled"


@pytest.mark.hub
async def test_history_survives_a_restart(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    hub = start_hub(tmp_path / "one", "--plugins-dir", str(PLUGINS))
    try:
        server = await connect(hub.url, token=hub.token)
        svc = await server.get_service("workflows")
        done = await svc.run(chain(tmp_path / "calls.jsonl"))
        slow = workflow(
            [{"id": "make", "op": "make"}, {"id": "wait", "op": "pause", "params": {"seconds": 60}}],
            [("make", "result", "wait", "image")],
        )
        unfinished = await svc.start(slow)
        for _ in range(100):
            if (await svc.get_run(unfinished))["nodes"]["wait"]["state"] == "running":
                break
            await asyncio.sleep(0.1)
        await server.disconnect()
    finally:
        stop_hub(hub)
    hub = start_hub(tmp_path / "one", "--plugins-dir", str(PLUGINS), port=None)
    try:
        server = await connect(hub.url, token=hub.token)
        svc = await server.get_service("workflows")
        runs = await svc.list_runs()
        assert [r["id"] for r in runs] == [unfinished, done["id"]]
        assert runs[0]["state"] == "cancelled" and runs[0]["nodes"] == {"done": 1, "cancelled": 1}
        assert "hub stopped" in (await svc.get_run(unfinished))["nodes"]["wait"]["error"]
        record = await svc.get_run(done["id"])
        assert (
            record["state"] == "done" and record["nodes"]["sum"]["outputs"] == done["nodes"]["sum"]["outputs"]
        )
        assert await svc.run_output(done["id"], "total") == 384  # from the cache on disk
        again = await svc.run(chain(tmp_path / "calls.jsonl"))
        assert {s["state"] for s in again["nodes"].values()} == {"cached"}
        with pytest.raises(Exception, match="no run"):
            await svc.get_run("20000101-000000-000-abcdef")
        await server.disconnect()
    finally:
        stop_hub(hub)


async def test_large_arrays_in_and_out(svc: Any, tmp_path: Path) -> None:
    """Arrays above the inline limit go between client, hub and kernels out of band, and into the cache."""
    big = np.random.default_rng(3).integers(0, 1000, (1200, 1000), dtype="uint16")
    doc = workflow(
        [{"id": "scale", "op": "scale", "params": {"factor": 3}}, {"id": "sum", "op": "total"}],
        [("$input", "image", "scale", "image"), ("scale", "result", "sum", "image")],
        inputs=[{"name": "image", "kind": "ndarray", "axes": "yx"}],
        outputs=[{"name": "scaled", "from": ["scale", "result"]}],
    )
    record = await svc.run(doc, {"image": big})
    assert record["state"] == "done", record
    scaled = await svc.run_output(record["id"], "scaled")
    assert scaled.dtype == np.uint16 and np.array_equal(scaled, big * 3)
    assert record["nodes"]["sum"]["outputs"]["result"]["value"] == float((big * 3).sum())
    again = await svc.run(doc, {"image": big.copy()})
    assert {s["state"] for s in again["nodes"].values()} == {"cached"}


def test_the_npm_imjoy_rpc_client_runs_workflows(
    wf_hub: HubProcess, js_client: list[str], tmp_path: Path
) -> None:
    """The web app's client library: positional calls, a JS callback for events, an array result."""
    script = Path(__file__).parents[1] / "js" / "workflows.js"
    doc = chain(tmp_path / "calls.jsonl", value=2)
    done = subprocess.run(
        [js_client[0], str(script), wf_hub.url, wf_hub.token, json.dumps(doc)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert out["validate"]["ok"] is True
    assert out["state"] == "done" and out["nodes"] == {"make": "done", "scale": "done", "sum": "done"}
    assert out["image"] == {"shape": [8, 8], "dtype": "float32"}
    assert out["events"][:3] == ["make:queued", "scale:queued", "sum:queued"]
    assert out["events"][-1] == "run:done" and "sum:done" in out["events"]
    assert out["runs"] == [True]


async def test_the_service_is_listed(wf_hub: HubProcess) -> None:
    server = await connect(wf_hub.url, token=wf_hub.token)
    try:
        listed = {s["id"]: s for s in await server.list_services()}
        assert listed["default/workspace-manager:workflows"]["type"] == "scopeflow-workflows"
        assert (await server.get_service("workspace-manager:workflows"))["id"].endswith("workflows")
    finally:
        await server.disconnect()


async def test_a_damaged_cache_entry_is_computed_again(svc: Any, wf_hub: HubProcess, tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    first = await svc.run(chain(log, value=11))
    key = first["nodes"]["make"]["key"]
    entry = wf_hub.data_dir / "cache" / "objects" / key[:2] / key
    with open(entry / "0.npy", "r+b") as file:
        file.truncate(100)
    again = await svc.run(chain(log, value=11))
    assert again["state"] == "done"
    assert [again["nodes"][n]["state"] for n in ("make", "scale", "sum")] == ["done", "cached", "cached"]
    assert [c["op"] for c in journal(log)] == ["make", "scale", "total", "make"]
    (entry / "meta.json").write_text("{")
    third = await svc.run(chain(log, value=11))
    assert third["nodes"]["make"]["state"] == "done"
    with pytest.raises(Exception, match="no cached result"):
        await svc.output("0" * 64, "result")


async def test_events_after_start_returns(svc: Any, tmp_path: Path) -> None:
    """imjoy-rpc drops a bare callback once ``start`` returns; wrapped with ``_rintf`` it stays."""
    doc = chain(tmp_path / "calls.jsonl", value=13)
    events: list[dict[str, Any]] = []
    run_id = await svc.start(doc, None, {"cache": False}, {"_rintf": True, "on_event": events.append})
    record = await svc.wait(run_id)
    for _ in range(100):
        if events and events[-1]["type"] == "run":
            break
        await asyncio.sleep(0.05)
    assert [e["state"] for e in events if e.get("node") == "sum"] == ["queued", "running", "done"]
    assert events[-1]["state"] == record["state"] == "done"


@pytest.mark.hub
async def test_an_edited_plugin_file_is_what_runs(tmp_path: Path) -> None:
    """Pins and cache keys follow the plugin file on disk, edited since the hub last read it."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    source = (PLUGINS / "wf_ops.py").read_text()
    (plugins / "wf_ops.py").write_text(source)
    (tmp_path / "hub").mkdir()
    hub = start_hub(tmp_path / "hub", "--plugins-dir", str(plugins))
    try:
        server = await connect(hub.url, token=hub.token)
        svc = await server.get_service("workflows")
        doc = chain(tmp_path / "calls.jsonl")
        first = await svc.run(doc)
        assert first["state"] == "done"
        edited = source.replace("np.full((height, width), value,", "np.full((height, width), value + 1,")
        assert edited != source
        (plugins / "wf_ops.py").write_text(edited)
        check = await svc.validate(doc)
        assert check["ok"] is True and check["pins"][0]["state"] == "changed"
        second = await svc.run(doc)
        assert [second["nodes"][n]["state"] for n in ("make", "scale", "sum")] == ["done"] * 3
        assert second["plugins"]["wf-ops"]["sha256"] != first["plugins"]["wf-ops"]["sha256"]
        assert second["pins"][0]["state"] == "changed"
        assert second["nodes"]["sum"]["outputs"]["result"]["value"] == 8 * 8 * (3 + 1) * 2  # the new code ran
        await server.disconnect()
    finally:
        stop_hub(hub)


async def test_tables_and_several_outputs(svc: Any) -> None:
    doc = workflow(
        [
            {"id": "make", "op": "make", "params": {"value": 2, "height": 6}},
            {"id": "stack", "op": "stack"},
            {"id": "regions", "op": "regions"},
            {"id": "split", "op": "split"},
            {"id": "half", "op": "total"},
        ],
        [
            ("make", "result", "stack", "image"),
            ("stack", "result", "regions", "image"),
            ("make", "result", "split", "image"),
            ("split", "result0", "half", "image"),
        ],
        outputs=[
            {"name": "table", "from": ["regions", "result"]},
            {"name": "peak", "from": ["split", "result1"]},
        ],
    )
    record = await svc.run(doc)
    assert record["state"] == "done", record
    assert record["nodes"]["regions"]["outputs"]["result"] == {
        "kind": "table",
        "columns": ["channel", "mean"],
        "rows": 2,
    }
    assert record["nodes"]["split"]["outputs"]["result0"] == {
        "kind": "ndarray",
        "shape": [3, 8],
        "dtype": "float32",
    }
    assert record["outputs"]["peak"]["summary"] == {"kind": "value", "value": 2.0}
    assert record["nodes"]["half"]["outputs"]["result"]["value"] == 3 * 8 * 2
    assert await svc.run_output(record["id"], "table") == {"channel": [0, 1], "mean": [2.0, 2.0]}
