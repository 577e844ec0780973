"""The hub's blobs of arrays in flight: shared-memory segments, or memory when there are none.

Uploads (``PUT /api/transfer/NAME``) land here until their reader takes them. The store reclaims what an
owner left when it disconnects (:meth:`TransferStore.release_owner`), what nobody read within ``ttl``
seconds (:meth:`TransferStore.expire`, every minute once :meth:`TransferStore.start` ran), and everything
when the hub exits.
"""

from __future__ import annotations

import atexit
import re
import time

from tornado.ioloop import PeriodicCallback

from scopeflow.transfer import segments

__all__ = ["TransferStore"]

SWEEP_MS = 60_000
NAMES_IN_FRAME = re.compile(
    rb"sf-[0-9]{1,10}-[0-9a-f]{6}-[0-9a-f]{8}-[0-9a-f]{32}"
)  # segments.NAME, as bytes


class TransferStore:
    """Blobs the hub holds for arrays in flight: shared-memory segments, or memory without them."""

    def __init__(self, ttl: float = 900) -> None:
        self.segments = segments.Segments(ttl)
        self.memory: dict[str, tuple[bytearray, float]] = {}

    def exists(self, name: str) -> bool:
        if self.segments.enabled:
            return (segments.SHM_DIR / name).exists()
        return name in self.memory

    def put(self, name: str, data: bytes) -> None:
        """Keep ``data`` as blob ``name`` (a new one)."""
        if self.segments.enabled:
            segments.write(name, memoryview(data))
        else:
            self.memory[name] = (bytearray(data), time.time())

    def take(self, name: str, limit: int | None = None) -> bytes | None:
        """Blob ``name``'s bytes, consumed; None if the hub does not hold it, or it is over ``limit``."""
        if not self.segments.enabled:
            entry = self.memory.get(name)
            if entry is None or (limit is not None and len(entry[0]) > limit):
                return None
            del self.memory[name]
            return bytes(entry[0])
        if not self.segments.owns(name):
            return None
        try:
            mapped = segments.attach(name, consume=False)
        except (FileNotFoundError, ValueError):
            return None
        try:
            if limit is not None and len(mapped) > limit:
                return None
            segments.unlink(name)
            return mapped[:]
        finally:
            mapped.close()

    def held(self) -> int:
        """How many arrays the hub holds for readers yet to come."""
        probe = self.segments.probe_name
        return len(self.memory) + len([n for n in self.segments.names() if n != probe])

    def release_owner(self, client_id: str) -> int:
        prefix = self.segments.prefix(client_id)
        gone = [n for n in self.memory if n.startswith(prefix)]
        for name in gone:
            del self.memory[name]
        return len(gone) + self.segments.release_owner(client_id)

    def release_named_in(self, frame: bytes) -> int:
        """Free the arrays a frame that can no longer be delivered points to (an answer to a caller that
        died): nobody else can read them; how many there were."""
        count = 0
        for found in NAMES_IN_FRAME.finditer(frame):
            name = found.group().decode("ascii")
            if self.memory.pop(name, None) is not None:
                count += 1
            elif self.segments.owns(name):
                count += segments.unlink(name)
        return count

    def expire(self) -> int:
        limit = time.time() - self.segments.ttl
        old = [n for n, (_, t) in self.memory.items() if t < limit]
        for name in old:
            del self.memory[name]
        return len(old) + self.segments.expire()

    def close(self) -> None:
        self.memory.clear()
        self.segments.close()

    def start(self) -> None:
        """Sweep expired blobs every minute (on the running IOLoop), and free everything at exit."""
        self._sweeper = PeriodicCallback(self._sweep, SWEEP_MS)
        self._sweeper.start()
        atexit.register(self.close)

    def _sweep(self) -> None:
        self.expire()
