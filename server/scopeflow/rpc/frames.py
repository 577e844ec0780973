"""imjoy-rpc frames as the router and direct links read them.

A frame is ``msgpack(main)`` optionally followed by ``msgpack(extra)``. Only ``main`` is decoded (it is
small: type, to, from, method, session); the payload bytes are passed on untouched.
"""

from __future__ import annotations

import io
from typing import Any

import msgpack

# the user every frame names: a hub has one workspace and one owner
USER = {"id": "owner", "is_anonymous": False, "email": None, "roles": []}


class FrameError(ValueError):
    """A frame that cannot be routed."""


def read_main(data: bytes) -> tuple[dict[str, Any], int]:
    """Decode the first msgpack object of a frame; return it and where the payload starts."""
    unpacker = msgpack.Unpacker(io.BytesIO(data), max_buffer_size=max(len(data), 1), strict_map_key=False)
    try:
        main = unpacker.unpack()
    except Exception as exc:
        raise FrameError(f"not a msgpack frame: {exc}") from exc
    if (
        not isinstance(main, dict)
        or not isinstance(main.get("type"), str)
        or not isinstance(main.get("to"), str)
    ):
        raise FrameError("frame header must be a map with string 'type' and 'to'")
    return main, unpacker.tell()


def restamp(data: bytes, sender: str, target: str) -> bytes:
    """The frame with ``from`` and ``to`` set by the party that knows who sent it (never by the sender)."""
    main, start = read_main(data)
    main["from"], main["to"], main["user"] = sender, target, USER
    return msgpack.packb(main) + data[start:]


def is_quick_frame(message: bytes) -> bool:
    """A quick call's frame (:mod:`scopeflow.rpc.quick`: a msgpack array); imjoy-rpc's frames are maps."""
    return bool(message) and 0x90 <= message[0] <= 0x9F
