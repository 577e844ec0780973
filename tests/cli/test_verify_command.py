"""``scopeflow verify``: a plugin's test cases headless, on a hub started for the check or a running one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HubProcess

pytestmark = pytest.mark.hub


def verify(*args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``scopeflow verify ARGS``; ``token``: given on standard input (``--token-fd 0``)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scopeflow.cli.main",
            "verify",
            *args,
            *(["--token-fd", "0"] if token else []),
        ],
        input=token,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_a_built_in_plugin_verifies_on_a_hub_started_for_it(tmp_path: Path) -> None:
    done = verify("hello", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ adds two numbers" in done.stdout and "verified: 2 of 2 case(s) passed" in done.stdout


def test_a_plugin_file_that_fails_exits_1_and_says_by_how_much(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "off_by_one.py").write_text(
        "from scopeflow import op\n"
        'PLUGIN = {"id": "off-by-one", "name": "Off by one", "tests": [\n'
        '    {"op": "add", "inputs": {"a": 2, "b": 2}, "expected": {"result": 4}, "name": "two and two"}]}\n'
        "@op()\n"
        "def add(a: float, b: float) -> float:\n"
        "    return a + b + 1\n"
    )
    done = verify(str(folder / "off_by_one.py"), "--data-dir", str(tmp_path / "data"), "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    (case,) = report["cases"]
    assert case["passed"] is False and case["difference"] == 1.0


def test_on_a_running_hub_and_unknown_plugins(hub: HubProcess, tmp_path: Path) -> None:
    done = verify("gaussian", "--hub", hub.url, cwd=tmp_path, token=hub.token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "largest |got - expected|" in done.stdout
    missing = verify("no-such-plugin", "--hub", hub.url, cwd=tmp_path, token=hub.token)
    assert missing.returncode == 2 and "no-such-plugin" in missing.stderr
