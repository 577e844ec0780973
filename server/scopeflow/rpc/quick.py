"""Quick calls: a call to a service function over a direct link (:mod:`scopeflow.rpc.direct`), as two small
frames instead of imjoy-rpc's promise machinery.

An imjoy-rpc call opens a session on both sides, encodes a resolve, a reject and a heartbeat callback, starts
a timer, and answers with a remote call of ``resolve``: most of a tiny call's time. Between two scopeflow
parties joined by a link none of that is needed: the link itself says when the callee goes away. So a call
whose arguments hold no function (values and arrays; remote objects are fine) goes out as

    [0, call id, method path, args, kwargs, flags]  and comes back as  [1, call id, ok, value or error]

(msgpack arrays, where imjoy-rpc frames are maps). Values are encoded and decoded by the parties' own
imjoy-rpc (``_encode``/``_decode``: arrays as handles or inline, remote objects, errors), so a result that
holds functions still works: they stay callable over imjoy-rpc. The callee checks the method path (a
service's function, not the library's internals) and passes imjoy-rpc's context with the caller's id, as
the router would. A call with a function among its arguments, a call made off the event loop's thread, and
every call where no link is open take imjoy-rpc's path unchanged.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import secrets
import traceback
from collections.abc import Callable
from typing import Any

import msgpack
from imjoy_rpc.hypha.rpc import index_object
from imjoy_rpc.hypha.utils import format_traceback
from websockets.protocol import State

from scopeflow.rpc.frames import USER
from scopeflow.rpc.lean import LeanRPC, target_of_encoding
from scopeflow.transfer.codec import find_handles

log = logging.getLogger("scopeflow.rpc.quick")

CALL, ANSWER = 0, 1
BUFFERED = 1 << 20  # bytes waiting in a link's socket buffer past which a frame waits for it to drain
READS_HANDLES = 1  # a flag of a call: the caller reads array handles, so its answer may hold them
SERVICES, INTERNAL = "services.", "services.built-in."


def _holds_function(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return True  # deeper than a call's arguments go: let imjoy-rpc say what it makes of it
    if isinstance(value, dict):
        return any(_holds_function(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_function(v, depth + 1) for v in value)
    return callable(value) and not hasattr(value, "__rpc_object__")


async def _send(link: Any, frame: bytes) -> None:
    """``link.send(frame)``, written at once when the link is open and its buffer nearly empty: websockets'
    ``send`` coroutine (a context manager, a drain) costs about as much as the rest of a quick call."""
    if _writable(link):
        link.protocol.send_binary(frame)
        link.send_data()
        return
    await link.send(frame)


def _writable(link: Any) -> bool:
    """The link is open and its socket buffer nearly empty: a frame may be written at once."""
    return bool(link.protocol.state is State.OPEN and link.transport.get_write_buffer_size() < BUFFERED)


class _Rest:
    """The rest of a coroutine started by hand (:func:`run_eagerly`) that suspended on ``pending``: awaited
    by a task, it parks the task on the same future and resumes the coroutine when it is done."""

    def __init__(self, coro: Any, pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Any:
        pending = self.pending
        while True:
            try:
                yield pending
            except BaseException as exc:  # thrown into the task (a cancellation): into the coroutine
                step = functools.partial(self.coro.throw, exc)
            else:
                step = functools.partial(self.coro.send, None)
            try:
                pending = step()
            except StopIteration as done:
                return done.value


async def _rest(coro: Any, pending: Any) -> Any:
    return await _Rest(coro, pending)


def run_eagerly(coro: Any) -> tuple[bool, Any]:
    """Run ``coro`` until it first waits (as Python 3.12's eager tasks do): ``(True, value)`` if it finished
    (or raised) without waiting, else ``(False, task)`` with a task finishing it, in the same context."""
    context = contextvars.copy_context()
    try:
        pending = context.run(coro.send, None)
    except StopIteration as done:
        return True, done.value
    return False, asyncio.get_running_loop().create_task(_rest(coro, pending), context=context)


class QuickCalls:
    """Both sides of quick calls for one party: its RPC and its links."""

    def __init__(self, rpc: LeanRPC, links: Any) -> None:
        self.rpc = rpc
        self.links = links
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        rpc.quick = self
        links.quick = self

    # -- the caller's side --------------------------------------------------------------------------------
    def wrap(self, method: Callable[..., Any], target: str, path: str) -> Callable[..., Any]:
        """A remote service function that takes a link to ``target`` when one is open."""
        if not path.startswith(SERVICES) or path.startswith(INTERNAL):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            where = target if "/" in target else f"{self.links.workspace}/{target}"
            link = self.links.peers.get(where)
            if link is None or _holds_function(args) or _holds_function(kwargs):
                return method(*args, **kwargs)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called from a thread: imjoy-rpc's path
                return method(*args, **kwargs)
            if loop is not self.rpc.loop:
                return method(*args, **kwargs)
            return self._call_now(link, where, path, args, kwargs)

        return functools.update_wrapper(call, method)  # its __rpc_object__ too: passed on, it is a reference

    def _call_now(self, link: Any, target: str, path: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        """The call's frame written at once and the future of its answer, when nothing needs waiting for (no
        upload, the link ready to write); else a task that waits first. An encoding error is a failed
        future, as imjoy-rpc's own calls fail."""
        call_id = next(self._ids)
        future = self.rpc.loop.create_future()
        try:
            frame = self._frame(call_id, target, path, args, kwargs)
        except Exception as exc:
            future.set_exception(exc)
            return future
        transfer = self.rpc.transfer
        if not _writable(link) or (transfer is not None and transfer.pending):
            return asyncio.ensure_future(self._call(link, target, call_id, frame, future))
        self._waiting[call_id] = (target, future)
        future.add_done_callback(lambda _: self._waiting.pop(call_id, None))
        link.protocol.send_binary(frame)
        link.send_data()
        return future

    def _frame(self, call_id: int, target: str, path: str, args: tuple[Any, ...], kwargs: Any) -> bytes:
        flags = READS_HANDLES if self.rpc.transfer is not None else 0
        with target_of_encoding(target):
            encoded = [self.rpc._encode(list(args)), self.rpc._encode(kwargs)]
        return bytes(msgpack.packb([CALL, call_id, path, *encoded, flags]))

    async def _call(self, link: Any, target: str, call_id: int, frame: bytes, future: Any) -> Any:
        self._waiting[call_id] = (target, future)
        try:
            await self._flush_arrays()
            await _send(link, frame)
            return await future
        finally:
            self._waiting.pop(call_id, None)

    def lost(self, target: str) -> None:
        """``target``'s link closed: the quick calls waiting for it fail now."""
        short = target.split("/", 1)[-1]
        for waiting_for, future in list(self._waiting.values()):
            if waiting_for == target and not future.done():
                error = RuntimeError(f"{short} disconnected before answering (its direct link closed)")
                future.set_exception(error)

    # -- both: a frame over a link --------------------------------------------------------------------------
    def received(self, sender: str, me: str, message: bytes) -> None:
        frame = msgpack.unpackb(message, strict_map_key=False)
        if not isinstance(frame, list) or len(frame) < 4 or not isinstance(frame[1], int):
            log.warning("dropped a malformed quick frame from %s", sender)
            return
        if frame[0] == ANSWER:
            if not self._needs_fetch(frame[3]):
                self._settle(sender, frame)  # at once: most answers hold no array to download first
                return
            task = asyncio.ensure_future(self._answered(sender, frame))
        elif frame[0] == CALL and len(frame) == 6:
            self._serve_now(sender, me, frame)
            return
        else:
            log.warning("dropped a quick frame of unknown kind from %s", sender)
            return
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _answered(self, sender: str, frame: list[Any]) -> None:
        try:
            await self._fetch_arrays(frame[3])
        except Exception as exc:
            frame = [
                ANSWER,
                frame[1],
                False,
                self.rpc._encode(Exception(f"the answer could not be read: {exc}")),
            ]
        self._settle(sender, frame)

    def _settle(self, sender: str, frame: list[Any]) -> None:
        _, call_id, ok, value = frame[:4]
        waiting = self._waiting.get(call_id)
        if waiting is None or waiting[0] != sender or waiting[1].done():
            return
        future = waiting[1]
        try:
            decoded = self.rpc._decode(value, remote_workspace=sender.split("/", 1)[0])
        except Exception as exc:
            decoded, ok = Exception(f"the answer could not be read: {exc}"), False
        if ok:
            future.set_result(decoded)
        else:
            future.set_exception(decoded if isinstance(decoded, BaseException) else Exception(str(decoded)))

    # -- the callee's side ----------------------------------------------------------------------------------
    def _serve_now(self, sender: str, me: str, frame: list[Any]) -> None:
        """Serve a call without a task of its own when nothing in it waits (a quick sync op, no download
        first, nothing to upload, the link ready to write); else hand the rest to a task."""
        _, call_id, path, args, kwargs, flags = frame
        if isinstance(flags, int) and flags & READS_HANDLES and self.rpc.transfer is not None:
            self.rpc.array_peers.add(sender)
        if self._needs_fetch([args, kwargs]):
            self._later(self._serve(sender, me, call_id, path, args, kwargs))
            return
        try:
            result = self._invoke(sender, me, path, args, kwargs)
        except Exception:
            self._answer_now(sender, self._failure(call_id))
            return
        if asyncio.iscoroutine(result):  # most async ops finish without waiting: no task for those
            try:
                finished, result = run_eagerly(result)
            except Exception:
                self._answer_now(sender, self._failure(call_id))
                return
            if not finished:
                self._later(self._finish(sender, call_id, result))
                return
        if asyncio.isfuture(result) or asyncio.iscoroutine(result):
            self._later(self._finish(sender, call_id, result))
        else:
            self._answer_now(sender, self._success(call_id, result, sender))

    async def _serve(self, sender: str, me: str, call_id: int, path: Any, args: Any, kwargs: Any) -> None:
        try:
            await self._fetch_arrays([args, kwargs])
            result = self._invoke(sender, me, path, args, kwargs)
        except Exception:
            await self._answer(sender, self._failure(call_id))
            return
        await self._finish(sender, call_id, result)

    async def _finish(self, sender: str, call_id: int, result: Any) -> None:
        try:
            while asyncio.isfuture(result) or asyncio.iscoroutine(result):
                result = await result
        except Exception:
            await self._answer(sender, self._failure(call_id))
            return
        await self._answer(sender, self._success(call_id, result, sender))

    def _invoke(self, sender: str, me: str, path: Any, args: Any, kwargs: Any) -> Any:
        """Look the method up, decode the arguments and call it; its value or awaitable."""
        if not isinstance(path, str) or not path.startswith(SERVICES) or path.startswith(INTERNAL):
            raise PermissionError(f"not a service function: {path!r}")
        method = index_object(self.rpc._object_store, path)
        if not callable(method):
            raise TypeError(f"not a function: {path}")
        workspace = sender.split("/", 1)[0]
        args = self.rpc._decode(args or [], remote_workspace=workspace)
        kwargs = dict(self.rpc._decode(kwargs or {}, remote_workspace=workspace))
        annotation = self.rpc._method_annotations.get(method) or {}
        if annotation.get("require_context"):
            kwargs["context"] = {
                "type": "method", "from": sender, "to": me, "method": path, "user": USER,
                **self.rpc.default_context,
            }  # fmt: skip
        return method(*args, **kwargs)

    def _success(self, call_id: int, result: Any, caller: str) -> list[Any]:
        try:
            return [ANSWER, call_id, True, self._encode_result(result, caller)]
        except Exception as exc:  # as the imjoy-rpc path says it (lean._or_reject)
            error = Exception(f"the result could not be sent: {exc}")
            return [ANSWER, call_id, False, self.rpc._encode(error)]

    def _failure(self, call_id: int) -> list[Any]:
        """The exception being handled, answered as imjoy-rpc answers a failed call: with its traceback."""
        error = Exception(format_traceback(traceback.format_exc()))
        return [ANSWER, call_id, False, self.rpc._encode(error)]

    def _pack(self, sender: str, answer: list[Any]) -> tuple[Any, bytes] | None:
        """The link and the packed answer; None (its arrays dropped) when the caller is gone."""
        try:
            packed = msgpack.packb(answer)
        except Exception as exc:
            self._discard_arrays(answer)
            error = self.rpc._encode(Exception(f"the result could not be sent: {exc}"))
            answer = [ANSWER, answer[1], False, error]
            packed = msgpack.packb(answer)
        link = self.links.peers.get(sender)
        if link is None:  # the caller went away meanwhile: nobody will read the answer's arrays
            log.info("the caller %s left before its answer", sender)
            self._discard_arrays(answer)
            return None
        return link, packed

    def _answer_now(self, sender: str, answer: list[Any]) -> None:
        transfer = self.rpc.transfer
        packed = self._pack(sender, answer)
        if packed is None:
            return
        link, frame = packed
        if _writable(link) and not (transfer is not None and transfer.pending):
            link.protocol.send_binary(frame)
            link.send_data()
        else:
            self._later(self._send_answer(link, frame, answer))

    async def _answer(self, sender: str, answer: list[Any]) -> None:
        packed = self._pack(sender, answer)
        if packed is not None:
            await self._send_answer(*packed, answer)

    async def _send_answer(self, link: Any, frame: bytes, answer: list[Any]) -> None:
        await self._flush_arrays()
        try:
            await _send(link, frame)
        except Exception:
            log.info("could not answer over a link that closed")
            self._discard_arrays(answer)

    def _later(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    def _encode_result(self, result: Any, caller: str) -> Any:
        """``result`` encoded for ``caller``; functions in it stay callable in a session the caller owns."""
        session = secrets.token_hex(11)
        with target_of_encoding(caller):
            encoded = self.rpc._encode(result, session_id=session)
        store = self.rpc._object_store.get(session)
        if isinstance(store, dict):
            if set(store) - {"target_id"}:
                store["target_id"] = caller
            else:
                del self.rpc._object_store[session]
        return encoded

    # -- arrays out of band ---------------------------------------------------------------------------------
    async def _flush_arrays(self) -> None:
        transfer = self.rpc.transfer
        if transfer is not None and transfer.pending:
            await transfer.flush()

    def _discard_arrays(self, answer: Any) -> None:
        if self.rpc.transfer is not None:
            self.rpc.transfer.discard(list(find_handles(answer)))

    def _needs_fetch(self, value: Any) -> bool:
        transfer = self.rpc.transfer
        return transfer is not None and transfer.mode == "http" and any(True for _ in find_handles(value))

    async def _fetch_arrays(self, value: Any) -> None:
        transfer = self.rpc.transfer
        if transfer is not None and transfer.mode == "http":
            handles = list(find_handles(value))
            if handles:
                await transfer.prefetch(handles)
