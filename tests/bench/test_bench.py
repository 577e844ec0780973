"""The benchmarks under bench/ run end to end (tiny sizes): a benchmark that cannot run measures nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def test_the_rpc_benchmark_measures_every_path_the_chromium_page_included(js_client, tmp_path) -> None:
    command = [sys.executable, "bench/rpc.py", "--sizes", "1", "--repeat", "1", "--tiny", "20"]
    command += ["--page-timeout", "180", "--json", str(tmp_path / "rpc.json")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no browser figures" not in done.stderr
    rows = {line.strip().split("  ")[0]: line.split() for line in done.stdout.splitlines()}
    page = rows["tiny call page → kernel (ms)"]
    # the page's tiny call and its raw websocket baseline are both measured, so their ratio is
    assert float(page[-3]) > 0 and float(page[-2]) > 0 and float(page[-1]) > 0
    assert any(line.strip().startswith("1 MB page ↔ kernel, HTTP") for line in done.stdout.splitlines())
