"""imjoy-rpc's ``RPC`` with the fixes every scopeflow party needs.

The hub's workspace manager, plugin kernels and Python clients all run imjoy-rpc 0.5.59's ``RPC`` class
unchanged in protocol. One thing is changed in how a receiver handles large messages: the library
reassembles chunked messages with ``bytes += chunk``, which is quadratic in the message size. Here the
cache keeps a ``bytearray`` instead, which is linear.
"""

from __future__ import annotations

from typing import Any

from imjoy_rpc.hypha.rpc import RPC

__all__ = ["RPC", "FastRPC", "remote_error"]


class FastRPC(RPC):
    """``RPC`` with linear-time reassembly of chunked messages."""

    def _create_message(
        self, key: str, heartbeat: bool = False, overwrite: bool = False, context: Any = None
    ) -> None:
        super()._create_message(key, heartbeat=heartbeat, overwrite=overwrite, context=context)
        self._object_store["message_cache"][key] = bytearray()

    def _append_message(self, key: str, data: bytes, heartbeat: bool = False, context: Any = None) -> None:
        if heartbeat:
            if key not in self._object_store:
                raise Exception(f"session does not exist anymore: {key}")
            self._object_store[key]["timer"].reset()
        cache = self._object_store["message_cache"]
        if key not in cache:
            raise KeyError(f"Message with key {key} does not exist.")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"message chunk must be bytes, not {type(data).__name__}")
        cache[key] += data


def remote_error(message: str, trace: str = "") -> dict[str, str]:
    """The imjoy-rpc encoding of an exception, as a peer receives it."""
    return {"_rtype": "error", "_rvalue": message, "_rtrace": trace}
