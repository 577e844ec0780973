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


def test_the_token_reaches_the_hub_on_a_pipe_only(tmp_path: Path):
    """``scopeflow run``'s hub: the token is not on its command line, in its environment or in its log (a
    temporary file that a plugin kernel, running as the same user, could read)."""
    with LocalHub(tmp_path / "data") as hub:
        assert hub.process is not None
        token = hub.token.encode()
        proc = Path(f"/proc/{hub.process.pid}")
        if proc.is_dir():
            assert b"scopeflow.cli.main" in (proc / "cmdline").read_bytes()
            assert token not in (proc / "cmdline").read_bytes()
            assert token not in (proc / "environ").read_bytes()
        assert "Open this URL in a browser" in hub.log()
        assert hub.token not in hub.log()
