"""Shared-memory segments: one array's bytes, passed between processes of one machine by name.

A segment is a POSIX shared-memory object (``/dev/shm/NAME`` on Linux), mode 0600. Its name says who may
reclaim it: ``sf-<hub pid>-<hub tag>-<owner tag>-<32 hex>``. The hub's pid and tag scope every segment to
one hub run, the owner tag is a hash of the client id that wrote it, and the random tail makes the name
unguessable. The writer fills it with ``pwrite`` (no page faults in the writer), the reader maps it and
unlinks the name at once: from then on the memory lives exactly as long as the reader's array.

The hub never has to be asked to create a segment; it reclaims them instead (:class:`Segments`): those of
an owner who disconnected, those nobody consumed within a time limit, all of its own when it stops, and
those of hubs that died without cleaning up.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import secrets
import time
from pathlib import Path

try:
    import _posixshmem  # the module behind multiprocessing.shared_memory, without its resource tracker
except ImportError:  # Windows
    _posixshmem = None

__all__ = ["SHM_DIR", "Segments", "attach", "available", "create", "new_name", "owner_tag", "unlink", "write"]

SHM_DIR = Path("/dev/shm")
NAME = re.compile(r"sf-(?P<pid>[0-9]{1,10})-(?P<hub>[0-9a-f]{6})-(?P<owner>[0-9a-f]{8})-[0-9a-f]{32}")
PROBE_OWNER = "00000000"
WRITE_STEP = 1 << 26  # pwrite at most 64 MiB at a time (Linux caps one write near 2 GiB)


def available() -> bool:
    """Can this process create and list named segments (POSIX shm under /dev/shm)?

    ``SCOPEFLOW_SHM=0`` in the environment says no (every array then goes over HTTP)."""
    if os.environ.get("SCOPEFLOW_SHM") == "0":
        return False
    return _posixshmem is not None and SHM_DIR.is_dir() and os.access(SHM_DIR, os.W_OK | os.X_OK)


def owner_tag(client_id: str) -> str:
    """The 8 hex digits standing for a client (absolute id) in the names of its segments."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:8]


def new_name(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def create(name: str) -> int:
    """Create segment ``name`` (it must not exist); return a file descriptor to ``pwrite`` into."""
    assert _posixshmem is not None, "no POSIX shared memory here"
    return int(_posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600))


def write(name: str, data: memoryview) -> None:
    """Create segment ``name`` holding ``data`` (C-contiguous bytes); fails if the name exists or the
    shared memory is full (the partial segment is removed)."""
    fd = create(name)
    try:
        size, done = data.nbytes, 0
        flat = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        while done < size:
            done += os.pwrite(fd, flat[done : done + WRITE_STEP], done)
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)


def attach(name: str, consume: bool = True) -> mmap.mmap:
    """Map segment ``name``; unless ``consume`` is false the name is removed at once.

    Raises ``FileNotFoundError`` if there is no such segment (consumed already, or reclaimed)."""
    assert _posixshmem is not None, "no POSIX shared memory here"
    fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    try:
        size = os.fstat(fd).st_size
        if consume:
            unlink(name)
        if size == 0:
            raise ValueError(f"segment {name} is empty")
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def unlink(name: str) -> bool:
    """Remove segment ``name``; False if it was gone already."""
    if _posixshmem is None:
        return False
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Segments:
    """The hub's side: names segments for its clients and reclaims every segment it named."""

    def __init__(self, ttl: float = 900) -> None:
        self.enabled = available()
        self.hub_prefix = f"sf-{os.getpid()}-{secrets.token_hex(3)}-"
        self.ttl = ttl
        self.probe_name = ""
        self.probe_nonce = ""
        if self.enabled:
            self.reclaim_orphans()
            self.probe_nonce = secrets.token_hex(16)
            self.probe_name = new_name(self.hub_prefix + PROBE_OWNER + "-")
            try:
                write(self.probe_name, memoryview(self.probe_nonce.encode()))
            except OSError:
                self.enabled = False

    def prefix(self, client_id: str) -> str:
        """What the names of ``client_id``'s segments start with."""
        return f"{self.hub_prefix}{owner_tag(client_id)}-"

    def owns(self, name: str) -> bool:
        """Is ``name`` a segment name this hub handed out (the probe excepted)?"""
        return (
            NAME.fullmatch(name) is not None
            and name.startswith(self.hub_prefix)
            and not name.startswith(self.hub_prefix + PROBE_OWNER)
        )

    def names(self, prefix: str | None = None) -> list[str]:
        """Segments of this hub (or those starting with ``prefix``) that still exist."""
        if not self.enabled:
            return []
        start = prefix or self.hub_prefix
        with contextlib.suppress(OSError):
            return [n for n in os.listdir(SHM_DIR) if n.startswith(start)]
        return []

    def release_owner(self, client_id: str) -> int:
        """Unlink every segment ``client_id`` wrote and nobody consumed; how many there were."""
        return sum(unlink(n) for n in self.names(self.prefix(client_id)))

    def expire(self, now: float | None = None) -> int:
        """Unlink segments older than the time limit (lost: sent to nobody, or to a peer that died)."""
        now = time.time() if now is None else now
        count = 0
        for name in self.names():
            if name == self.probe_name:
                continue
            with contextlib.suppress(OSError):
                if now - (SHM_DIR / name).stat().st_mtime > self.ttl:
                    count += unlink(name)
        return count

    def reclaim_orphans(self) -> int:
        """Unlink segments left by hubs that died without cleaning up (their pid is gone)."""
        count = 0
        with contextlib.suppress(OSError):
            for name in os.listdir(SHM_DIR):
                match = NAME.fullmatch(name)
                if match and not _alive(int(match["pid"])):
                    count += unlink(name)
        return count

    def close(self) -> None:
        """Unlink every segment of this hub, the probe included."""
        for name in self.names():
            unlink(name)
        self.enabled = False
