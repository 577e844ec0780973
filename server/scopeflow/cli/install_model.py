"""``scopeflow install-model PACKAGE``: install a bioimage.io model package (a .zip, an unpacked folder, or
the URL of a zip) as a plugin in a data dir, as the app's install dialog does.

The package is checked and previewed first (name, axes, weights, licence, sha256, the architecture's source
when it has one); nothing is written before the user answers yes (``--yes`` answers it for scripts). A hub
serving that data dir lists the new plugin at its next listing.
"""

from __future__ import annotations

import io
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import TextIO

from scopeflow.plugins.model_packages import MAX_ZIP, ModelPackages, PackageError
from scopeflow.plugins.registry import Registry


def package_bytes(source: str) -> tuple[bytes, str | None]:
    """The package's zip bytes and, for a URL, the URL."""
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=120) as response:
            data = response.read(MAX_ZIP + 1)
        if len(data) > MAX_ZIP:
            raise PackageError(f"{source}: larger than {MAX_ZIP >> 20} MB")
        return data, source
    path = Path(source).expanduser()
    if path.is_dir():  # an unpacked package: zipped in memory, rdf.yaml at the top
        if not (path / "rdf.yaml").is_file() and not (path / "bioimageio.yaml").is_file():
            raise PackageError(f"{path}: no rdf.yaml in this folder")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                archive.write(file, file.relative_to(path).as_posix())
        return buffer.getvalue(), None
    return path.read_bytes(), None


def main(source: str, data_dir: str, yes: bool = False, out: TextIO = sys.stdout) -> int:
    packages = ModelPackages(Registry(None, [], Path(data_dir).expanduser()))
    try:
        data, url = package_bytes(source)
        preview = packages.preview(data, url)
    except (OSError, PackageError) as exc:
        print(f"scopeflow install-model: {exc}", file=sys.stderr)
        return 2
    inputs = ", ".join(f"{i['id']} ({i['axes']})" for i in preview["inputs"])
    outputs = ", ".join(f"{o['id']} ({o['axes']})" for o in preview["outputs"])
    print(f"{preview['name']} {preview['version']}: {preview['description']}", file=out)
    print(f"  plugin id   {preview['id']}", file=out)
    print(f"  input       {inputs}\n  output      {outputs}", file=out)
    print(f"  weights     {', '.join(preview['weights'])} (runs {preview['weights'][0]})", file=out)
    authors = ", ".join(preview["authors"]) or "not given"
    print(f"  authors     {authors}; licence {preview['license'] or 'not given'}", file=out)
    print(f"  runs with   {', '.join(preview['requirements'])}", file=out)
    print(f"  sha256      {preview['sha256']}", file=out)
    if preview["code"]:
        print("  architecture code (runs when the state-dict weights are used):", file=out)
        print("\n".join("    | " + line for line in preview["code"].splitlines()), file=out)
    if not yes:
        answer = input("Install it and trust its weights and code to run on this computer? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not installed", file=out)
            return 1
    try:
        manifest = packages.install(preview["sha256"], url)
    except (OSError, PackageError, KeyError) as exc:
        print(f"scopeflow install-model: {exc}", file=sys.stderr)
        return 2
    print(f"installed {manifest.name} as the plugin {manifest.id} ({manifest.path})", file=out)
    return 0
