"""Arrays out of band: a large numpy array travels as a handle; its bytes take the fastest path there is.

imjoy-rpc sends anything over 500 KiB as sequential 500 KiB chunks, each a round trip. This codec (the
library's ``register_codec`` hook, installed by :func:`scopeflow.rpc.client.connect` in every kernel and
Python client) replaces an array above :data:`INLINE_MAX` by a small handle::

    {"_rtype": "scopeflow-array", "name": "sf-...", "shape": [...], "dtype": "<f4", "order": "C", "nbytes": N}

and moves its bytes

- through **shared memory** when the peer is on the hub's machine (``mode == "shm"``): the sender writes a
  segment (:mod:`scopeflow.transfer.segments`), the receiver maps it and unlinks the name — one copy in all;
- over **HTTP** to and from the hub otherwise (``mode == "http"``: gateway kernels on other hosts, the web
  app): the sender uploads before the message leaves (:meth:`Transfer.flush`), the receiver downloads
  before the message is decoded (:meth:`Transfer.prefetch`). ``GET`` consumes the blob.

Arrays up to :data:`INLINE_MAX` bytes, arrays for peers that did not say they read handles (the unmodified
imjoy-rpc clients), and arrays whose segment cannot be written (shared memory full) keep imjoy-rpc's own
``ndarray`` encoding. Either way the receiver gets an array with the same dtype, shape and values, in
native byte order (big-endian input is converted, values unchanged), C- or Fortran-ordered like the input
if it was contiguous, C-ordered otherwise. Arrays of Python objects are refused with a ``TypeError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from scopeflow.transfer import segments

__all__ = ["INLINE_MAX", "RTYPE", "ArrayHandleError", "Transfer", "find_handles", "inline"]

log = logging.getLogger("scopeflow.transfer.codec")

RTYPE = "scopeflow-array"
INLINE_MAX = 1 << 20  # bytes: smaller arrays stay in the message
HTTP_CHUNK = 1 << 22
MODES = ("shm", "http")


class ArrayHandleError(ValueError):
    """A handle that does not describe an array this hub can deliver (forged, truncated or gone)."""


def native(array: np.ndarray) -> np.ndarray:
    if array.dtype.hasobject:
        raise TypeError("arrays of Python objects cannot be sent: convert them to a numeric dtype first")
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "<" and not array.dtype.isnative):
        return array.astype(array.dtype.newbyteorder("="))
    return array


def inline(array: np.ndarray) -> dict[str, Any]:
    """imjoy-rpc's own ``ndarray`` encoding, in native byte order (the library keeps the bytes but not
    the order, so big-endian input would arrive as other values)."""
    array = native(array)
    return {
        "_rtype": "ndarray",
        "_rvalue": array.tobytes(),
        "_rshape": list(array.shape),
        "_rdtype": str(array.dtype),
    }


def contiguous(array: np.ndarray) -> tuple[np.ndarray, str]:
    """The array's bytes as a C-contiguous buffer, and the order they are in."""
    if array.flags.c_contiguous:
        return array, "C"
    if array.flags.f_contiguous:
        return array.T, "F"
    return np.ascontiguousarray(array), "C"


def find_handles(value: Any) -> Iterator[dict[str, Any]]:
    """Every handle inside a decoded-from-msgpack message part (nested lists and dicts)."""
    if isinstance(value, dict):
        if value.get("_rtype") == RTYPE:
            yield value
            return
        for item in value.values():
            yield from find_handles(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from find_handles(item)


class Transfer:
    """One client's side of out-of-band arrays: encoder, decoder, uploads and downloads."""

    def __init__(
        self, base_url: str, headers: dict[str, str], prefix: str, hub_prefix: str, mode: str
    ) -> None:
        assert mode in MODES
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.prefix = prefix  # names of this client's segments start with it
        self.hub_prefix = hub_prefix  # names of every segment of the hub
        self.mode = mode
        self.pending: list[tuple[str, np.ndarray]] = []  # to upload before the next message leaves
        self.fetched: dict[str, bytearray | Exception] = {}  # downloaded before decoding
        self.http = AsyncHTTPClient(force_instance=True, max_body_size=1 << 40, max_buffer_size=1 << 26)

    @classmethod
    async def open(
        cls, server_url: str, client_id: str, headers: dict[str, str], mode: str | None = None
    ) -> Transfer | None:
        """Ask the hub how to move arrays; None if it does not offer out-of-band transfer."""
        base = server_url.rstrip("/")
        if base.startswith("ws"):
            base = "http" + base[2:]
        base = base.removesuffix("/ws")
        query = f"?client_id={client_id}"
        try:
            response = await AsyncHTTPClient().fetch(
                f"{base}/api/transfer{query}", headers=headers, request_timeout=30
            )
            info = json.loads(response.body)
        except Exception as exc:  # not a scopeflow hub, or an old one: arrays go inline
            log.info("no out-of-band arrays from %s: %s", base, exc)
            return None
        mode = mode or os.environ.get("SCOPEFLOW_TRANSFER") or ("shm" if shm_reaches(info) else "http")
        if mode == "shm" and not shm_reaches(info):
            mode = "http"
        return cls(base, headers, info["prefix"], info["hub_prefix"], mode)

    # -- sending ------------------------------------------------------------------------------------------
    def encode(self, array: np.ndarray) -> dict[str, Any]:
        """A handle for ``array`` (its bytes written to shared memory now, or uploaded at the next flush)."""
        data, order = contiguous(native(array))
        name = segments.new_name(self.prefix)
        if self.mode == "shm":
            try:
                segments.write(name, data.data)
            except OSError as exc:  # shared memory full: the message carries the bytes instead
                log.warning("could not write a %d-byte segment (%s): sending inline", data.nbytes, exc)
                return inline(array)
        else:
            self.pending.append((name, data))
        return {
            "_rtype": RTYPE,
            "name": name,
            "shape": list(array.shape),
            "dtype": data.dtype.str,
            "order": order,
            "nbytes": int(data.nbytes),
        }

    async def flush(self) -> None:
        """Upload the arrays of handles encoded since the last flush (HTTP mode)."""
        while self.pending:
            name, data = self.pending.pop(0)
            view = data.data.cast("B")

            async def produce(write: Any, view: memoryview = view) -> None:
                for start in range(0, view.nbytes, HTTP_CHUNK):
                    await write(view[start : start + HTTP_CHUNK])

            producer: Any = produce

            request = HTTPRequest(
                f"{self.base_url}/api/transfer/{name}",
                method="PUT",
                headers={**self.headers, "Content-Length": str(view.nbytes)},
                body_producer=producer,
                request_timeout=3600,
            )
            await self.http.fetch(request)

    def discard(self, handles: list[dict[str, Any]]) -> None:
        """Drop the arrays of this party's handles in a message that will never be sent."""
        names = {n for h in handles if isinstance(n := h.get("name"), str) and n.startswith(self.prefix)}
        if self.mode == "shm":
            for name in names:
                segments.unlink(name)
        else:
            self.pending = [(name, data) for name, data in self.pending if name not in names]

    # -- receiving ----------------------------------------------------------------------------------------
    def decode(self, handle: dict[str, Any]) -> np.ndarray:
        """The array a handle stands for (it is consumed: a handle is read once)."""
        name, shape, dtype, order, nbytes = self.check(handle)
        buffer: Any
        if self.mode == "shm":
            try:
                buffer = segments.attach(name)
            except FileNotFoundError:
                raise ArrayHandleError(
                    f"array {name} is gone: read already, or its sender went away before it was read"
                ) from None
        else:
            got = self.fetched.pop(name, None)
            if got is None:
                raise ArrayHandleError(f"array {name} was not downloaded before its message was decoded")
            if isinstance(got, Exception):
                raise got
            buffer = got
        if len(buffer) < nbytes:
            raise ArrayHandleError(f"array {name} is truncated: {len(buffer)} of {nbytes} bytes")
        count = nbytes // dtype.itemsize if dtype.itemsize else 0
        flat = np.frombuffer(buffer, dtype=dtype, count=count)
        return flat.reshape(shape, order=order)  # type: ignore[call-overload]

    def check(self, handle: dict[str, Any]) -> tuple[str, tuple[int, ...], np.dtype[Any], str, int]:
        """Validate a handle's fields: a forged or damaged handle gets a clear error, not a crash."""
        name = handle.get("name")
        if not isinstance(name, str) or not segments.NAME.fullmatch(name):
            raise ArrayHandleError(f"not an array handle: bad name {name!r}")
        if not name.startswith(self.hub_prefix):
            raise ArrayHandleError(f"array {name} does not belong to this hub")
        shape = handle.get("shape")
        if not isinstance(shape, list | tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ArrayHandleError(f"array {name}: bad shape {shape!r}")
        try:
            dtype = np.dtype(str(handle.get("dtype")))
        except TypeError:
            raise ArrayHandleError(f"array {name}: bad dtype {handle.get('dtype')!r}") from None
        if dtype.hasobject:
            raise ArrayHandleError(f"array {name}: dtype {dtype} holds Python objects")
        order = handle.get("order", "C")
        if order not in ("C", "F"):
            raise ArrayHandleError(f"array {name}: bad order {order!r}")
        nbytes = handle.get("nbytes")
        if nbytes != math.prod(shape) * dtype.itemsize:
            raise ArrayHandleError(
                f"array {name}: {nbytes!r} bytes do not make a {dtype} array of shape {tuple(shape)}"
            )
        return name, tuple(shape), dtype, order, int(nbytes)

    async def prefetch(self, handles: list[dict[str, Any]]) -> None:
        """Download the bytes of ``handles`` (HTTP mode); failures are kept for the decoder to raise."""
        await asyncio.gather(*(self._download(h) for h in handles))

    async def _download(self, handle: dict[str, Any]) -> None:
        try:
            name, _, _, _, nbytes = self.check(handle)
        except ArrayHandleError:
            return  # the decoder says what is wrong with it
        buffer = bytearray(nbytes)
        view = memoryview(buffer)
        done = 0

        def receive(chunk: bytes) -> None:
            nonlocal done
            end = min(done + len(chunk), nbytes)
            view[done:end] = chunk[: end - done]
            done += len(chunk)

        try:
            await self.http.fetch(
                HTTPRequest(
                    f"{self.base_url}/api/transfer/{name}",
                    headers=self.headers,
                    streaming_callback=receive,
                    request_timeout=3600,
                )
            )
            if done != nbytes:
                raise ArrayHandleError(f"array {name} is truncated: {done} of {nbytes} bytes")
            self.fetched[name] = buffer
        except HTTPClientError as exc:
            message = "it is gone: read already, or its sender went away" if exc.code == 404 else str(exc)
            self.fetched[name] = ArrayHandleError(f"could not download array {name}: {message}")
        except Exception as exc:
            self.fetched[name] = ArrayHandleError(f"could not download array {name}: {exc}")


def shm_reaches(info: dict[str, Any]) -> bool:
    """Does this process see the hub's shared memory? It reads the probe segment the hub wrote."""
    probe, nonce = info.get("probe"), info.get("nonce")
    if not (probe and nonce and segments.available()):
        return False
    try:
        mapped = segments.attach(str(probe), consume=False)
    except (OSError, ValueError):
        return False
    with mapped:
        return bytes(mapped[: len(nonce)]) == str(nonce).encode()
