"""The command line's own hub (``LocalHub``): started on loopback with a random token, stopped after."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from scopeflow.cli.launcher import LocalHub

pytestmark = pytest.mark.hub


def test_a_token_that_starts_with_a_dash_still_starts_the_hub(tmp_path: Path):
    """Random url-safe tokens start with "-" one time in 64; the hub must not read one as an option."""
    hub = LocalHub(tmp_path / "data")
    hub.token = "-" + hub.token
    with hub:
        assert hub.url.startswith("http://127.0.0.1:")
        headers = {"Authorization": f"token {hub.token}"}
        request = urllib.request.Request(hub.url + "/api/hub", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert isinstance(json.load(answer), dict)
    assert hub.process is not None and hub.process.poll() is not None  # stopped with the block
