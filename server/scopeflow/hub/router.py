"""The router: forwards imjoy-rpc frames between the peers connected to ``/ws``.

Only a frame's ``main`` is decoded (:mod:`scopeflow.rpc.frames`); the payload is forwarded untouched. The
router makes ``to`` absolute, overwrites ``from`` with the sender's id, and adds the ``user`` field imjoy-rpc
needs.

It also tracks calls in flight, ``(callee, session) → caller``, so that when a peer disconnects every
call it still owed an answer is rejected at once instead of waiting for the caller's timer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import msgpack

from scopeflow.rpc.frames import USER, FrameError, read_main
from scopeflow.rpc.lean import remote_error

__all__ = ["USER", "FrameError", "Router", "read_main"]

log = logging.getLogger("scopeflow.hub.router")

MANAGER_ID = "workspace-manager"
APPEND = "message_cache.append"
PROCESS = "message_cache.process"
# the web app's api for plugins: reached only through the workspace manager, which says who calls
APP_API = "services.imjoy-api."
APP_API_REFUSED = (
    "the web app's api is reached through the workspace manager (api.showMessage, api.prompt, ...), "
    "not called directly"
)


class Peer(Protocol):
    """Anything the router can deliver a frame to."""

    def send(self, data: bytes) -> None: ...


@dataclass
class Route:
    """What the router knows of one connected peer."""

    peer: Peer
    # calls this peer has yet to answer: session → caller id
    owed: dict[str, str] = field(default_factory=dict)
    # chunked messages this peer is sending, as (target, key), once their first chunk has passed
    chunking: set[tuple[str, str]] = field(default_factory=set)
    # chunked messages of this peer that are dropped, as (target, key)
    refused: set[tuple[str, str]] = field(default_factory=set)


class Router:
    """Routes frames among peers of one workspace by their ``to`` field."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.routes: dict[str, Route] = {}
        # called with (peer id, peer) when a peer goes
        self.on_disconnect: list[Callable[[str, Peer], None]] = []
        # called with (target id, frame) for a frame to a peer that is gone (an answer to a dead caller)
        self.on_undelivered: list[Callable[[str, bytes], object]] = []

    def absolute(self, client_id: str) -> str:
        return client_id if "/" in client_id else f"{self.workspace}/{client_id}"

    def add(self, client_id: str, peer: Peer) -> str:
        """Route ``client_id`` to ``peer``; a peer that held the id is removed first (its debts rejected)."""
        peer_id = self.absolute(client_id)
        if peer_id in self.routes:
            self.remove(peer_id, "was replaced by a new connection")
        self.routes[peer_id] = Route(peer)
        return peer_id

    def remove(self, peer_id: str, reason: str = "disconnected") -> None:
        route = self.routes.pop(peer_id, None)
        if route is None:
            return
        for session, caller in route.owed.items():
            self._reject(caller, peer_id, session, f"{peer_id.split('/')[-1]} {reason} before answering")
        for other in self.routes.values():
            for session in [s for s, c in other.owed.items() if c == peer_id]:
                del other.owed[session]
        for target, key in route.chunking:  # half-sent messages: the receiver may drop what it holds
            receiver = self.routes.get(target)
            discard = getattr(receiver.peer, "discard_chunks", None) if receiver else None
            if discard is not None:
                discard(key)
        for callback in self.on_disconnect:
            try:
                callback(peer_id, route.peer)
            except Exception:
                log.exception("disconnect callback failed for %s", peer_id)

    def route(self, sender: str, data: bytes) -> None:
        """Forward one frame from ``sender`` (an absolute id); a bad frame is dropped and logged."""
        try:
            main, start = read_main(data)
        except FrameError as exc:
            log.warning("dropped a frame from %s: %s", sender, exc)
            return
        target = self.absolute(main["to"])
        main["to"] = target
        main["from"] = sender
        main["user"] = USER
        method = main.get("method")
        session = main.get("session")
        route = self.routes.get(target)
        if route is None:
            if isinstance(session, str):
                self._reject(sender, target, session, f"{main['to'].split('/')[-1]} is not connected")
            else:
                log.debug("no route to %s for %s", target, method)
            for callback in self.on_undelivered:
                try:
                    callback(target, data)
                except Exception:
                    log.exception("undelivered-frame callback failed for %s", target)
            return
        if main["type"] == "method" and isinstance(method, str):
            if self._refused(sender, method):
                if isinstance(session, str):
                    self._reject(sender, target, session, APP_API_REFUSED)
                log.warning("refused %s from %s: %s", method, sender, APP_API_REFUSED)
                return
            if isinstance(session, str):
                route.owed[session] = sender
            else:
                self._settle(sender, target, method)
            if method.endswith((APPEND, PROCESS)):
                try:
                    if self._track_chunks(sender, target, method, data[start:]):
                        return
                except Exception as exc:  # bookkeeping only: never stops a frame
                    log.debug("could not read a chunk header from %s: %s", sender, exc)
        route.peer.send(msgpack.packb(main) + data[start:])

    def _refused(self, sender: str, method: str) -> bool:
        return method.startswith(APP_API) and sender.split("/")[-1] != MANAGER_ID

    def _settle(self, sender: str, target: str, method: str) -> None:
        """A ``<session>.resolve`` / ``.reject`` call pays a debt ``sender`` owed ``target``."""
        session, _, verb = method.rpartition(".")
        if verb in ("resolve", "reject"):
            route = self.routes.get(sender)
            if route is not None and route.owed.get(session) == target:
                del route.owed[session]

    def _track_chunks(self, sender: str, target: str, method: str, payload: bytes) -> bool:
        """A call sent in chunks hides its session in the first chunk: record it as owed by ``target``.

        Returns True when the frame must be dropped (a chunked call the router refuses)."""
        sender_route = self.routes.get(sender)
        if sender_route is None or not payload:
            return False
        args = msgpack.unpackb(payload, strict_map_key=False).get("args") or []
        key = args[0] if args and isinstance(args[0], str) else None
        if key is None:
            return False
        if (target, key) in sender_route.refused:
            if method.endswith(PROCESS):
                sender_route.refused.discard((target, key))
            return True
        if method.endswith(PROCESS):
            sender_route.chunking.discard((target, key))
            return False
        if (target, key) in sender_route.chunking or len(args) < 2 or not isinstance(args[1], bytes):
            return False
        sender_route.chunking.add((target, key))
        try:
            inner, _ = read_main(args[1])
        except FrameError:
            return False
        inner_session, inner_method = inner.get("session"), inner.get("method")
        if isinstance(inner_method, str) and self._refused(sender, inner_method):
            sender_route.chunking.discard((target, key))
            sender_route.refused.add((target, key))
            if isinstance(inner_session, str):
                self._reject(sender, target, inner_session, APP_API_REFUSED)
            log.warning("refused a chunked %s from %s", inner_method, sender)
            return True
        if isinstance(inner_session, str) and target in self.routes:
            self.routes[target].owed[inner_session] = sender
        elif isinstance(inner_method, str):  # a large result: the chunked message is a resolve
            self._settle(sender, target, inner_method)
        return False

    def _reject(self, caller: str, callee: str, session: str, message: str) -> None:
        route = self.routes.get(caller)
        if route is None:
            return
        main = {"type": "method", "from": callee, "to": caller, "method": f"{session}.reject", "user": USER}
        extra = {"args": [remote_error(message)]}
        try:
            route.peer.send(msgpack.packb(main) + msgpack.packb(extra))
        except Exception:
            log.exception("could not tell %s that %s is gone", caller, callee)
