"""Saved workflow documents: ``<data dir>/workflows/NAME.json``, every saved version kept.

Each save writes the document atomically and also keeps it as ``.versions/NAME/<n>.json`` (n = 1, 2, ...);
deleting a workflow removes ``NAME.json`` only, so its versions stay. The gallery is the read-only
``workflows/*.json`` beside the built-in plugins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from scopeflow._util import ID_RE, utc_stamp, write_atomic

__all__ = ["NAME", "Documents", "Gallery"]

NAME = ID_RE
RESERVED = {"check", "fetch", "pin"}  # POST routes beside the documents


def _about(path: Path) -> dict[str, Any]:
    """Title and description of a document file (empty if it cannot be read)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"title": "", "description": ""}
    if not isinstance(doc, dict):
        return {"title": "", "description": ""}
    return {"title": str(doc.get("title") or ""), "description": str(doc.get("description") or "")}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"not a workflow name: {name!r} (letters, digits, '.', '_', '-'; up to 128)")
    return name


class Documents:
    """Workflow documents by name, with their versions."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_root = self.root / ".versions"

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def listing(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("*.json")):
            name = path.stem
            if not NAME.match(name):
                continue
            found.append(
                {
                    "name": name,
                    **_about(path),
                    "updated": utc_stamp(path.stat().st_mtime),
                    "versions": len(self._numbers(name)),
                }
            )
        return found

    def load(self, name: str, version: int | None = None) -> dict[str, Any]:
        """The document (:class:`KeyError` if there is no such workflow or version)."""
        path = self.path(name) if version is None else self._version_path(name, version)
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            what = f"version {version} of workflow {name}" if version is not None else f"workflow {name}"
            raise KeyError(f"no {what}") from None
        return doc

    def save(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Write ``doc`` (atomically) and keep it as the next version; returns that version's entry."""
        if name in RESERVED:
            raise ValueError(f"{name!r} is a reserved name")
        path = self.path(name)
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = self._numbers(name)
        if path.is_file():  # a file saved without versions (copied in by hand) is kept first
            current = path.read_bytes()
            if not self._in_history(name, current, numbers):
                numbers.append(self._keep(name, current, numbers))
        if not numbers or self._version_path(name, numbers[-1]).read_bytes() != data:
            numbers.append(self._keep(name, data, numbers))
        write_atomic(path, data)
        return self._entry(name, numbers[-1])

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.is_file():
            raise KeyError(f"no workflow {name}")
        current = path.read_bytes()
        numbers = self._numbers(name)
        if not numbers or self._version_path(name, numbers[-1]).read_bytes() != current:
            self._keep(name, current, numbers)
        path.unlink()

    def versions(self, name: str) -> list[dict[str, Any]]:
        numbers = self._numbers(name)
        if not numbers and not self.path(name).is_file():
            raise KeyError(f"no workflow {name}")
        return [self._entry(name, n) for n in numbers]

    def _entry(self, name: str, number: int) -> dict[str, Any]:
        path = self._version_path(name, number)
        data = path.read_bytes()
        return {
            "version": number,
            "saved": utc_stamp(path.stat().st_mtime),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }

    def _version_path(self, name: str, number: int) -> Path:
        return self.versions_root / check_name(name) / f"{int(number)}.json"

    def _in_history(self, name: str, data: bytes, numbers: list[int]) -> bool:
        """Whether ``data`` is one of the kept versions (newest first: it is nearly always the last)."""
        for number in reversed(numbers):
            with contextlib.suppress(OSError):
                if self._version_path(name, number).read_bytes() == data:
                    return True
        return False

    def recover(self) -> None:
        """After a crash: remove half-written files, and bring a document that is behind its history (the
        hub died between keeping a version and writing the document) up to its last version."""
        for folder in [self.root, *self.versions_root.glob("*")] if self.root.is_dir() else []:
            for leftover in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            name = path.stem
            if not NAME.match(name) or name in RESERVED:
                continue
            numbers = self._numbers(name)
            if not numbers:
                continue
            last = self._version_path(name, numbers[-1]).read_bytes()
            current = path.read_bytes()
            if current != last and self._in_history(name, current, numbers[:-1]):
                write_atomic(path, last)

    def _numbers(self, name: str) -> list[int]:
        folder = self.versions_root / check_name(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def _keep(self, name: str, data: bytes, numbers: list[int]) -> int:
        number = (numbers[-1] if numbers else 0) + 1
        path = self._version_path(name, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return number


class Gallery:
    """Example workflows: ``*.json`` files of one folder (which may not exist)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def listing(self) -> list[dict[str, Any]]:
        if self.root is None or not self.root.is_dir():
            return []
        return [
            {"name": path.stem, **_about(path)}
            for path in sorted(self.root.glob("*.json"))
            if NAME.match(path.stem)
        ]

    def load(self, name: str) -> dict[str, Any]:
        if self.root is None or not NAME.match(name):
            raise KeyError(f"no example workflow {name}")
        try:
            doc: dict[str, Any] = json.loads((self.root / f"{name}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyError(f"no example workflow {name}") from None
        return doc
