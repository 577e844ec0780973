"""Batch throughput: ``scopeflow run`` over a folder, on one hub, and on Dask with 1 and 2 local workers.

    python bench/batch.py [--items 8] [--workflow denoise-segment-measure] [--json FILE]

The items are crops of the DSB2018 sample (256x256, each from another place and turned), so that every item
computes (``--no-cache``). Each figure is wall time from the shell to the last result, hub and worker start-up
included, and items per second beside the plain local run measured in the same run. On a 2-core machine two
workers share the same two cores as one hub's kernels: the figure that matters there is the overhead, and
on a real cluster the rate grows with the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from scopeflow.images import formats


def items(folder: Path, count: int) -> None:
    image = np.asarray(formats.load_sample("nuclei-2d")[0])
    rng = np.random.default_rng(3)
    for index in range(count):
        top, left = rng.integers(0, image.shape[0] - 256, 2)
        crop = np.rot90(image[top : top + 256, left : left + 256], index % 4)
        tifffile.imwrite(
            folder / f"item-{index:03d}.tif", np.ascontiguousarray(crop), photometric="minisblack"
        )


def run(workflow: str, folder: Path, output: Path, data_dir: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "scopeflow.cli.main", "run", workflow, "--no-cache"]
    command += [
        "--input",
        f"image={folder}/*.tif",
        "--output",
        str(output),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"}
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(extra) or 'local'} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--workflow", default="denoise-segment-measure")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="scopeflow-bench-batch-") as tmp:
        root = Path(tmp)
        (root / "items").mkdir()
        items(root / "items", args.items)
        for label, extra in (
            ("one hub", []),
            ("dask, 1 worker", ["--dask", "local:1"]),
            ("dask, 2 workers", ["--dask", "local:2"]),
        ):
            seconds = run(args.workflow, root / "items", root / label.replace(" ", "_"), root / "data", extra)
            figures[label] = {"seconds": round(seconds, 2), "items_per_s": round(args.items / seconds, 3)}
    base = figures["one hub"]["items_per_s"]
    print(f"{args.items} items of {args.workflow} (256x256, computed), {os.cpu_count()} cores")
    print(f"{'':<18}{'seconds':>9}{'items/s':>9}{'x one hub':>11}")
    for label, row in figures.items():
        print(
            f"{label:<18}{row['seconds']:>9.2f}{row['items_per_s']:>9.3f}{row['items_per_s'] / base:>11.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
