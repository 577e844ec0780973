"""bioimage.io model packages (format 0.5) as plugins.

A package (a zip with ``rdf.yaml``, weights, test tensors, documentation) is read here, statically: nothing
of it runs in the hub. :func:`read_package` checks it (one input; axes this hub can map to image axes;
every file the description lists present and matching its sha256; no path leaving the package; sizes
bounded) and returns what the install dialog previews, the architecture's source included: a
``pytorch_state_dict`` package runs that file, so it is code the user trusts.

:meth:`ModelPackages.install` unpacks a previewed package into ``DATA_DIR/plugins/models/<sha256>/`` and
writes a plugin file for it (:func:`plugin_source`): one op, ``predict``, whose ports carry the package's
axes, running in a kernel whose environment holds bioimageio.core and the weights' runtime
(:mod:`scopeflow.plugins.bioimageio_runtime`). The file names the package's sha256, so a workflow that pins
the file pins the package. Its test tensors become *Verify* cases with the package's own tolerances.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from scopeflow._util import write_atomic
from scopeflow.plugins.bioimageio_runtime import to_port_axes
from scopeflow.plugins.registry import Registry

__all__ = ["ModelPackages", "Package", "PackageError", "plugin_source", "read_package"]

MAX_ZIP = 1024 * 2**20  # bytes of a package
MAX_UNPACKED = 4 * 1024 * 2**20  # bytes of its files once unpacked
MAX_FILES = 2000
RUNTIMES = {  # weights format → what the kernel's environment needs beside bioimageio.core
    "torchscript": ["torch==2.13.0"],
    "pytorch_state_dict": ["torch==2.13.0"],
    "onnx": ["onnxruntime"],
}
PREFERRED = ("torchscript", "pytorch_state_dict", "onnx")  # TorchScript: no architecture code to run
BASE_REQUIREMENTS = ["bioimageio.core==0.11.0", "pydantic>=2.7,<2.14", "numpy"]
DEFAULT_TOLERANCE = {"relative_tolerance": 1e-3, "absolute_tolerance": 1e-4}  # bioimage.io's defaults
AXIS_LETTERS = {"time": "t", "channel": "c"}


class PackageError(ValueError):
    """Not a model package this hub can run; the message says why."""


@dataclass
class Port:
    id: str
    axes: str  # scopeflow axes, e.g. "yx", "cyx"
    model_axes: list[str]  # the package's axis ids in order, e.g. ["batch", "channel", "y", "x"]
    description: str = ""
    channels: list[str] = field(default_factory=list)


@dataclass
class Package:
    sha256: str
    rdf: dict[str, Any]
    files: dict[str, bytes]  # path inside the package → bytes (the rdf's folder is the root)
    input: Port
    outputs: list[Port]
    weights: list[str]  # the formats present, in the order tried
    architecture: str | None  # source of a pytorch_state_dict's architecture, if any

    @property
    def name(self) -> str:
        return str(self.rdf.get("name") or "model")

    @property
    def plugin_id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:60] or "model"
        return f"bioimageio-{slug}"

    def preview(self) -> dict[str, Any]:
        """What the install dialog shows before anything is written."""
        rdf = self.rdf
        return {
            "kind": "model-package",
            "id": self.plugin_id,
            "name": self.name,
            "version": str(rdf.get("version") or "0.1.0"),
            "description": str(rdf.get("description") or ""),
            "format_version": str(rdf.get("format_version")),
            "sha256": self.sha256,
            "authors": [
                str(a.get("name", a)) if isinstance(a, dict) else str(a) for a in rdf.get("authors") or []
            ],
            "license": str(rdf.get("license") or ""),
            "cite": [c.get("text", "") for c in rdf.get("cite") or [] if isinstance(c, dict)],
            "tags": [str(t) for t in rdf.get("tags") or []],
            "weights": self.weights,
            "inputs": [{"id": self.input.id, "axes": self.input.axes}],
            "outputs": [{"id": p.id, "axes": p.axes, "channels": p.channels} for p in self.outputs],
            "requirements": requirements(self.weights),
            "code": self.architecture,
            "files": sorted(self.files),
        }


def requirements(weights: list[str]) -> list[str]:
    extra = RUNTIMES[weights[0]] if weights else []
    return BASE_REQUIREMENTS + [r for r in extra if r not in BASE_REQUIREMENTS]


def read_package(data: bytes) -> Package:
    """A zipped package, checked (:class:`PackageError` with the reason otherwise)."""
    if len(data) > MAX_ZIP:
        raise PackageError(f"the package is {len(data) >> 20} MB; the limit is {MAX_ZIP >> 20} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PackageError("not a zip file (a bioimage.io model package is a .zip with rdf.yaml)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES:
            raise PackageError(f"the package holds {len(members)} files; the limit is {MAX_FILES}")
        if sum(m.file_size for m in members) > MAX_UNPACKED:
            raise PackageError(f"the package unpacks to more than {MAX_UNPACKED >> 30} GB")
        names = {m.filename for m in members}
        rdf_name = (
            "rdf.yaml"
            if "rdf.yaml" in names
            else next((n for n in sorted(names) if n.endswith("/rdf.yaml") and n.count("/") == 1), None)
        )
        if rdf_name is None:
            rdf_name = "bioimageio.yaml" if "bioimageio.yaml" in names else None
        if rdf_name is None:
            raise PackageError("no rdf.yaml at the top of the package")
        root = rdf_name.rsplit("/", 1)[0] + "/" if "/" in rdf_name else ""
        files: dict[str, bytes] = {}
        for member in members:
            if not member.filename.startswith(root):
                continue
            relative = member.filename[len(root) :]
            _check_name(relative)
            files[relative] = archive.read(member)
    try:
        rdf = yaml.safe_load(files[rdf_name[len(root) :]].decode("utf-8"))
    except (UnicodeError, yaml.YAMLError) as exc:
        raise PackageError(f"rdf.yaml is not valid YAML: {exc}") from None
    return _describe(rdf, files, hashlib.sha256(data).hexdigest())


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    if not name or "\\" in name or path.is_absolute() or ".." in path.parts or "\x00" in name:
        raise PackageError(f"the package holds a file outside itself: {name!r}")


def _describe(rdf: Any, files: dict[str, bytes], sha256: str) -> Package:
    if not isinstance(rdf, dict):
        raise PackageError("rdf.yaml must be a mapping")
    if rdf.get("type") != "model":
        raise PackageError(f"rdf.yaml describes a {rdf.get('type')!r}, not a model")
    version = str(rdf.get("format_version") or "")
    if not version.startswith("0.5."):
        raise PackageError(
            f"format_version {version or '(none)'}: this hub runs format 0.5 packages "
            "(convert a 0.4 package with `bioimageio update-format`)"
        )
    inputs, outputs = rdf.get("inputs") or [], rdf.get("outputs") or []
    if len(inputs) != 1 or not outputs:
        raise PackageError(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs: one input is supported"
        )
    weights_spec = rdf.get("weights") or {}
    weights = [w for w in PREFERRED if isinstance(weights_spec.get(w), dict)]
    if not weights:
        found = ", ".join(weights_spec) or "none"
        raise PackageError(
            f"no weights this hub can run (it runs {', '.join(PREFERRED)}; the package has {found})"
        )
    for where, spec in _listed_files(rdf):
        _check_file(files, spec, where)
    architecture = None
    state = weights_spec.get("pytorch_state_dict")
    if isinstance(state, dict) and isinstance(state.get("architecture"), dict):
        source = state["architecture"].get("source")
        if isinstance(source, str) and source in files:
            architecture = files[source].decode("utf-8", errors="replace")
    return Package(
        sha256,
        rdf,
        files,
        _port(inputs[0], "input"),
        [_port(o, "output") for o in outputs],
        weights,
        architecture,
    )


def _listed_files(rdf: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every file the description names with its sha256 (weights, architecture, test tensors)."""
    listed: list[tuple[str, dict[str, Any]]] = []
    for name, spec in (rdf.get("weights") or {}).items():
        if isinstance(spec, dict):
            listed.append((f"weights.{name}", spec))
            if isinstance(spec.get("architecture"), dict) and "source" in spec["architecture"]:
                listed.append((f"weights.{name}.architecture", spec["architecture"]))
    for kind in ("inputs", "outputs"):
        for tensor in rdf.get(kind) or []:
            if isinstance(tensor, dict) and isinstance(tensor.get("test_tensor"), dict):
                listed.append((f"{kind}.{tensor.get('id')}.test_tensor", tensor["test_tensor"]))
    return listed


def _check_file(files: dict[str, bytes], spec: dict[str, Any], where: str) -> None:
    source = spec.get("source")
    if not isinstance(source, str) or "://" in source:
        raise PackageError(f"{where}: {source!r} is not a file inside the package (nothing is downloaded)")
    _check_name(source)
    if source not in files:
        raise PackageError(f"{where}: {source} is missing from the package")
    expected = spec.get("sha256")
    if expected is not None and hashlib.sha256(files[source]).hexdigest() != str(expected).lower():
        raise PackageError(f"{where}: {source} does not match its sha256 in rdf.yaml (changed or damaged)")


def _port(tensor: Any, kind: str) -> Port:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("axes"), list):
        raise PackageError(f"an {kind} without axes (format 0.5 lists them as objects)")
    letters, model_axes, channels = [], [], []
    for axis in tensor["axes"]:
        if not isinstance(axis, dict):
            raise PackageError(f"{kind} {tensor.get('id')}: axes must be objects (format 0.5)")
        kind_of = axis.get("type")
        axis_id = str(axis.get("id") or kind_of)
        model_axes.append(axis_id)
        if kind_of == "batch":
            continue
        if kind_of == "channel":
            channels = [str(c) for c in axis.get("channel_names") or []]
            if len(channels) != 1:  # one channel: the port takes a plain image, the kernel adds the axis
                letters.append("c")
        elif kind_of == "space" and axis_id in ("x", "y", "z"):
            letters.append(axis_id)
        elif kind_of == "time":
            letters.append("t")
        else:
            raise PackageError(
                f"{kind} {tensor.get('id')}: axis {axis_id!r} ({kind_of}) has no image axis here"
            )
    axes = "".join(letters)
    if sorted(axes) != sorted(set(axes)) or not {"y", "x"} <= set(axes):
        raise PackageError(f"{kind} {tensor.get('id')}: axes {axes!r} are not an image's")
    return Port(str(tensor.get("id")), axes, model_axes, str(tensor.get("description") or ""), channels)


def _tolerance(rdf: dict[str, Any], weights: str) -> dict[str, float]:
    found = ((rdf.get("config") or {}).get("bioimageio") or {}).get("reproducibility_tolerance") or []
    for entry in found if isinstance(found, list) else []:
        if isinstance(entry, dict) and weights in (entry.get("weights_formats") or [weights]):
            return DEFAULT_TOLERANCE | {k: float(v) for k, v in entry.items() if k in DEFAULT_TOLERANCE}
    return dict(DEFAULT_TOLERANCE)


MAX_COVER = 300_000  # bytes of a cover shown in the docs (as a data: URI: the app fetches nothing)


def _docs(package: Package, folder: str) -> str:
    rdf, lines = package.rdf, []
    for cover in rdf.get("covers") or []:
        kind = str(cover).rsplit(".", 1)[-1].lower()
        data = package.files.get(str(cover))
        if data and kind in ("png", "jpg", "jpeg", "gif") and len(data) <= MAX_COVER:
            mime = "jpeg" if kind == "jpg" else kind
            lines.append(f"![cover](data:image/{mime};base64,{base64.b64encode(data).decode()})\n")
            break
    documentation = rdf.get("documentation")
    if isinstance(documentation, str) and documentation in package.files:
        lines.append(package.files[documentation].decode("utf-8", errors="replace").strip())
    lines.append("\n## About this package\n")
    lines.append(
        f"- bioimage.io model package, format {rdf.get('format_version')}, sha256 `{package.sha256}`"
    )
    authors = ", ".join(package.preview()["authors"])
    if authors:
        lines.append(f"- Authors: {authors}")
    if rdf.get("license"):
        lines.append(f"- Licence: {rdf['license']}")
    lines.append(f"- Weights: {', '.join(package.weights)} (run: {package.weights[0]})")
    for cite in rdf.get("cite") or []:
        if isinstance(cite, dict):
            doi = f" doi:{cite['doi']}" if cite.get("doi") else ""
            lines.append(f"- Cite: {cite.get('text', '')}{doi}")
    lines.append(f"- Files: `{folder}/`")
    return "\n".join(lines).replace('"""', "'''").replace("\\", "\\\\")


def plugin_source(package: Package, folder: str) -> str:
    """The plugin file of an unpacked package (``folder``: its folder, relative to the plugin file)."""
    weights = package.weights[0]
    tolerance = _tolerance(package.rdf, weights)
    outputs = package.outputs
    cases = []
    if all(p.id in _test_ids(package, "outputs") for p in outputs) and package.input.id in _test_ids(
        package, "inputs"
    ):
        expected = {
            ("result" if len(outputs) == 1 else p.id): {"file": f"{folder}/test-{p.id}.npy"} for p in outputs
        }
        cases.append(
            {
                "name": "the package's own test tensors",
                "op": "predict",
                "inputs": {"image": {"file": f"{folder}/test-{package.input.id}.npy"}},
                "expected": expected,
                "atol": tolerance["absolute_tolerance"],
                "rtol": tolerance["relative_tolerance"],
            }
        )
    plugin = {
        "id": package.plugin_id,
        "name": package.name,
        "version": str(package.rdf.get("version") or "0.1.0"),
        "description": str(package.rdf.get("description") or "")[:300],
        "requirements": requirements(package.weights),
        "tags": ["bioimage.io", *[str(t) for t in package.rdf.get("tags") or []][:20]],
        "tests": cases,
    }
    result = f'Image["{outputs[0].axes}"]' if len(outputs) == 1 else "tuple"
    output_ports = "" if len(outputs) == 1 else f"    outputs={json.dumps([p.id for p in outputs])},\n"
    return f'''"""{_docs(package, folder)}
"""

from pathlib import Path

from scopeflow import Image, op

PLUGIN = {json.dumps(plugin, indent=4, ensure_ascii=False)}

PACKAGE = Path(__file__).resolve().parent / {json.dumps(folder)}
PACKAGE_SHA256 = "{package.sha256}"
WEIGHTS = {json.dumps(weights)}


@op(
    title={json.dumps("Predict with " + package.name)},
    inputs={{"image": {{"description": {json.dumps(package.input.description or "the input image")}}}}},
{output_ports})
def predict(image: Image["{package.input.axes}"]) -> {result}:
    """The package's prediction, its pre- and postprocessing applied; large images go through in tiles with
    the halo the package declares."""
    from scopeflow.plugins.bioimageio_runtime import predict as run

    return run(PACKAGE, PACKAGE_SHA256, WEIGHTS, image)
'''


def _test_ids(package: Package, kind: str) -> set[str]:
    return {
        str(t.get("id"))
        for t in package.rdf.get(kind) or []
        if isinstance(t, dict) and isinstance(t.get("test_tensor"), dict)
    }


class ModelPackages:
    """Previews and installs model packages: a preview keeps the package's bytes (by sha256) until it is
    installed, so what is installed is exactly what the user saw."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.root = registry.installed_dir / "models"
        self.pending = registry.installed_dir / ".pending"

    def preview(self, data: bytes, source_url: str | None = None) -> dict[str, Any]:
        package = read_package(data)
        self.pending.mkdir(parents=True, exist_ok=True)
        write_atomic(self.pending / f"{package.sha256}.zip", data)
        return package.preview() | {"source_url": source_url}

    def install(self, sha256: str, source_url: str | None = None) -> Any:
        """Install the previewed package of this sha256; returns the plugin's manifest."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256 or ""):
            raise PackageError("sha256: 64 hex digits of a previewed package")
        pending = self.pending / f"{sha256}.zip"
        try:
            data = pending.read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no previewed package {sha256[:12]}…: preview it first") from None
        package = read_package(data)
        if package.sha256 != sha256:
            raise PackageError("the previewed package changed on disk: preview it again")
        folder = f"models/{sha256}"
        target = self.registry.installed_dir / folder
        if not (target / "rdf.yaml").is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=self.root))
            try:
                for name, content in package.files.items():
                    path = work / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
                for port, kind in [(package.input, "inputs"), *[(p, "outputs") for p in package.outputs]]:
                    self._test_file(package, port, kind, work)
                shutil.rmtree(target, ignore_errors=True)
                work.rename(target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        source = plugin_source(package, folder)
        origin = {
            "kind": "model-package",
            "sha256": sha256,
            "format_version": package.rdf.get("format_version"),
        }
        manifest = self.registry.install_source(source, f"{package.plugin_id}.py", source_url, origin=origin)
        pending.unlink(missing_ok=True)
        return manifest

    @staticmethod
    def _test_file(package: Package, port: Port, kind: str, folder: Path) -> None:
        """A test tensor with its axes as the op's port has them (``test-<id>.npy``), for *Verify*."""
        tensor = next((t for t in package.rdf.get(kind) or [] if str(t.get("id")) == port.id), None)
        source = (tensor or {}).get("test_tensor", {}).get("source")
        if not isinstance(source, str) or not source.endswith(".npy"):
            return
        array = np.load(io.BytesIO(package.files[source]), allow_pickle=False)
        np.save(folder / f"test-{port.id}.npy", to_port_axes(array, port.model_axes, port.axes))
