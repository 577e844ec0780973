"""Start-up and headless runs, from the shell, beside what the interpreter alone costs in the same run.

    python bench/startup.py [--repeat 3] [--json FILE]

Figures (medians of ``--repeat``):
- hub start → first answer: ``scopeflow serve`` launched until ``GET /api/hub`` answers 200 (the spare kernel
  still warming in the background), and stop: SIGTERM until the process has exited;
- a cached ``scopeflow run smooth-threshold-measure --input image=sample:nuclei-2d`` from the shell, on its
  own hub (the run before it filled the cache), and the same run sent to a hub already running (``--hub``);
- the baselines: ``python -c pass`` and ``python -c "import jupyter_server.serverapp"`` (what any
  jupyter-server-based process pays before doing anything).

The issue's goals: hub start ≤ 1 s, stop ≤ 0.3 s, the cached run ≤ 1.5 s. Figures go to
``artifacts/bench-startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hub import free_port

ROOT = Path(__file__).resolve().parents[1]
SCOPEFLOW = [sys.executable, "-m", "scopeflow.cli.main"]


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started


def start_and_stop(data_dir: Path) -> tuple[float, float]:
    """Seconds from launch to the first answer of ``/api/hub``, and from SIGTERM to exit."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "SCOPEFLOW_TOKEN": token}
    started = time.perf_counter()
    hub = subprocess.Popen(
        [*SCOPEFLOW, "serve", "--port", str(port), "--no-browser", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/hub", headers={"Authorization": f"token {token}"}
    )
    try:
        while True:
            if hub.poll() is not None:
                raise RuntimeError(f"the hub exited with {hub.returncode}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.005)
        first_answer = time.perf_counter() - started
        time.sleep(1)  # a user's first look: the spare kernel is still starting meanwhile
        stopping = time.perf_counter()
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)
        return first_answer, time.perf_counter() - stopping
    finally:
        if hub.poll() is None:
            hub.kill()


def cached_runs(data_dir: Path, repeat: int) -> dict[str, list[float]]:
    """A gallery workflow from the shell, cached, on its own hub and on a running one."""
    out = data_dir / "out"
    run = [
        *SCOPEFLOW,
        "run",
        "smooth-threshold-measure",
        "--input",
        "image=sample:nuclei-2d",
        "--output",
        str(out),
    ]
    own = [*run, "--data-dir", str(data_dir)]
    timed(own)  # fills the cache
    figures: dict[str, list[float]] = {"own_hub": [timed(own) for _ in range(repeat)]}
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "SCOPEFLOW_TOKEN": token}
    hub = subprocess.Popen(
        [*SCOPEFLOW, "serve", "--port", str(port), "--no-browser", "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/hub", headers={"Authorization": f"token {token}"}
        )
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        on_hub = [*run, "--hub", f"http://127.0.0.1:{port}"]
        timed(on_hub, env)
        figures["running_hub"] = [timed(on_hub, env) for _ in range(repeat)]
    finally:
        hub.terminate()
        hub.wait(30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench-startup.json")
    args = parser.parse_args()
    python = [timed([sys.executable, "-c", "pass"]) for _ in range(args.repeat)]
    jupyter = [timed([sys.executable, "-c", "import jupyter_server.serverapp"]) for _ in range(args.repeat)]
    with tempfile.TemporaryDirectory(prefix="scopeflow-bench-") as tmp:
        starts = [start_and_stop(Path(tmp) / f"hub-{i}") for i in range(args.repeat)]
        runs = cached_runs(Path(tmp) / "runs", args.repeat)
    median = statistics.median
    figures: dict[str, Any] = {
        "python_s": median(python),
        "import_jupyter_server_s": median(jupyter),
        "hub_first_answer_s": median(s for s, _ in starts),
        "hub_stop_s": median(s for _, s in starts),
        "cached_run_own_hub_s": median(runs["own_hub"]),
        "cached_run_running_hub_s": median(runs["running_hub"]),
        "load_average": os.getloadavg()[0],
    }
    goals = {
        "hub start to first answer <= 1 s": figures["hub_first_answer_s"] <= 1,
        "hub stop <= 0.3 s": figures["hub_stop_s"] <= 0.3,
        "cached scopeflow run from the shell <= 1.5 s": figures["cached_run_own_hub_s"] <= 1.5,
    }
    print(f"{'figure (seconds, median of ' + str(args.repeat) + ')':<52}{'scopeflow':>10}   baseline")
    base = f"python -c pass {figures['python_s']:.2f}"
    base += f", import jupyter_server {figures['import_jupyter_server_s']:.2f}"
    print(f"{'hub start -> first answer (goal <= 1)':<52}{figures['hub_first_answer_s']:>10.2f}   {base}")
    print(f"{'hub stop after SIGTERM (goal <= 0.3)':<52}{figures['hub_stop_s']:>10.2f}")
    print(
        f"{'cached scopeflow run, own hub (goal <= 1.5)':<52}{figures['cached_run_own_hub_s']:>10.2f}"
        f"   the same run on a running hub (--hub): {figures['cached_run_running_hub_s']:.2f}"
    )
    print(f"load average {figures['load_average']:.2f}; goals met: {sum(goals.values())} of {len(goals)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"figures": figures, "goals": goals, "starts": starts, "runs": runs}, indent=1)
    )


if __name__ == "__main__":
    main()
