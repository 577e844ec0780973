"""Direct links: a scopeflow client and a plugin kernel on one machine talk over a websocket of their own once
the hub has introduced them, so that a call takes one hop each way instead of two through the hub.

The hub stays in charge of who may call whom:

- A kernel on the hub's machine listens on a loopback port (:meth:`Links.listen`) and names it in its
  services' ``config["direct"]``.
- When a client gets such a service, the workspace manager adds two codes made from the kernel's launch
  secret (which only the hub and that kernel hold) and the caller's id (:func:`introduce`):
  ``direct_ticket``, which the kernel checks before it accepts the link, and ``direct_proof``, which the
  kernel sends back first so that the caller knows it reached that kernel and not whatever holds the port now.
- Each side stamps ``from`` and ``to`` on what arrives over a link, as the router does: a caller cannot speak
  for anyone else.
- A link that fails or closes is dropped and frames go through the hub again. The calls still waiting for
  an answer from that kernel are rejected at once, as the router does for a peer that goes, instead of
  waiting for their timeout.

Unmodified imjoy-rpc clients and the web app never see any of this: their frames go through the hub. A
kernel on a gateway host offers no link. ``SCOPEFLOW_DIRECT=0`` turns links off in a process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from scopeflow.rpc.frames import FrameError, is_quick_frame, read_main, restamp

log = logging.getLogger("scopeflow.rpc.direct")

DIAL_TIMEOUT = 2.0
CALLER = "X-Scopeflow-Caller"
TICKET = "X-Scopeflow-Ticket"
CALLER_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}/[A-Za-z0-9_.-]{1,128}")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def code(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def enabled() -> bool:
    return os.environ.get("SCOPEFLOW_DIRECT", "1") != "0"


def loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOOPBACK


def introduce(service: Any, secret: str | None, caller: str) -> Any:
    """The hub's part: a service whose kernel offers links gets the caller's ticket and the kernel's proof."""
    config = service.get("config") if isinstance(service, dict) else None
    if not secret or not isinstance(config, dict) or not config.get("direct"):
        return service
    introduced = dict(service)
    introduced["config"] = {
        **config,
        "direct_ticket": code(secret, "caller:" + caller),
        "direct_proof": code(secret, "kernel:" + caller),
    }
    return introduced


def provider_of(service: Any) -> str | None:
    """The absolute id of the client that serves a service obtained from the manager."""
    for value in service.values() if isinstance(service, dict) else ():
        target = (getattr(value, "__rpc_object__", None) or {}).get("_rtarget")
        if isinstance(target, str) and target:
            return target
    return None


def reject_calls(rpc: Any, target: str) -> None:
    """Reject every call ``rpc`` still waits for from ``target`` (whose link closed)."""
    store = rpc._object_store
    short = target.split("/", 1)[-1]
    for key in [k for k, v in store.items() if isinstance(v, dict) and v.get("target_id") in (target, short)]:
        reject = store.get(key, {}).get("reject")
        if callable(reject):
            try:
                reject(RuntimeError(f"{short} disconnected before answering (its direct link closed)"))
            except Exception:
                log.debug("could not reject a call to %s", target, exc_info=True)


class Links:
    """The connection imjoy-rpc's ``RPC`` is given: frames go over a direct link when one is open to their
    target, through the hub otherwise. ``hub`` is the client's :class:`~scopeflow.rpc.connection.
    WebsocketConnection`."""

    def __init__(self, hub: Any, client_id: str, *, hub_url: str = "") -> None:
        self.hub = hub
        self.client_id = client_id
        self.peers: dict[str, Any] = {}  # absolute id → open websocket
        self.workspace = ""
        self.on_lost: Callable[[str], None] | None = None
        self.quick: Any = None  # quick calls (scopeflow.rpc.quick) travel over the links too
        self._may_dial = enabled() and loopback(hub_url)
        self._handler: Callable[[bytes], Awaitable[None] | None] | None = None
        self._dialing: dict[str, asyncio.Future[None]] = {}
        self._failed: set[str] = set()
        self._readers: set[asyncio.Task[None]] = set()
        self._server: Server | None = None

    # -- imjoy-rpc's connection interface -----------------------------------------------------------------
    def on_message(self, handler: Callable[[bytes], Awaitable[None] | None]) -> None:
        self._handler = handler
        self.hub.on_message(handler)

    def set_reconnection_token(self, token: str) -> None:
        self.hub.set_reconnection_token(token)

    async def emit_message(self, data: bytes) -> None:
        if self.peers:
            link = self.peers.get(self._target(data))
            if link is not None:
                try:
                    await link.send(data)
                    return
                except ConnectionClosed:
                    pass  # its reader drops it; this frame goes through the hub
        await self.hub.emit_message(data)

    async def disconnect(self, reason: str | None = None) -> None:
        await self.close()
        await self.hub.disconnect(reason)

    def _target(self, data: bytes) -> str:
        try:
            to = read_main(data)[0]["to"]
        except FrameError:
            return ""
        return to if "/" in to else f"{self.workspace}/{to}"

    # -- the caller's side --------------------------------------------------------------------------------
    async def introduce(self, service: Any) -> None:
        """Open a link to the kernel that serves ``service`` if the hub introduced us (nothing otherwise)."""
        config = (service.get("config") if isinstance(service, dict) else None) or {}
        url, ticket, proof = (config.get(k) for k in ("direct", "direct_ticket", "direct_proof"))
        target = provider_of(service)
        if not (self._may_dial and url and ticket and proof and target and "/" in target):
            return
        if target in self.peers or url in self._failed:
            return
        if target not in self._dialing:
            dial = self._dial(target, str(url), str(ticket), str(proof))
            self._dialing[target] = asyncio.ensure_future(dial)
        try:
            await asyncio.shield(self._dialing[target])
        finally:
            self._dialing.pop(target, None)

    async def _dial(self, target: str, url: str, ticket: str, proof: str) -> None:
        me = f"{target.split('/', 1)[0]}/{self.client_id}"
        ws = None
        try:
            ws = await asyncio.wait_for(
                connect(
                    url,
                    additional_headers={CALLER: me, TICKET: ticket},
                    compression=None,
                    max_size=None,
                    ping_interval=None,  # a kernel busy in its event loop must not look dead
                    open_timeout=DIAL_TIMEOUT,
                ),
                DIAL_TIMEOUT,
            )
            answer = await asyncio.wait_for(ws.recv(), DIAL_TIMEOUT)
            if not (isinstance(answer, str) and hmac.compare_digest(answer, proof)):
                raise PermissionError("the answer on that port is not the kernel's proof")
        except Exception as exc:
            self._failed.add(url)
            log.info("no direct link to %s (%s): calls go through the hub", target, exc)
            if ws is not None:
                await ws.close()
            return
        self.workspace = target.split("/", 1)[0]
        self.peers[target] = ws
        self._read_later(ws, target, me, lost=True)

    # -- the kernel's side --------------------------------------------------------------------------------
    async def listen(self, secret: str, me: str) -> str:
        """Accept links from callers the hub introduced; return the ``ws://`` URL to name in services."""
        workspace = me.split("/", 1)[0]
        self.workspace = workspace

        def check(connection: ServerConnection, request: Any) -> Any:
            caller = request.headers.get(CALLER, "")
            ticket = request.headers.get(TICKET, "")
            if not (CALLER_ID.fullmatch(caller) and caller.startswith(workspace + "/")):
                return connection.respond(HTTPStatus.FORBIDDEN, "a caller id is required\n")
            if not hmac.compare_digest(ticket.encode(), code(secret, "caller:" + caller).encode()):
                return connection.respond(HTTPStatus.FORBIDDEN, "a ticket from the hub is required\n")
            return None

        async def accept(ws: ServerConnection) -> None:
            caller = ws.request.headers[CALLER] if ws.request else ""
            await ws.send(code(secret, "kernel:" + caller))
            old = self.peers.get(caller)
            self.peers[caller] = ws
            if old is not None:
                await old.close()
            await self._read(ws, caller, me, lost=False)

        self._server = await serve(
            accept,
            "127.0.0.1",
            0,
            process_request=check,
            compression=None,
            max_size=None,
            ping_interval=None,
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # -- both ---------------------------------------------------------------------------------------------
    def _read_later(self, ws: Any, sender: str, me: str, lost: bool) -> None:
        task = asyncio.ensure_future(self._read(ws, sender, me, lost))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _read(self, ws: Any, sender: str, me: str, lost: bool) -> None:
        """Hand what ``sender`` sends to the RPC, stamped; when the link closes, forget it (and on the
        caller's side, reject the calls it still owed)."""
        try:
            async for message in ws:
                if isinstance(message, str) or self._handler is None:
                    continue
                try:
                    if is_quick_frame(message) and self.quick is not None:
                        self.quick.received(sender, me, message)
                        continue
                    result = self._handler(restamp(message, sender, me))
                    if result is not None:
                        await result
                except FrameError as exc:
                    log.warning("dropped a frame from %s: %s", sender, exc)
                except Exception:
                    log.exception("error while handling a message from %s", sender)
        except ConnectionClosed:
            pass
        finally:
            if self.peers.get(sender) is ws:
                del self.peers[sender]
                if lost and self.quick is not None:
                    self.quick.lost(sender)
                if lost and self.on_lost is not None:
                    self.on_lost(sender)

    async def close(self) -> None:
        links = list(self.peers.values())
        self.peers.clear()
        for ws in links:
            await ws.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
