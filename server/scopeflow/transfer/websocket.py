"""Arrays over a client's own ``/ws`` connection (the web app's), with no HTTP request per array.

The hub's transfer info says ``"ws_arrays": WS_ARRAY_MAX`` to a client that may use this, for arrays up to
that many bytes (larger ones go over HTTP as before). On its websocket the client may:

- upload: send the frame ``UPLOAD + name`` (the byte 0xC1, then the blob's name in ASCII, which must start
  with the client's own prefix), then the blob's bytes as the next binary frame. The frame of the message
  that carries the array's handle comes after them on the same socket, so the blob is stored before anyone
  can ask for it: nothing is answered.
- ask for pushes: send the frame ``PUSH`` (0xC2 alone). Before a frame that names blobs the hub holds goes to
  that client, each such blob goes first, as ``PUSH + name`` then its bytes; it is consumed, as a GET would
  consume it. The client keeps what was pushed until its decoder reads it.

0xC1 and 0xC2 never start a msgpack object, so these frames cannot be taken for imjoy-rpc's.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from scopeflow.transfer.store import NAMES_IN_FRAME, TransferStore

log = logging.getLogger("scopeflow.transfer.websocket")

UPLOAD, PUSH = 0xC1, 0xC2
WS_ARRAY_MAX = 64 << 20  # larger arrays go over HTTP: a frame that size already makes others wait
NAME = re.compile(r"sf-[0-9a-f-]{1,120}")
_REFUSED = ""  # the upload header was refused: its bytes are dropped


class SocketArrays:
    """One websocket's arrays: the upload whose bytes come next, and whether it takes pushes."""

    def __init__(self, store: TransferStore, prefix: str, client: str) -> None:
        self.store = store
        self.prefix = prefix  # the client's own blob names start with it
        self.client = client
        self.next_upload: str | None = None
        self.push = False

    def receive(self, message: bytes) -> bool:
        """Take an array frame; False for any other frame (an imjoy-rpc frame, for the router)."""
        if self.next_upload is not None:
            name, self.next_upload = self.next_upload, None
            if name != _REFUSED:
                self._keep(name, message)
            return True
        if not message or message[0] not in (UPLOAD, PUSH):
            return False
        if message[0] == PUSH:
            self.push = len(message) == 1
            return True
        name = message[1:].decode("ascii", "replace")
        if not NAME.fullmatch(name) or not name.startswith(self.prefix):
            log.warning("refused an array upload from %s: %r is not one of its names", self.client, name[:80])
            self.next_upload = _REFUSED
        elif self.store.exists(name):
            log.warning("refused an array upload from %s: %s exists already", self.client, name)
            self.next_upload = _REFUSED
        else:
            self.next_upload = name
        return True

    def _keep(self, name: str, data: bytes) -> None:
        if len(data) > WS_ARRAY_MAX:
            log.warning("refused an array upload from %s: %d bytes, over the limit", self.client, len(data))
            return
        try:
            self.store.put(name, data)
        except OSError as exc:  # shared memory full: the reader will say the array is gone
            log.warning("could not keep array %s from %s: %s", name, self.client, exc)

    def pushes(self, frame: bytes) -> list[Any]:
        """What goes before ``frame``: for each blob it names that the hub holds, its header and bytes."""
        if not self.push or b"sf-" not in frame:
            return []
        out: list[Any] = []
        for found in NAMES_IN_FRAME.finditer(frame):
            name = found.group().decode("ascii")
            data = self.store.take(name, limit=WS_ARRAY_MAX)
            if data is not None:
                out += [bytes((PUSH,)) + found.group(), data]
        return out
