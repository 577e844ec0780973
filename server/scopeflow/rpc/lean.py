"""imjoy-rpc's ``RPC`` with the fixes every scopeflow party needs.

The hub's workspace manager, plugin kernels and Python clients all run imjoy-rpc 0.5.59's ``RPC`` class
unchanged in protocol. What changes:

- Linear reassembly of large messages: the library reassembles chunked messages with ``bytes += chunk``,
  which is quadratic in the message size. Here the cache keeps a ``bytearray`` instead.
- Cheaper calls: a callee's first heartbeat waits one interval (two frames fewer per call to an async or
  threaded method), ids are random hex instead of ``shortuuid``, timer signatures are computed once.
- A result the callee cannot encode rejects the call at once (the library leaves the caller waiting).
- Out-of-band arrays (:mod:`scopeflow.transfer.codec`), once :meth:`LeanRPC.install_transfer` is called. A
  peer that reads array handles says so: every frame it sends carries ``"array_refs": 1`` in its main
  part (unknown keys are ignored by every imjoy-rpc), and the services it registers carry it in their
  ``config``. Large arrays go out as handles only to peers known that way; every other peer (e.g. an
  unmodified imjoy-rpc client) gets imjoy-rpc's own ``ndarray`` encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import secrets
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
from imjoy_rpc.hypha import rpc as _library
from imjoy_rpc.hypha.rpc import RPC

from scopeflow.rpc.direct import provider_of
from scopeflow.transfer.codec import INLINE_MAX, RTYPE, Transfer, find_handles, inline

__all__ = ["MARK", "RPC", "LeanRPC", "remote_error"]

MARK = "array_refs"
_STAMP = msgpack.packb(MARK) + msgpack.packb(1)
_LAZY = "_scopeflow_lazy"  # marks a heartbeat whose first beat is skipped
_FALLBACK = "_scopeflow_reject"  # a resolve callback's reject, for results that cannot be encoded
_TARGET: contextvars.ContextVar[str | None] = contextvars.ContextVar("scopeflow_call_target", default=None)


# the ids made while a ``_forgetful`` call runs (the first is its session's)
_NEW_IDS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("scopeflow_new_ids", default=None)


class _Ids:
    """Session and callback ids for imjoy-rpc: 88 random bits as hex (``shortuuid``'s base-57 encoding of
    a uuid4 costs ~20 µs, and every call takes three)."""

    @staticmethod
    def uuid() -> str:
        made = secrets.token_hex(11)
        seen = _NEW_IDS.get()
        if seen is not None:
            seen.append(made)
        return made


_signature = _library.callable_sig
_method_signatures: dict[tuple[Any, bool], Any] = {}


def _callable_sig(function: Any, skip_context: bool = False) -> Any:
    """imjoy-rpc's ``callable_sig``, remembered for bound methods (every call with a timeout encodes its
    timer's ``reset``; ``inspect.signature`` costs ~70 µs). Other callables are often made per call."""
    underlying = getattr(function, "__func__", None)
    if underlying is None:
        return _signature(function, skip_context)
    key = (underlying, skip_context)
    if key not in _method_signatures:
        _method_signatures[key] = _signature(function, skip_context)
    return _method_signatures[key]


class _Timer:
    """imjoy-rpc's ``Timer`` (a call's timeout watchdog, reset by each heartbeat) on a loop timer handle.

    The library's starts a task that sleeps for the whole timeout, and cancels it when the answer comes: a
    task made and cancelled for every call with an answer. Same interface (``start``, ``reset``, ``clear``,
    ``started``); ``tests/rpc/test_lean.py`` fails if the library's ``Timer`` changes."""

    def __init__(
        self, timeout: float, callback: Any, *args: Any, label: str = "timer", **kwargs: Any
    ) -> None:
        self._timeout, self._callback, self._args, self._kwargs = timeout, callback, args, kwargs
        self._label = label
        self._handle: asyncio.TimerHandle | None = None
        self.started = False

    def start(self) -> None:
        if self.started:
            self.reset()
            return
        self._handle = asyncio.get_event_loop().call_later(self._timeout, self._fire)
        self.started = True

    def _fire(self) -> None:
        self._handle, self.started = None, False
        done = self._callback(*self._args, **self._kwargs)
        if inspect.isawaitable(done):
            self._running = asyncio.ensure_future(done)  # kept until it ends

    def clear(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self.started = None, False

    def reset(self) -> None:
        self.clear()
        self.start()


_UPSTREAM_TIMER = _library.Timer

# the same protocol, cheaper: every RPC of the process (hub, kernels, clients) uses these
_library.shortuuid = _Ids
_library.callable_sig = _callable_sig
_library.Timer = _Timer


class LeanRPC(RPC):
    """``RPC`` with linear-time reassembly of chunked messages, and out-of-band arrays once installed."""

    transfer: Transfer | None = None
    quick: Any = None  # quick calls over direct links (scopeflow.rpc.quick), once set up
    direct_url: str | None = None  # a kernel's direct-link address, named in its services (rpc.direct)

    def install_transfer(self, transfer: Transfer) -> None:
        """Send large arrays as handles to peers that read them, and read handles from anyone."""
        self.transfer = transfer
        self.array_peers: set[str] = set()
        self._inbox: asyncio.Future[None] | None = None  # the last message waiting for its downloads
        self._outbox = asyncio.Lock()  # frames leave in order, after the uploads they refer to
        self._send: Any = self._emit_message  # type: ignore[has-type]
        self._emit_message = self._emit_stamped
        self.register_codec(
            {"name": RTYPE, "type": np.ndarray, "encoder": self._encode_array, "decoder": transfer.decode}
        )
        for service in self._services.values():
            if service["id"] != "built-in":
                service["config"][MARK] = 1

    def open_sessions(self) -> int:
        """Calls in progress in this party (each holds a session store until its answer or its end)."""
        return sum(1 for key in self._object_store if key not in ("services", "message_cache"))

    def learn_service(self, service: Any) -> None:
        """A service obtained from the manager: if it reads array handles, so does its client."""
        if self.transfer is None or not isinstance(service, dict):
            return
        if not (service.get("config") or {}).get(MARK):
            return
        target = provider_of(service)
        if target:
            self.array_peers.add(self._absolute(target))

    def _absolute(self, client_id: str) -> str:
        workspace = self._local_workspace
        return client_id if "/" in client_id or not workspace else f"{workspace}/{client_id}"

    def _encode_array(self, array: np.ndarray) -> dict[str, Any]:
        target = _TARGET.get()
        if (
            self.transfer is None
            or array.nbytes <= INLINE_MAX
            or target is None
            or self._absolute(target) not in self.array_peers
        ):
            return inline(array)
        return self.transfer.encode(array)

    def add_service(self, api: Any, overwrite: bool = False) -> Any:
        service = super().add_service(api, overwrite=overwrite)
        if self.transfer is not None and service["id"] != "built-in":
            service["config"][MARK] = 1
        if self.direct_url and service["id"] != "built-in":
            service["config"]["direct"] = self.direct_url
        return service

    def _generate_remote_method(
        self,
        encoded_method: dict[str, Any],
        remote_parent: Any = None,
        local_parent: Any = None,
        remote_workspace: Any = None,
        local_workspace: Any = None,
    ) -> Any:
        lazy = encoded_method.pop(_LAZY, False)
        fallback = encoded_method.pop(_FALLBACK, None)
        where = (remote_parent, local_parent, remote_workspace, local_workspace)
        method = super()._generate_remote_method(encoded_method, *where)
        if not encoded_method.get("_rpromise", False):  # a resolve, reject or heartbeat callback
            method = _forgetful(method, self, local_parent)
        if lazy:
            return _skip_first_call(method)
        if self.transfer is not None:
            method = _targeted(method, encoded_method["_rtarget"])  # absolute by now
        if isinstance(fallback, dict):
            method = _or_reject(method, super()._generate_remote_method(fallback, *where))
        if self.quick is not None and encoded_method.get("_rpromise", False):
            method = self.quick.wrap(method, encoded_method["_rtarget"], encoded_method["_rmethod"])
        return method

    def _handle_method(self, data: dict[str, Any]) -> None:
        promise = data.get("promise")
        if isinstance(promise, dict):
            if isinstance(promise.get("heartbeat"), dict):
                promise["heartbeat"][_LAZY] = True
            if isinstance(promise.get("resolve"), dict) and isinstance(promise.get("reject"), dict):
                promise["resolve"][_FALLBACK] = dict(promise["reject"])
        transfer = self.transfer
        if transfer is not None:
            if data.get(MARK) and isinstance(data.get("from"), str):
                self.array_peers.add(data["from"])
            if transfer.mode == "http":
                handles = list(find_handles(data.get("args")))
                if handles or self._inbox is not None:
                    self._inbox = asyncio.ensure_future(self._handle_later(data, handles, self._inbox))
                    return
        super()._handle_method(data)

    async def _handle_later(
        self, data: dict[str, Any], handles: list[dict[str, Any]], before: asyncio.Future[None] | None
    ) -> None:
        """Download a message's arrays, then handle it, after the messages that came before it."""
        assert self.transfer is not None
        download = asyncio.ensure_future(self.transfer.prefetch(handles))
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        await download
        try:
            super()._handle_method(data)
        finally:
            if self._inbox is asyncio.current_task():
                self._inbox = None

    async def _emit_stamped(self, data: bytes) -> None:
        if data and 0x80 <= data[0] < 0x8F:  # a msgpack fixmap: one more key, inserted first
            data = bytes((data[0] + 1,)) + _STAMP + data[1:]
        assert self.transfer is not None
        if self.transfer.pending or self._outbox.locked():
            async with self._outbox:
                await self.transfer.flush()
                await self._send(data)
        else:
            await self._send(data)

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


def _forgetful(method: Any, rpc: LeanRPC, local_parent: str | None) -> Any:
    """A callback call (``resolve``, ``reject``, a heartbeat) that leaves no session behind.

    imjoy-rpc opens a session store for every remote call, and removes it when the answer comes; a
    callback call has no answer, so its store stayed forever: ~200 bytes for every call a party ever
    answered (the hub's manager answers every UI call). The store is dropped once the message is made,
    unless the callback's arguments put something in it that the other side may call later."""

    def call(*args: Any, **kwargs: Any) -> Any:
        made: list[str] = []
        token = _NEW_IDS.set(made)
        try:
            sent = method(*args, **kwargs)  # the session store is made and filled synchronously here
        finally:
            _NEW_IDS.reset(token)
        if made:
            session = f"{local_parent}.{made[0]}" if local_parent else made[0]
            *parents, leaf = session.split(".")
            store: Any = rpc._object_store
            for level in parents:
                store = store.get(level) if isinstance(store, dict) else None
            if (
                isinstance(store, dict)
                and isinstance(store.get(leaf), dict)
                and set(store[leaf]) <= {"target_id"}
            ):
                del store[leaf]
        return sent

    return functools.update_wrapper(call, method)


@contextlib.contextmanager
def target_of_encoding(target: str) -> Iterator[None]:
    """Arguments encoded within are for ``target`` (large arrays as handles, if it reads them)."""
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def _targeted(method: Any, target: str) -> Any:
    """``method``, with its arguments encoded knowing whom they go to (large arrays: as handles?)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        token = _TARGET.set(target)  # the arguments are encoded synchronously, inside this call
        try:
            return method(*args, **kwargs)
        finally:
            _TARGET.reset(token)

    return functools.update_wrapper(call, method)


def _or_reject(resolve: Any, reject: Any) -> Any:
    """A call's ``resolve`` that, when the result cannot be encoded, rejects the call instead.

    imjoy-rpc would drop the encoding error and leave the caller waiting until its timeout."""

    def call(*args: Any, **kwargs: Any) -> Any:
        sent = resolve(*args, **kwargs)
        if isinstance(sent, asyncio.Future) and sent.done() and not sent.cancelled():
            error = sent.exception()
            if error is not None:
                return reject(Exception(f"the result could not be sent: {error}"))
        return sent

    return functools.update_wrapper(call, resolve)


def _skip_first_call(heartbeat: Any) -> Any:
    """A call's heartbeat that beats first after one interval, not at once.

    imjoy-rpc's callee calls the caller's heartbeat as soon as a call with a timeout starts, then every
    ``interval`` (half the caller's timeout): two extra frames on every call to an async or threaded
    method, although a call that ends within one interval never needs them.
    """
    calls = 0

    def beat(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return asyncio.sleep(0)
        return heartbeat(*args, **kwargs)

    return functools.update_wrapper(beat, heartbeat)


def remote_error(message: str, trace: str = "") -> dict[str, str]:
    """The imjoy-rpc encoding of an exception, as a peer receives it."""
    return {"_rtype": "error", "_rvalue": message, "_rtrace": trace}
