"""REST doors of workflows on a real hub: documents and versions, gallery, check, fetch, pin, the token."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.plugins.registry import Registry
from scopeflow.workflows.library import Gallery
from scopeflow.workflows.pins import make_pins

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"
PLUGIN_V1 = '''"""A plugin installed from source, twice."""
from scopeflow import op

PLUGIN = {"id": "pinned", "name": "Pinned", "version": "VERSION"}


@op
def twice(x: float = 1.0) -> float:
    return 2 * x
'''


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A built-in plugins folder with two example workflows (and no plugins)."""
    root = tmp_path_factory.mktemp("builtin")
    (root / "workflows").mkdir()
    for name, title in (("denoise", "Denoise"), ("count", "Count cells")):
        doc = {"format": "scopeflow.workflow", "version": 1, "title": title, "description": f"{title} demo"}
        (root / "workflows" / f"{name}.json").write_text(json.dumps(doc))
    return root


@pytest.fixture(scope="module")
def wf_hub(tmp_path_factory: pytest.TempPathFactory, gallery: Path) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("wf-rest")
    config = tmp / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"Hub": {"builtin_plugins_dir": str(gallery)}})
    )
    running = start_hub(tmp, "--plugins-dir", str(PLUGINS), env={"JUPYTER_CONFIG_DIR": str(config)})
    yield running
    stop_hub(running)


def document(value: float = 3) -> dict[str, Any]:
    registry = Registry(None, [PLUGINS], Path("/nonexistent"))
    registry.scan()
    return {
        "format": "scopeflow.workflow",
        "version": 1,
        "title": "Make and sum",
        "description": "A *small* example.",
        "nodes": [
            {"id": "make", "plugin": "wf-ops", "op": "make", "params": {"value": value}},
            {"id": "sum", "plugin": "wf-ops", "op": "total"},
        ],
        "edges": [{"from": ["make", "result"], "to": ["sum", "image"]}],
        "outputs": [{"name": "total", "from": ["sum", "result"]}],
        "plugins": make_pins(registry, ["wf-ops"]),
    }


def test_save_load_versions_delete(wf_hub: HubProcess) -> None:
    assert wf_hub.json("/api/workflows") == []
    saved = wf_hub.json("/api/workflows/demo", "PUT", document(3))
    assert saved["version"] == 1 and len(saved["sha256"]) == 64
    assert wf_hub.json("/api/workflows/demo", "PUT", document(3))["version"] == 1  # unchanged: no new version
    assert wf_hub.json("/api/workflows/demo", "PUT", document(4))["version"] == 2
    assert wf_hub.json("/api/workflows/demo") == document(4)
    assert wf_hub.json("/api/workflows/demo?version=1") == document(3)
    [listed] = wf_hub.json("/api/workflows")
    assert listed["name"] == "demo" and listed["title"] == "Make and sum" and listed["versions"] == 2
    assert listed["description"] == "A *small* example." and listed["updated"].endswith("Z")
    versions = wf_hub.json("/api/workflows/demo/versions")
    assert [v["version"] for v in versions] == [1, 2] and all(v["size"] > 0 for v in versions)
    assert wf_hub.request("/api/workflows/demo", "DELETE")[0] == 204
    assert wf_hub.request("/api/workflows/demo")[0] == 404
    assert wf_hub.json("/api/workflows") == []
    assert [v["version"] for v in wf_hub.json("/api/workflows/demo/versions")] == [1, 2]  # kept
    assert wf_hub.json("/api/workflows/demo?version=2") == document(4)
    assert wf_hub.request("/api/workflows/demo?version=9")[0] == 404
    files = sorted(p.name for p in (wf_hub.data_dir / "workflows").iterdir())
    assert files == [".versions"]  # no temporary files left behind


def test_a_bad_document_is_refused_with_every_error(wf_hub: HubProcess) -> None:
    bad = document()
    bad["nodes"][0]["params"] = {"value": 500}
    bad["edges"].append({"from": ["make", "nope"], "to": ["sum", "journal"]})
    status, body = wf_hub.request("/api/workflows/bad", "PUT", bad)
    assert status == 400
    reply = json.loads(body)
    assert reply["ok"] is False
    fields = {e["field"] for e in reply["errors"]}
    assert {"nodes[0].params.value", "edges[1].from"} <= fields
    assert wf_hub.request("/api/workflows/bad")[0] == 404  # nothing saved
    status, body = wf_hub.request(
        "/api/workflows/bad", "PUT", None, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert wf_hub.request("/api/workflows/check", "PUT", document())[0] in (404, 405)  # a reserved name
    check = wf_hub.json("/api/workflows/check", "POST", bad)
    assert check["ok"] is False and len(check["errors"]) == 2
    good = wf_hub.json("/api/workflows/check", "POST", document())
    assert good == {"ok": True, "errors": [], "pins": good["pins"]} and good["pins"][0]["state"] == "ok"


def test_the_token_guards_every_route(wf_hub: HubProcess) -> None:
    routes = [
        ("/api/workflows", "GET"),
        ("/api/workflows/demo", "GET"),
        ("/api/workflows/demo", "PUT"),
        ("/api/workflows/demo", "DELETE"),
        ("/api/workflows/demo/versions", "GET"),
        ("/api/workflows/check", "POST"),
        ("/api/workflows/fetch", "POST"),
        ("/api/workflows/pin", "POST"),
        ("/api/gallery", "GET"),
        ("/api/gallery/denoise", "GET"),
        ("/api/workflow-schema", "GET"),
    ]
    for path, method in routes:
        body = document() if method in ("PUT", "POST") else None
        assert wf_hub.request(path, method, body, token=None)[0] == 403, (method, path)
        assert wf_hub.request(path, method, body, token="wrong")[0] == 403, (method, path)


def test_gallery_and_schema(wf_hub: HubProcess) -> None:
    listed = wf_hub.json("/api/gallery")
    assert [g["name"] for g in listed] == ["count", "denoise"]
    assert listed[1] == {"name": "denoise", "title": "Denoise", "description": "Denoise demo"}
    assert wf_hub.json("/api/gallery/count")["title"] == "Count cells"
    assert wf_hub.request("/api/gallery/nope")[0] == 404
    schema = wf_hub.json("/api/workflow-schema")
    assert schema["title"] == "WorkflowDoc" and "nodes" in schema["properties"]


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_fetch_refuses_private_addresses_unless_asked(wf_hub: HubProcess, tmp_path: Path) -> None:
    (tmp_path / "shared.json").write_text(json.dumps(document(5)))
    (tmp_path / "junk.json").write_text("{ not json")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Files(*a, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/shared.json"
        status, body = wf_hub.request("/api/workflows/fetch", "POST", {"url": url, "public_only": True})
        assert status == 400 and b"confirm" in body
        status, body = wf_hub.request("/api/workflows/fetch", "POST", {"url": url})  # public only by default
        assert status == 400
        fetched = wf_hub.json("/api/workflows/fetch", "POST", {"url": url, "public_only": False})
        assert fetched["document"] == document(5) and fetched["check"]["ok"] is True
        junk = url.replace("shared", "junk")
        status, body = wf_hub.request("/api/workflows/fetch", "POST", {"url": junk, "public_only": False})
        assert status == 400
        status, _ = wf_hub.request("/api/workflows/fetch", "POST", {"url": "file:///etc/passwd"})
        assert status == 400
    finally:
        server.shutdown()


def test_pin_puts_a_kept_version_back(wf_hub: HubProcess) -> None:
    first = wf_hub.json(
        "/api/plugins", "POST", {"source": PLUGIN_V1.replace("VERSION", "1.0"), "filename": "pinned.py"}
    )
    second = wf_hub.json(
        "/api/plugins", "POST", {"source": PLUGIN_V1.replace("VERSION", "2.0"), "filename": "pinned.py"}
    )
    assert first["sha256"] != second["sha256"]
    doc = document()
    doc["nodes"].append({"id": "twice", "plugin": "pinned", "op": "twice"})
    doc["plugins"]["pinned"] = {"version": "1.0", "sha256": first["sha256"], "builtin": False, "url": None}
    states = {p["plugin"]: p["state"] for p in wf_hub.json("/api/workflows/check", "POST", doc)["pins"]}
    assert states == {"pinned": "changed", "wf-ops": "ok"}
    restored = wf_hub.json("/api/workflows/pin", "POST", {"plugin": "pinned", "sha256": first["sha256"]})
    assert restored["state"] == "ok" and restored["current"]["sha256"] == first["sha256"]
    assert wf_hub.json("/api/plugins/pinned")["version"] == "1.0"
    states = {p["plugin"]: p["state"] for p in wf_hub.json("/api/workflows/check", "POST", doc)["pins"]}
    assert states == {"pinned": "ok", "wf-ops": "ok"}
    status, body = wf_hub.request("/api/workflows/pin", "POST", {"plugin": "pinned", "sha256": "a" * 64})
    assert status == 409 and b"pinned" in body
    status, _ = wf_hub.request("/api/workflows/pin", "POST", {"plugin": "pinned"})
    assert status == 400


def test_a_missing_gallery_folder_is_an_empty_gallery(tmp_path: Path) -> None:
    assert Gallery(tmp_path / "nowhere").listing() == []
    assert Gallery(None).listing() == []
    with pytest.raises(KeyError):
        Gallery(tmp_path / "nowhere").load("denoise")


def test_pin_never_installs_from_a_url_nor_another_plugins_copy(
    wf_hub: HubProcess, file_server: tuple[str, Path]
) -> None:
    """A shared document names the URL and the sha256: the hub must not fetch and install that file."""
    base, folder = file_server
    evil = PLUGIN_V1.replace("VERSION", "6.6").replace('"id": "pinned"', '"id": "intruder"')
    (folder / "evil.py").write_text(evil)
    sha = hashlib.sha256(evil.encode()).hexdigest()
    before = wf_hub.json("/api/plugins/wf-ops")["sha256"]
    body = {"plugin": "wf-ops", "sha256": sha, "url": f"{base}/evil.py"}
    status, reply = wf_hub.request("/api/workflows/pin", "POST", body)
    assert status == 409 and b"not kept on this hub" in reply
    assert wf_hub.json("/api/plugins/wf-ops")["sha256"] == before
    assert wf_hub.request("/api/plugins/intruder")[0] == 404  # nothing was fetched and installed
