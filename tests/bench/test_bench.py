"""The benchmarks under bench/ run end to end (tiny sizes): a benchmark that cannot run measures nothing."""

from __future__ import annotations

import json
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
    assert any(line.strip().startswith("1 MB page ↔ kernel (MB/s)") for line in done.stdout.splitlines())


def test_the_calls_benchmark_measures_every_figure_and_says_when_hypha_is_absent(tmp_path) -> None:
    out = tmp_path / "calls.json"
    command = [sys.executable, "bench/calls.py", "--count", "20", "--callers", "2", "--per-caller", "5"]
    command += ["--repeat", "1", "--array-mb", "1", "--peers", "hypha", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Hypha: skipped (give --hypha-python PY" in done.stdout
    run = json.loads(out.read_text())["repetitions"][0]
    for party in ("raw", "scopeflow"):
        assert run[party]["throughput"]["calls_per_s"] > 0 and run[party]["array_mb_s"] > 0
    assert run["scopeflow"]["latency_ms"]["sync"] > 0 and run["scopeflow"]["latency_ms"]["async"] > 0


def test_the_startup_benchmark_times_a_hub_and_a_cached_headless_run(tmp_path) -> None:
    out = tmp_path / "startup.json"
    command = [sys.executable, "bench/startup.py", "--repeat", "1", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())["figures"]
    assert 0 < figures["hub_first_answer_s"] < 60 and 0 < figures["hub_stop_s"] < 30
    assert 0 < figures["cached_run_own_hub_s"] < 120 and 0 < figures["cached_run_running_hub_s"] < 120
