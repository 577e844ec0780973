"""A full disk: saves and installs get a 507 that says so, a workflow node says what ran out, nothing
half-written is left, and everything works again once there is space.

The hub's data dir sits on a 16 MiB tmpfs, filled up after start. Mounting needs root; elsewhere the test is
skipped with the reason."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.registry import Registry
from scopeflow.rpc.client import connect
from scopeflow.workflows.pins import make_pins

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"

pytestmark = pytest.mark.hub


@pytest.fixture
def small_disk_hub(tmp_path: Path) -> Iterator[HubProcess]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the data dir needs root")
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        hub = start_hub(tmp_path, "--plugins-dir", str(PLUGINS))
        try:
            yield hub
        finally:
            stop_hub(hub)
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk holding ``folder`` has no byte left."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def document(height: int) -> dict[str, Any]:
    registry = Registry(None, [PLUGINS], Path("/nonexistent"))
    registry.scan()
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": "big",
        "nodes": [
            {"id": "make", "plugin": "wf-ops", "op": "make", "params": {"height": height, "width": 512}}
        ],
        "edges": [],
        "outputs": [{"name": "image", "from": ["make", "result"]}],
        "plugins": make_pins(registry, ["wf-ops"]),
    }


async def test_a_full_disk_is_a_507_and_a_clear_node_error_and_nothing_is_lost(
    small_disk_hub: HubProcess,
) -> None:
    hub = small_disk_hub
    server = await connect(hub.url, token=hub.token)
    try:
        await server.get_plugin("wf-ops")  # its kernel is up before the disk fills
        workflows = await server.get_service("workflows")
        assert hub.request("/api/workflows/kept", "PUT", document(8))[0] in (200, 201)
        filler = fill(hub.data_dir)

        status, body = hub.request("/api/workflows/new-one", "PUT", document(8))
        assert status == 507 and b"disk is full" in body, body
        assert hub.request("/api/workflows/new-one")[0] == 404  # nothing half-saved
        status, body = hub.request("/api/workflows/kept", "PUT", document(16))
        assert status == 507
        assert json.loads(hub.request("/api/workflows/kept")[1])["nodes"][0]["params"]["height"] == 8
        source = 'PLUGIN = {"name": "Late Arrival"}\n'
        status, body = hub.request("/api/plugins", "POST", {"source": source, "filename": "late.py"})
        assert status == 507 and b"disk is full" in body, body

        with pytest.raises(Exception, match="disk is full: recording the run"):
            await workflows.run(document(1024))
        os.truncate(filler, filler.stat().st_size - (256 << 10))  # room for the run's record, not its result
        record = await workflows.run(document(1024))
        node = record["nodes"]["make"]
        assert node["state"] == "error", node
        assert "disk is full" in node["error"] and "workflow cache" in node["error"], node["error"]
        leftovers = [p for p in hub.data_dir.rglob("*") if p.name.endswith(".tmp") or ".part" in p.name]
        assert leftovers == []

        filler.unlink()  # space again: the same hub carries on
        assert hub.request("/api/workflows/new-one", "PUT", document(8))[0] in (200, 201)
        record = await workflows.run(document(1024))
        assert record["nodes"]["make"]["state"] == "done", record["nodes"]["make"]
    finally:
        await server.disconnect()
