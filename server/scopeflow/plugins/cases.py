"""Test cases a plugin declares for *Verify*: an op, its inputs, the outputs expected, how close is enough.

A Python plugin lists them under ``PLUGIN["tests"]``, an ImJoy plugin under ``tests`` in its ``<config>``::

    "tests": [
        {"name": "nuclei-2d against its hand-drawn labels", "op": "segment",
         "inputs": {"image": {"sample": "nuclei-2d"}},
         "expected": {"result": {"sample": "nuclei-2d-labels"}}, "min_f1": 0.82},
        {"op": "blur", "inputs": {"image": {"file": "gaussian.tests/crop.npy"}, "sigma": 2.0},
         "expected": {"result": {"file": "gaussian.tests/blurred.npy"}}, "atol": 1e-4},
    ]

A value is JSON as it is, ``{"sample": ID}`` (a built-in sample image), ``{"file": PATH}``: the content of
an ``.npy``, ``.npz`` (its one array), ``.tif``/``.tiff`` or ``.json`` file, or ``{"path": PATH}``: the file's
full path on the hub, for ops that read files themselves; PATH is relative to the plugin file's folder and
inside it. How outputs are compared:

- ``min_f1``: label images, matched one to one at IoU ≥ 0.5; passes when F1 ≥ ``min_f1`` (the difference shown
  is 1 - F1). For segmentations checked against ground truth, where pixel equality would be meaningless.
- ``min_psnr``: an image against a clean reference; passes when the PSNR (dB, over the reference's range) is
  at least ``min_psnr``. For denoisers, whose output is not bit-reproducible across machines.
- otherwise numbers, arrays and the numeric columns of tables: passes when ``|got - expected| <= atol + rtol *
  |expected|`` everywhere (the difference shown is the largest ``|got - expected|``); other values must be
  equal.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CASES = 50


class VerifyCase(BaseModel):
    """One test case of a plugin: call ``op`` with ``inputs``; its outputs must match ``expected``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="What the case checks (default: the op and its number).")
    op: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="The op to call.")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description='Input name → value, {"sample": ID} or {"file": PATH}.'
    )
    expected: dict[str, Any] = Field(
        description='Output name (`result` for a single output) → value, {"sample": ID} or {"file": PATH}.'
    )
    atol: float = Field(default=1e-6, ge=0, description="Absolute tolerance of numbers and arrays.")
    rtol: float = Field(default=0.0, ge=0, description="Relative tolerance of numbers and arrays.")
    min_f1: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Label images: the least F1 at IoU 0.5 against the expected labels.",
    )
    min_psnr: float | None = Field(
        default=None, description="Images: the least PSNR (dB) against the expected clean image."
    )
    timeout: float = Field(default=600, gt=0, le=24 * 3600, description="Seconds the case may take.")

    @field_validator("inputs", "expected")
    @classmethod
    def _files_inside(cls, values: dict[str, Any]) -> dict[str, Any]:
        for key, value in values.items():
            for kind in ("file", "path"):
                if isinstance(value, dict) and kind in value:
                    relative_file(value[kind], key)
        return values


def relative_file(path: Any, where: str = "file") -> PurePosixPath:
    """A data file's path relative to the plugin's folder; refused when absolute or leaving the folder."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise ValueError(f"{where}: a file must be a relative path with / separators, got {path!r}")
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"{where}: {path!r} must stay inside the plugin's folder")
    return relative


def case_files(case: VerifyCase, folder: Path) -> dict[str, Path]:
    """Every ``{"file": ...}`` and ``{"path": ...}`` of a case, resolved in the plugin's ``folder``."""
    found = {}
    for key, value in (case.inputs | {f"expected {k}": v for k, v in case.expected.items()}).items():
        named = value.get("file", value.get("path")) if isinstance(value, dict) and len(value) == 1 else None
        if named is not None:
            path = (folder / relative_file(named, key)).resolve()
            if not path.is_relative_to(folder.resolve()):
                raise ValueError(f"{key}: {named!r} leaves the plugin's folder")
            found[key] = path
    return found
