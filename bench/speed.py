"""Every speed figure of the issue in one run, each beside its baseline from the same run and its goal.

    python bench/speed.py [--hypha-python PY] [--quick]

Runs, one after the other on a quiet machine: ``calls.py`` (tiny calls, 50 callers, a 64 MB array; raw
websocket and Hypha when PY is given), ``startup.py`` (hub start and stop, a cached headless run),
``inference.py`` (segmentation of 512² and 1024², beside the 0.3.3 way), ``quality.py --only denoising
--crop-only`` (noise2void's defaults on 256², beside the best Gaussian and non-local means), ``web.py`` (the
app's first paint to connected) and ``rpc.py --sizes 4`` (a 4 MB array from the page, beside a raw websocket
in the same page). Each writes its own ``artifacts/bench-*.json``; this one prints the table and writes
``artifacts/bench-speed.json``. ``--quick`` runs smaller loads (for a look, not for the figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ARTIFACTS = BENCH.parent / "artifacts"


def run(script: str, *args: str) -> dict[str, Any]:
    out = ARTIFACTS / f"bench-{Path(script).stem}.json"
    if script in ("inference.py", "quality.py", "web.py", "rpc.py"):
        out = ARTIFACTS / f"bench-speed-{Path(script).stem}.json"
    started = time.monotonic()
    print(f"--- {script} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(BENCH / script), *args, "--json", str(out)], check=True)
    print(f"    ({time.monotonic() - started:.0f} s)", flush=True)
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hypha-python", default=None, help="the Python of an environment holding hypha")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    ARTIFACTS.mkdir(exist_ok=True)
    load = ["--callers", "10", "--per-caller", "50", "--repeat", "1"] if args.quick else []
    peers = ["--peers", "hypha", "--hypha-python", args.hypha_python] if args.hypha_python else []
    calls = run("calls.py", *load, *peers)
    startup = run("startup.py", *(["--repeat", "1"] if args.quick else []))
    inference = run("inference.py", "--repeat", "1" if args.quick else "3")
    quality = run("quality.py", "--only", "denoising", "--crop-only")
    web = run("web.py", "--runs", "3" if args.quick else "7")
    rpc = run("rpc.py", "--sizes", "4", "--repeat", "3")

    rows: list[tuple[str, str, str, bool]] = []  # figure, scopeflow, baseline(s), met

    def add(figure: str, ours: str, baseline: str, met: bool) -> None:
        rows.append((figure, ours, baseline, met))

    for name, met in calls["goals"].items():
        add(f"calls: {name}", "", "", met)
    first = startup["figures"]
    add("hub start -> first answer <= 1 s", f"{first['hub_first_answer_s']:.2f} s",
        f"python -c pass {first['python_s']:.2f} s", first["hub_first_answer_s"] <= 1)  # fmt: skip
    add("hub stop <= 0.3 s", f"{first['hub_stop_s']:.2f} s", "", first["hub_stop_s"] <= 0.3)
    cached = first["cached_run_own_hub_s"]
    add("cached `scopeflow run` from the shell <= 1.5 s", f"{cached:.2f} s",
        f"on a running hub {first['cached_run_running_hub_s']:.2f} s", cached <= 1.5)  # fmt: skip
    big, small = inference["1024x1024"], inference["512x512"]
    add("segmentation of 1024x1024 <= 2 s", f"{big['seconds']:.2f} s",
        f"the 0.3.3 way {big['seconds_0.3.3']:.2f} s", big["seconds"] <= 2)  # fmt: skip
    add("segmentation F1 on the sample within 0.01 of before", f"{small['f1']:.3f}",
        f"the 0.3.3 way {small['f1_0.3.3']:.3f}", small["f1"] >= small["f1_0.3.3"] - 0.01)  # fmt: skip
    crop = quality["denoising"]["crop256"]
    best = max(crop["gaussian"]["psnr"], crop["nl-means"]["psnr"])
    n2v = crop["noise2void"]
    add("noise2void defaults on 256x256 <= 60 s", f"{n2v['seconds']:.1f} s", "", n2v["seconds"] <= 60)
    add("noise2void PSNR >= best of Gaussian and NL-means", f"{n2v['psnr']:.2f} dB",
        f"best classical {best:.2f} dB", n2v["psnr"] >= best)  # fmt: skip
    paint = web["median_ms"]
    add("app first paint -> connected, plugins listed <= 400 ms", f"{paint['app']:.0f} ms",
        f"one static file {paint['static']:.0f} ms", paint["app"] <= 400)  # fmt: skip
    page = rpc["scopeflow"]["browser"]
    ratio = page["raw_websocket"]["4MB_s"] / page["scopeflow"]["4MB_s"]
    raw = f"raw websocket in the page {8 / page['raw_websocket']['4MB_s']:.0f} MB/s ({ratio:.2f}x)"
    add("4 MB array from the page >= 0.5x a raw websocket", f"{8 / page['scopeflow']['4MB_s']:.0f} MB/s",
        raw, ratio >= 0.5)  # fmt: skip

    print("\n" + "-" * 110)  # calls.py printed its own table, with the raw and Hypha figures, above
    for figure, ours, baseline, met in rows:
        print(f"{'met ' if met else 'MISS'}  {figure:<58}{ours:>12}   {baseline}")
    print(f"goals met: {sum(r[3] for r in rows)} of {len(rows)}")
    summary = {"rows": [dict(zip(("figure", "scopeflow", "baseline", "met"), r, strict=True)) for r in rows]}
    (ARTIFACTS / "bench-speed.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
