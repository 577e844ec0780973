"""HTTP doors of out-of-band arrays (see :mod:`scopeflow.transfer.codec`) and the hub's store behind them
(:mod:`scopeflow.transfer.store`).

- ``GET /api/transfer?client_id=ID``: how this client names its arrays, and the shared-memory probe.
- ``PUT /api/transfer/NAME``: upload an array's bytes (streamed; ``Content-Length`` required).
- ``GET /api/transfer/NAME``: download them; the blob is consumed (a handle is read once).
- ``DELETE /api/transfer/NAME``: drop a blob without reading it.

Callers hold the hub's token (``Authorization: token ...``), or are plugin kernels with their launch's
secret (``X-Scopeflow-Plugin: ID SECRET``). Uploads land in shared-memory segments when the hub has them
(a kernel on this machine then maps the upload directly), in memory otherwise. The store reclaims what an
owner left when it disconnects, what nobody read within ``ttl`` seconds, and everything when the hub exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web

from scopeflow._http import HubMixin
from scopeflow._util import ID_RE, free_memory
from scopeflow.transfer import segments
from scopeflow.transfer.codec import INLINE_MAX
from scopeflow.transfer.store import TransferStore
from scopeflow.transfer.websocket import WS_ARRAY_MAX

__all__ = ["default_handlers"]

NAME = r"(?P<name>sf-[0-9a-f-]{1,120})"
MAX_UPLOAD = 1 << 36  # 64 GiB
SEND_CHUNK = 1 << 22


class _Upload:
    """One blob being written, chunk by chunk."""

    def __init__(self, store: TransferStore, name: str, size: int) -> None:
        self.store, self.name, self.size, self.done = store, name, size, 0
        self.fd: int | None = None
        self.buffer: bytearray | None = None
        if store.segments.enabled:
            free = shutil.disk_usage(segments.SHM_DIR).free
            if size > free:
                raise web.HTTPError(507, f"shared memory has {free} bytes free, the array needs {size}")
            self.fd = segments.create(name)
        else:
            free = free_memory()
            if size > free:
                raise web.HTTPError(507, f"the hub has {free} bytes of memory free, the array needs {size}")
            self.buffer = bytearray()  # grows with what arrives: a declared length costs nothing by itself

    def write(self, chunk: bytes) -> None:
        if self.done + len(chunk) > self.size:
            raise web.HTTPError(400, "more bytes than Content-Length")
        if self.fd is not None:
            view, written = memoryview(chunk), 0
            while written < len(chunk):
                written += os.pwrite(self.fd, view[written:], self.done + written)
        elif self.buffer is not None:
            self.buffer += chunk
        self.done += len(chunk)

    def finish(self) -> None:
        if self.done != self.size:
            self.abort()
            raise web.HTTPError(400, f"got {self.done} of {self.size} bytes")
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        elif self.buffer is not None:
            self.store.memory[self.name] = (self.buffer, time.time())

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            segments.unlink(self.name)
        self.buffer = None


class TransferMixin(HubMixin):
    """Who is calling: a token holder, or a plugin kernel with its launch's secret."""

    current_user: Any
    get_argument: Any

    @property
    def store(self) -> TransferStore:
        return self.hub.transfer_store

    def check_xsrf_cookie(self) -> None:
        """Credentials come in headers only, never from cookies alone: no cross-site form can send them."""

    def caller(self) -> str:
        """The caller's client id ('' for a token holder who did not say); 403 without credentials."""
        plugin = self.request.headers.get("X-Scopeflow-Plugin", "")
        if plugin:
            plugin_id, _, secret = plugin.partition(" ")
            if self.hub.engine.admit(plugin_id, secret) is None:
                raise web.HTTPError(403, "unknown plugin or wrong secret")
            return str(plugin_id)
        if self.current_user is None:
            raise web.HTTPError(403, "a valid token is required")
        return ""

    def blob_name(self, name: str) -> str:
        if not self.store.segments.owns(name):
            raise web.HTTPError(404, f"no array {name} on this hub")
        return name


class TransferInfoHandler(TransferMixin, APIHandler):
    @allow_unauthenticated  # checked in caller(): the token, or a plugin kernel's secret
    def get(self) -> None:
        caller = self.caller()
        client_id = self.get_argument("client_id", "") or caller
        if not ID_RE.fullmatch(client_id) or (caller and client_id != caller):
            raise web.HTTPError(400, "client_id must be the caller's own client id")
        segs = self.store.segments
        self.finish(
            {
                "prefix": segs.prefix(self.hub.router.absolute(client_id)),
                "hub_prefix": segs.hub_prefix,
                "probe": segs.probe_name if segs.enabled else None,
                "nonce": segs.probe_nonce if segs.enabled else None,
                "inline_max": INLINE_MAX,
                "ws_arrays": WS_ARRAY_MAX,  # arrays up to this size may travel on the client's /ws
                "held": self.store.held(),
            }
        )


@web.stream_request_body
class TransferBlobHandler(TransferMixin, APIHandler):
    upload: _Upload | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method != "PUT":
            return
        self.caller()
        name = self.blob_name(self.path_kwargs["name"])
        length = self.request.headers.get("Content-Length", "")
        if not length.isdigit():
            raise web.HTTPError(411, "Content-Length is required")
        if int(length) > MAX_UPLOAD:
            raise web.HTTPError(413, f"arrays are limited to {MAX_UPLOAD} bytes")
        if self.store.exists(name):
            raise web.HTTPError(409, f"array {name} exists already")
        self.request.connection.set_max_body_size(int(length))
        self.upload = _Upload(self.store, name, int(length))

    def data_received(self, chunk: bytes) -> None:
        if self.upload is not None:
            self.upload.write(chunk)

    @allow_unauthenticated
    def put(self, name: str) -> None:
        assert self.upload is not None
        self.upload.finish()
        self.upload = None
        self.set_status(201)
        self.finish({"name": name})

    def on_connection_close(self) -> None:
        if self.upload is not None:
            self.upload.abort()
            self.upload = None
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None:  # an error ended the request before put()
            self.upload.abort()
            self.upload = None

    @allow_unauthenticated
    async def get(self, name: str) -> None:
        self.caller()
        name = self.blob_name(name)
        data: Any
        if self.store.segments.enabled:
            try:
                data = segments.attach(name)
            except (FileNotFoundError, ValueError):
                raise web.HTTPError(404, f"array {name} is gone: read already, or never sent") from None
        else:
            entry = self.store.memory.pop(name, None)
            if entry is None:
                raise web.HTTPError(404, f"array {name} is gone: read already, or never sent")
            data = entry[0]
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(len(data)))
        try:
            view = memoryview(data)
            for start in range(0, len(view), SEND_CHUNK):
                self.write(bytes(view[start : start + SEND_CHUNK]))
                await self.flush()
            view.release()
        finally:
            if hasattr(data, "close"):
                with contextlib.suppress(BufferError):
                    data.close()
        self.finish()

    @allow_unauthenticated
    def delete(self, name: str) -> None:
        self.caller()
        name = self.blob_name(name)
        self.store.memory.pop(name, None)
        segments.unlink(name)
        self.set_status(204)
        self.finish()


default_handlers: list[tuple[str, type]] = [
    (r"/api/transfer", TransferInfoHandler),
    (rf"/api/transfer/{NAME}", TransferBlobHandler),
]
