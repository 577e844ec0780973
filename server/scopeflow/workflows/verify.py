"""*Verify*: run a plugin's declared test cases in its kernel and compare what comes back (see
:mod:`scopeflow.plugins.cases` for how a plugin declares them).

Each case calls its op as a workflow node does (the plugin's own kernel and environment, the file pinned by
its sha256; never a cached result), and the comparison happens here, in the hub. The report says for every
case whether it passed, by which measure, the largest difference and the tolerance, so a failure says how
far off the plugin is, not only that it is.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from scopeflow.images import formats as data
from scopeflow.plugins.cases import VerifyCase, case_files
from scopeflow.plugins.manifest import OpSpec, PluginManifest
from scopeflow.plugins.registry import Registry
from scopeflow.workflows.runner import WorkflowRunner, split_result


class Verifier:
    """Runs the test cases of plugins through the workflow runner; served as ``verify`` on the hub's RPC."""

    def __init__(self, runner: WorkflowRunner, registry: Registry) -> None:
        self.runner = runner
        self.registry = registry
        self.running: dict[str, asyncio.Task[dict[str, Any]]] = {}  # plugin id → its verification

    def service(self) -> dict[str, Any]:
        return {
            "id": "verify",
            "name": "scopeflow verify",
            "type": "scopeflow-verify",
            "description": "Run a plugin's declared test cases in its kernel: pass/fail, largest difference",
            "config": {"visibility": "public"},
            "verify": self.verify,
        }

    async def verify(self, plugin: str, context: Any = None) -> dict[str, Any]:
        """Every test case of ``plugin`` (an id or a name): ``{"plugin", "version", "sha256", "passed",
        "cases": [{"name", "op", "passed", "summary", "measure", "difference", "tolerance", "seconds",
        "error"}]}``.
        Two requests for the same plugin while one runs share its report."""
        manifest = self.registry.get(plugin)
        task = self.running.get(manifest.id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._verify(manifest))
            self.running[manifest.id] = task
        return await asyncio.shield(task)

    async def _verify(self, manifest: PluginManifest) -> dict[str, Any]:
        report: dict[str, Any] = {
            "plugin": manifest.id,
            "name": manifest.name,
            "version": manifest.version,
            "sha256": manifest.sha256,
            "passed": bool(manifest.tests),
            "cases": [],
        }
        if not manifest.tests:
            report["error"] = f"{manifest.name} declares no test cases (`tests` in its PLUGIN dict or config)"
            return report
        for number, case in enumerate(manifest.tests, 1):
            started = time.monotonic()
            outcome: dict[str, Any] = {"name": case.name or f"{case.op} #{number}", "op": case.op}
            try:
                got = await asyncio.wait_for(self._run(manifest, case), case.timeout)
                expected = await asyncio.to_thread(self._expected, manifest, case)
                outcome |= compare(got, expected, case)
            except TimeoutError:
                outcome |= {"passed": False, "error": f"took longer than its timeout, {case.timeout:g} s"}
            except Exception as exc:  # a case that cannot run fails, with the reason
                outcome |= {"passed": False, "error": str(exc) or type(exc).__name__}
            outcome["seconds"] = round(time.monotonic() - started, 3)
            report["cases"].append(outcome)
            report["passed"] = report["passed"] and outcome["passed"]
        return report

    async def _run(self, manifest: PluginManifest, case: VerifyCase) -> dict[str, Any]:
        op = next((o for o in manifest.ops if o.name == case.op), None)
        if op is None:
            raise ValueError(
                f"{manifest.id} has no op {case.op!r} (it has {', '.join(o.name for o in manifest.ops)})"
            )
        unknown = sorted(set(case.inputs) - {port.name for port in op.inputs})
        if unknown:
            raise ValueError(f"{case.op} has no input {', '.join(unknown)}")
        given = await asyncio.to_thread(self._inputs, manifest, case, op)
        args = []
        for port in op.inputs:
            if port.name not in given and port.required:
                raise ValueError(f"{case.op} needs its input {port.name}")
            args.append(given.get(port.name, port.default))
        missing = sorted(set(case.expected) - {port.name for port in op.outputs})
        if missing:
            raise ValueError(f"{case.op} has no output {', '.join(missing)}")
        result = await self.runner.call_op(manifest.id, op.name, args, manifest.sha256)
        return split_result(result, op)

    def _inputs(self, manifest: PluginManifest, case: VerifyCase, op: OpSpec) -> dict[str, Any]:
        files = case_files(case, _folder(manifest))
        kinds = {port.name: port.kind for port in op.inputs}
        return {
            name: load_value(value, files.get(name), kinds[name] == "ndarray")
            for name, value in case.inputs.items()
        }

    def _expected(self, manifest: PluginManifest, case: VerifyCase) -> dict[str, Any]:
        files = case_files(case, _folder(manifest))
        return {
            name: load_value(value, files.get(f"expected {name}"), None)
            for name, value in case.expected.items()
        }


def _folder(manifest: PluginManifest) -> Path:
    if not manifest.path:
        raise ValueError(f"{manifest.id} has no file on the hub, so its test files cannot be found")
    return Path(manifest.path).parent


def load_value(value: Any, file: Path | None, array: bool | None) -> Any:
    """A case's value: JSON as it is, a sample, a file's content or its path on the hub. ``array``: True for
    an n-d array input, False for a value input (which gets the bytes of any file but .json), None for an
    expected output."""
    if isinstance(value, dict) and set(value) == {"sample"}:
        return data.load_sample(str(value["sample"]))[0]
    if isinstance(value, dict) and set(value) == {"path"} and file is not None:
        if not file.is_file():
            raise FileNotFoundError(f"no file {value['path']!r} beside the plugin")
        return str(file)
    if isinstance(value, dict) and set(value) == {"file"} and file is not None:
        suffix = file.suffix.lower()
        if suffix == ".json":
            return json.loads(file.read_text(encoding="utf-8"))
        if array is False:
            return file.read_bytes()
        if suffix == ".npy":
            return np.load(file, allow_pickle=False)
        if suffix == ".npz":
            with np.load(file, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise ValueError(f"{file.name}: an .npz of a test case holds one array")
                return archive[archive.files[0]]
        if suffix in (".tif", ".tiff"):
            return data.read_image(file)[0]
        raise ValueError(f"{file.name}: test files are .npy, .npz, .tif or .json")
    return np.asarray(value) if array and isinstance(value, list) else value


def compare(got: dict[str, Any], expected: dict[str, Any], case: VerifyCase) -> dict[str, Any]:
    """Whether every output matches, by the case's measure, with the worst difference across outputs."""
    if case.min_f1 is not None:
        measure, tolerance = "1 - F1 at IoU 0.5", round(1 - case.min_f1, 6)
    elif case.min_psnr is not None:
        measure, tolerance = "PSNR below the least (dB)", 0.0
    else:
        measure, tolerance = "largest |got - expected|", case.atol
    worst, passed, details = 0.0, True, {}
    tolerance = float(tolerance)
    scores: list[float] = []
    for name, want in expected.items():
        have = got.get(name)
        if case.min_f1 is not None:
            f1 = label_f1(np.asarray(have), np.asarray(want))
            details[name] = {"f1": round(f1, 4)}
            difference, ok = 1 - f1, f1 >= case.min_f1
            scores.append(f1)
        elif case.min_psnr is not None:
            psnr = psnr_of(np.asarray(have, float), np.asarray(want, float))
            details[name] = {"psnr": round(psnr, 2)}
            difference, ok = max(0.0, case.min_psnr - psnr), psnr >= case.min_psnr
            scores.append(psnr)
        else:
            difference, ok = close(have, want, case.atol, case.rtol, name)
        worst, passed = max(worst, difference), passed and ok
    if case.min_f1 is not None:
        summary = f"F1 at IoU 0.5: {min(scores):.3f} (at least {case.min_f1:g})"
    elif case.min_psnr is not None:
        summary = f"PSNR: {min(scores):.1f} dB (at least {case.min_psnr:g} dB)"
    else:
        allowed = f"{case.atol:g}" + (f" + {case.rtol:g} * |expected|" if case.rtol else "")
        shown = f"{worst:.3g}" if math.isfinite(worst) else "values differ"
        summary = f"largest difference: {shown} (at most {allowed})"
    return {
        "passed": passed,
        "measure": measure,
        "difference": float(f"{worst:.6g}") if math.isfinite(worst) else None,
        "tolerance": tolerance,
        "summary": summary,
        "details": details,
    }


def close(have: Any, want: Any, atol: float, rtol: float, where: str) -> tuple[float, bool]:
    """Largest difference and whether it is within tolerance, for numbers, arrays, tables and JSON values."""
    if isinstance(want, dict) and isinstance(have, dict):
        if set(want) - set(have):
            raise ValueError(f"{where}: missing {', '.join(sorted(set(want) - set(have)))}")
        results = [close(have[key], value, atol, rtol, f"{where}.{key}") for key, value in want.items()]
        return max((r[0] for r in results), default=0.0), all(r[1] for r in results)
    numeric = isinstance(want, int | float | np.ndarray | list) and not isinstance(want, bool)
    if numeric and _is_numeric(want) and _is_numeric(have):
        a, b = np.asarray(have, dtype=float), np.asarray(want, dtype=float)
        if a.shape != b.shape:
            raise ValueError(f"{where}: shape {list(a.shape)}, expected {list(b.shape)}")
        if a.size == 0:
            return 0.0, True
        nan_same = np.isnan(a) == np.isnan(b)
        diff = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
        ok = bool(nan_same.all() and np.all(diff <= atol + rtol * np.abs(np.nan_to_num(b))))
        return float(np.nanmax(diff)) if nan_same.all() else math.inf, ok
    equal = have == want if not isinstance(have, np.ndarray) else False
    return (0.0, True) if equal else (math.inf, False)


def _is_numeric(value: Any) -> bool:
    try:
        return np.asarray(value).dtype.kind in "biuf"
    except (ValueError, TypeError):
        return False


def label_f1(labels: np.ndarray, truth: np.ndarray) -> float:
    """F1 of objects matched one to one at IoU > 0.5 (where a match is unique: no assignment is needed)."""
    if labels.shape != truth.shape:
        raise ValueError(f"labels of shape {list(labels.shape)}, expected {list(truth.shape)}")
    a, b = labels.astype(np.int64).ravel(), truth.astype(np.int64).ravel()
    _, a = np.unique(a, return_inverse=True)  # 0 stays 0 when present (the smallest label)
    _, b = np.unique(b, return_inverse=True)
    a_bg, b_bg = int(labels.min() == 0), int(truth.min() == 0)
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    overlap = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb)
    sizes_a, sizes_b = overlap.sum(1), overlap.sum(0)
    inter = overlap[a_bg:, b_bg:].astype(float)
    union = sizes_a[a_bg:, None] + sizes_b[None, b_bg:] - inter
    matched = int(np.count_nonzero(inter / np.maximum(union, 1) > 0.5))
    found, real = na - a_bg, nb - b_bg
    return 1.0 if found == real == 0 else 2 * matched / (found + real)


def psnr_of(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, over the reference's range of values."""
    if image.shape != reference.shape:
        raise ValueError(f"an image of shape {list(image.shape)}, expected {list(reference.shape)}")
    span = float(reference.max() - reference.min()) or 1.0
    error = float(np.mean((image - reference) ** 2))
    return math.inf if error == 0 else 10 * math.log10(span**2 / error)
