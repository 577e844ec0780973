"""Small helpers every part needs, written once: ids, timestamps, atomic writes, canonical JSON, hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.resources
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BUILTIN_PLUGINS",
    "GALLERY",
    "ID",
    "ID_RE",
    "SAMPLES_DIR",
    "DiskFull",
    "canonical_json",
    "content_hash",
    "disk_full",
    "free_memory",
    "plain",
    "sha256_hex",
    "utc_stamp",
    "write_atomic",
]

# What a plugin id, a client id, a workflow name or a kept file's name may be: safe in a URL path and a
# file name, at most 128 characters.
ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ID_RE = re.compile(rf"^{ID}$")

_CHUNK = 1 << 24  # bytes of an array hashed at a time (no copy of the whole array)


def package_path(*parts: str) -> Path:
    """A folder or file that ships inside the scopeflow package (package data), wherever it is installed."""
    return Path(str(importlib.resources.files("scopeflow").joinpath(*parts)))


BUILTIN_PLUGINS = package_path("builtin_plugins")  # one file per plugin, and folders of their weights
GALLERY = BUILTIN_PLUGINS / "workflows"  # the example workflows
SAMPLES_DIR = package_path("images", "samples")  # sample images with their licences


def free_memory() -> int:
    """Bytes of memory the system has available (Linux's MemAvailable); unbounded where it cannot tell."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 62


def utc_stamp(seconds: float | None = None) -> str:
    """``2026-12-03T13:14:56Z``: a time in UTC, to the second (now, without ``seconds``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class DiskFull(OSError):
    """A write failed on a full disk (or quota); the message says where, and what to do."""

    def __str__(self) -> str:
        return str(self.strerror)


def disk_full(exc: BaseException, where: Path | str | None = None, doing: str = "saving") -> DiskFull | None:
    """``exc`` as a :class:`DiskFull` that names the place and what to do, if it is a full disk (``ENOSPC``,
    ``EDQUOT``, or numpy's "N requested and M written"); else None."""
    if isinstance(exc, DiskFull):
        return exc
    if not isinstance(exc, OSError):
        return None
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT) and not re.search(
        r"\d+ requested and \d+ written", str(exc)
    ):
        return None
    place = where or exc.filename or "the data dir"
    return DiskFull(
        errno.ENOSPC,
        f"the disk is full: {doing} in {place} failed and nothing was kept. Free some space (for instance "
        "`scopeflow envs prune`, a smaller `--cache-gib`) and try again",
    )


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a hidden temporary file beside ``path``, flush it to disk, then rename it over
    ``path``: a reader sees the old file or the new one, never a part, even if the process dies midway."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(raw)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def plain(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into JSON lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical JSON, UTF-8: sorted keys, no spaces, numpy values as plain numbers (equal values give
    equal bytes)."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(value: Any) -> str:
    """sha256 of an array's dtype, shape and bytes (little-endian, as arrays travel), or of a table's or
    value's canonical JSON. Workflow cache keys and provenance records are made of these."""
    if not isinstance(value, np.ndarray):
        return sha256_hex(canonical_json(value))
    array = value
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    digest = hashlib.sha256()
    kind = array.dtype.str if array.dtype.fields is None else str(array.dtype.descr)  # |V8 says too little
    digest.update(f"{kind}|{list(array.shape)}|".encode())
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    for start in range(0, flat.size, _CHUNK):
        digest.update(flat[start : start + _CHUNK].data)
    return digest.hexdigest()
