"""Malformed input gets a clear 4xx, never a 500, and the hub keeps answering."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from conftest import HubProcess

pytestmark = pytest.mark.hub

DEEP = ("[" * 100_000 + "]" * 100_000).encode()
A_LIST_AS_PLUGIN = {
    "format": "scopeflow.workflow",
    "version": 1,
    "nodes": [{"id": "a", "plugin": ["x"], "op": "y"}],
}


def send(hub: HubProcess, method: str, path: str, body: object) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        hub.url + path,
        data=data,
        method=method,
        headers={"Authorization": f"token {hub.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("POST", "/api/workflows/check", DEEP, "nested too deeply"),
        ("PUT", "/api/workflows/deep", DEEP, "nested too deeply"),
        ("POST", "/api/workflows/pin", DEEP, "nested too deeply"),
        ("POST", "/api/plugins", DEEP, "nested too deeply"),
        ("POST", "/api/plugins", 5, "send {"),
        ("POST", "/api/plugins", [1, 2], "send {"),
        ("PUT", "/api/workflows/listed", A_LIST_AS_PLUGIN, "plugin"),
    ],
)
def test_malformed_bodies_get_a_4xx_that_says_why(
    hub: HubProcess, method: str, path: str, body: object, says: str
) -> None:
    status, text = send(hub, method, path, body)
    assert 400 <= status < 500, (status, text[:300])
    assert says in text
    assert hub.request("/api/hub")[0] == 200


def test_a_plugin_given_as_a_list_is_named_in_the_check(hub: HubProcess) -> None:
    status, text = send(hub, "POST", "/api/workflows/check", A_LIST_AS_PLUGIN)
    assert status == 200
    check = json.loads(text)
    assert not check["ok"] and any("nodes[0].plugin" in e["field"] for e in check["errors"])
