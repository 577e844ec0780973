"""The on-disk, content-addressed cache of node results, under ``<data dir>/cache/``.

A node's key is the sha256 of its plugin's sha256, its op, its parameters and the content hashes of its
inputs (:func:`node_key`). An entry is a directory ``objects/<key[:2]>/<key>/`` holding one file per output
(arrays as ``.npy``, tables and values as JSON) and ``meta.json``, which records each output's kind, content
hash and summary, so that a cached output is never hashed again. Entries are written in a temporary
directory and renamed into place (the last write of a key wins); a directory without a readable
``meta.json`` is a miss and is removed. The least recently used entries go first once the size budget is
exceeded: each is renamed out of ``objects/`` at once, then deleted in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scopeflow._util import canonical_json, content_hash, disk_full, plain, sha256_hex

__all__ = ["Cache", "CacheEntry", "Stored", "hash_off_loop", "node_key", "value_summary"]

DEFAULT_BUDGET = 2 * 1024**3
HASH_IN_THREAD = 1 << 20  # bytes: arrays above this are hashed off the event loop


_FILE_HASHES: dict[tuple[str, int, int], bytes] = {}


def code_digest(plugin_sha256: str, plugin_path: str | None) -> str:
    """What a node's results depend on besides its inputs and parameters: the plugin file and, when a folder
    of the same name stands beside it (weights, helper modules), every file in that folder."""
    folder = Path(plugin_path).with_suffix("") if plugin_path else None
    if folder is None or not folder.is_dir():
        return plugin_sha256
    digest = hashlib.sha256(plugin_sha256.encode())
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if not file.is_file() or any(part.startswith((".", "__pycache__")) for part in rel.parts):
            continue
        stat = file.stat()
        mark = (str(file), stat.st_size, stat.st_mtime_ns)
        if mark not in _FILE_HASHES:  # weights are read once per change, not at every run
            _FILE_HASHES[mark] = hashlib.sha256(file.read_bytes()).digest()
        digest.update(f"{rel.as_posix()}|".encode() + _FILE_HASHES[mark])
    return digest.hexdigest()


async def hash_off_loop(value: Any) -> str:
    """:func:`scopeflow._util.content_hash`, computed in a worker thread for a large array so that the event
    loop keeps answering meanwhile."""
    if isinstance(value, np.ndarray) and value.nbytes > HASH_IN_THREAD:
        return await asyncio.to_thread(content_hash, value)
    return content_hash(value)


def node_key(plugin_sha256: str, op: str, params: dict[str, Any], input_hashes: list[list[str]]) -> str:
    """A node's cache key: ``input_hashes`` is ``[[port, content hash], ...]`` in the op's input order."""
    return sha256_hex(canonical_json([plugin_sha256, op, params, input_hashes]))


def kind_of(value: Any, declared: str) -> str:
    if isinstance(value, np.ndarray):
        return "ndarray"
    if declared == "table" and isinstance(value, dict | list):
        return "table"
    return "value"


def value_summary(value: Any, kind: str) -> dict[str, Any]:
    """What an output is, in a few words: shape and dtype, columns and rows, or the (small) value."""
    if kind == "ndarray" and isinstance(value, np.ndarray):
        return {"kind": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
    if kind == "table":
        if isinstance(value, dict):
            columns = [str(c) for c in value]
            first: Any = next(iter(value.values()), [])
            rows = len(first) if hasattr(first, "__len__") else 1
        else:
            columns = []
            for row in value:
                columns += [str(c) for c in (row if isinstance(row, dict) else {}) if str(c) not in columns]
            rows = len(value)
        return {"kind": "table", "columns": columns, "rows": rows}
    text = canonical_json(value)
    if len(text) > 2000:
        return {"kind": "value", "value": None, "bytes": len(text)}
    return {"kind": "value", "value": plain(value)}


@dataclass
class Stored:
    """One output of an entry: its kind, content hash and summary."""

    kind: str
    hash: str
    summary: dict[str, Any]
    file: str


class CacheEntry:
    """A cached node result: its outputs' metadata, and their values loaded on demand."""

    def __init__(self, key: str, path: Path, outputs: dict[str, Stored]) -> None:
        self.key = key
        self.path = path
        self.outputs = outputs

    def load(self, port: str) -> Any:
        """The output's value (arrays memory-mapped, read-only); :class:`KeyError`: no such port."""
        stored = self.outputs[port]
        file = self.path / stored.file
        if stored.kind == "ndarray":
            return np.load(file, mmap_mode="r", allow_pickle=False)
        return json.loads(file.read_text(encoding="utf-8"))

    def load_all(self) -> dict[str, Any]:
        return {port: self.load(port) for port in self.outputs}


class Cache:
    """Node results by key, within a size budget (least recently used out first)."""

    def __init__(self, root: Path, budget: int = DEFAULT_BUDGET) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.budget = int(budget)
        self._index: dict[str, tuple[int, float]] = {}  # key → (bytes, last use)
        self._held: dict[str, float] = {}  # key → until when eviction leaves it alone
        self._scan()

    def hold(self, key: str, seconds: float) -> None:
        """Keep ``key`` out of eviction for a while (a run's outputs, until its caller has read them)."""
        self._held[key] = max(self._held.get(key, 0.0), time.time() + seconds)

    def _scan(self) -> None:
        # writes a stopped hub never finished; not those of another hub busy on the same data dir
        stale = time.time() - 3600
        for item in self.tmp.glob("*") if self.tmp.is_dir() else []:
            with contextlib.suppress(OSError):
                if item.stat().st_mtime < stale:
                    shutil.rmtree(item, ignore_errors=True)
        self.objects.mkdir(parents=True, exist_ok=True)
        for shard in self.objects.iterdir():
            if not shard.is_dir():
                continue
            for entry in shard.iterdir():
                meta = entry / "meta.json"
                try:
                    used = meta.stat().st_mtime
                    size = sum(f.stat().st_size for f in entry.iterdir())
                except OSError:
                    shutil.rmtree(entry, ignore_errors=True)
                    continue
                self._index[entry.name] = (size, used)

    @property
    def size(self) -> int:
        return sum(size for size, _ in self._index.values())

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise KeyError(f"not a cache key: {key!r}")
        return self.objects / key[:2] / key

    def get(self, key: str) -> CacheEntry | None:
        """The entry, or None (a missing or unreadable entry is a miss; an unreadable one is removed)."""
        try:
            path = self.path(key)
        except KeyError:
            return None
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            outputs = {
                port: Stored(item["kind"], item["hash"], item["summary"], item["file"])
                for port, item in meta["outputs"].items()
            }
            if any(not (path / s.file).is_file() for s in outputs.values()):
                raise ValueError("a file of the entry is missing")
            size = self._index.get(key, (0, 0.0))[0] or sum(f.stat().st_size for f in path.iterdir())
        except FileNotFoundError:
            self._index.pop(key, None)
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.discard(key)
            return None
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(path / "meta.json", (now, now))
        self._index[key] = (size, now)
        return CacheEntry(key, path, outputs)

    def discard(self, key: str) -> None:
        self._index.pop(key, None)
        with contextlib.suppress(KeyError):
            shutil.rmtree(self.path(key), ignore_errors=True)

    async def put(
        self, key: str, outputs: dict[str, tuple[str, Any]], hashes: dict[str, str] | None = None
    ) -> CacheEntry:
        """Store ``{port: (declared kind, value)}`` under ``key`` (``hashes``: content hashes known)."""
        final = self.path(key)
        hashes = dict(hashes or {})
        stored: dict[str, Stored] = {}
        for i, (port, (declared, value)) in enumerate(outputs.items()):
            kind = kind_of(value, declared)
            digest = hashes.get(port) or await hash_off_loop(value)
            suffix = ".npy" if kind == "ndarray" else ".json"
            stored[port] = Stored(kind, digest, value_summary(value, kind), f"{i}{suffix}")
        values = {port: value for port, (_, value) in outputs.items()}
        write = asyncio.ensure_future(asyncio.to_thread(self._write, key, final, stored, values))
        # counted once written, even if this task is cancelled meanwhile (the thread goes on): the next
        # put then evicts for it, where an uncounted entry would stay over budget until a restart
        write.add_done_callback(lambda done: self._written(key, done))
        try:
            await asyncio.shield(write)
        except OSError as exc:
            full = disk_full(exc, self.root, "saving the result to the workflow cache")
            if full is None:
                raise
            raise full from None
        victims = self._take_out(self._victims(keep=key))
        if victims:
            await asyncio.to_thread(self._remove, victims)
        return CacheEntry(key, final, stored)

    def _written(self, key: str, write: asyncio.Future[int]) -> None:
        if not write.cancelled() and write.exception() is None:
            self._index[key] = (write.result(), time.time())

    def _write(self, key: str, final: Path, stored: dict[str, Stored], values: dict[str, Any]) -> int:
        tmp = self.tmp / f"{key}.{secrets.token_hex(4)}"
        tmp.mkdir(parents=True)
        try:
            for port, item in stored.items():
                with open(tmp / item.file, "wb") as file:
                    if item.kind == "ndarray":
                        np.save(file, np.asarray(values[port]), allow_pickle=False)
                    else:
                        # as given (column order kept); the key and hash use the canonical form
                        file.write(json.dumps(plain(values[port]), ensure_ascii=False).encode())
            meta = {
                "key": key,
                "created": time.time(),
                "outputs": {
                    port: {"kind": s.kind, "hash": s.hash, "summary": s.summary, "file": s.file}
                    for port, s in stored.items()
                },
            }
            (tmp / "meta.json").write_bytes(json.dumps(meta, indent=1).encode())
            size = sum(f.stat().st_size for f in tmp.iterdir())
            final.parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(3):
                try:
                    os.rename(tmp, final)
                    break
                except OSError:
                    if attempt == 2 or not final.exists():
                        raise
                # an entry is there: the last write wins, so that the index, the disk and the entry put
                # returns agree even when a plugin gives other bytes each run
                old = self.tmp / f"{key}.{secrets.token_hex(4)}.old"
                with contextlib.suppress(FileNotFoundError):
                    os.rename(final, old)
                shutil.rmtree(old, ignore_errors=True)
            return size
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used entries until the cache fits its budget; returns their keys."""
        victims = self._victims(keep)
        self._remove(self._take_out(victims))
        return victims

    def _victims(self, keep: str | None) -> list[str]:
        """Take the least recently used entries out of the index until the rest fits the budget."""
        victims = []
        total = self.size
        now = time.time()
        self._held = {k: until for k, until in self._held.items() if until > now}
        for key, (size, _) in sorted(self._index.items(), key=lambda item: item[1][1]):
            if total <= self.budget:
                break
            if key != keep and key not in self._held:  # the entry just written stays, even alone over budget
                self._index.pop(key, None)
                total -= size
                victims.append(key)
        return victims

    def _take_out(self, keys: list[str]) -> list[Path]:
        """Rename evicted entries out of ``objects/`` at once, so that a :meth:`get` while they are being
        deleted is a miss, not a hit that counts them again; returns where they went."""
        gone = []
        if keys:
            self.tmp.mkdir(parents=True, exist_ok=True)
        for key in keys:
            with contextlib.suppress(OSError):
                os.rename(self.path(key), place := self.tmp / f"{key}.{secrets.token_hex(4)}.evicted")
                gone.append(place)
        return gone

    def _remove(self, paths: list[Path]) -> None:
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)
