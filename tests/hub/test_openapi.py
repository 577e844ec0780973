"""Every REST door, fuzzed from the OpenAPI document the hub serves: whatever the input the document
allows (and much it does not), the answer is never a 5xx and its status is one the document names.

schemathesis generates the requests (hypothesis underneath; a bounded number per operation in CI). URLs in
bodies are pointed at a closed loopback port: nothing here reaches beyond this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, status_code_conformance

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.hub.openapi import openapi_document

PLUGINS = Path(__file__).parents[1] / "workflow_plugins"
CLOSED = "http://127.0.0.1:9/nothing.py"  # the discard port: refused at once

pytestmark = pytest.mark.hub

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def api_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("openapi"), "--plugins-dir", str(PLUGINS))
    yield running
    stop_hub(running)


def test_the_served_document_is_this_one(api_hub: HubProcess) -> None:
    assert api_hub.json("/api/openapi.json") == openapi_document()
    assert api_hub.request("/api/openapi.json", token=None)[0] == 403


def _loopback_only(body: Any) -> None:
    if isinstance(body, dict):
        for key in ("url",):
            if key in body:
                body[key] = CLOSED


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: Any, api_hub: HubProcess) -> None:
    _loopback_only(case.body)
    if case.path.endswith("/{action}") and case.path_parameters.get("action") in ("start", "restart"):
        case.path_parameters["plugin_id"] = "no-such-plugin"  # no kernels: fuzzing, not starting plugins
    case.call_and_validate(
        base_url=api_hub.url,
        headers={"Authorization": f"token {api_hub.token}"},
        checks=[not_a_server_error, status_code_conformance],
        timeout=60,
    )
