"""The ImJoy ``api`` of a plugin inside its kernel, and the tagging of op calls with whom they are for.

Plugin code reaches this object as ``scopeflow.api`` or ``from imjoy import api`` (see
:mod:`scopeflow.plugins.bootstrap`); every attribute other than ``export`` is a function of the hub's
workspace manager. Each op call runs with a tag saying whom it is for (``CALL_KEYWORD`` in
:mod:`scopeflow.sdk`), and UI calls made while it runs carry the tag back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from scopeflow.rpc.client import public_methods
from scopeflow.sdk import CALL_KEYWORD, UI_CALLS

__all__ = ["PluginApi", "tagged"]

F = TypeVar("F", bound=Callable[..., Any])
_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar("scopeflow_call", default=None)
_TAGGED = frozenset(UI_CALLS) | {"log"}


def _tag(kwargs: dict[str, Any]) -> str | None:
    tag = kwargs.pop(CALL_KEYWORD, None)
    context = kwargs.pop("context", None)  # imjoy-rpc's, as op services require it (kernel.py)
    if isinstance(tag, str):
        return tag
    caller = context.get("from") if isinstance(context, dict) else None
    return f"client:{caller}" if isinstance(caller, str) else None


def tagged(function: F) -> F:
    """``function`` taking imjoy-rpc's context and the hub's tag (see ``CALL_KEYWORD``), running with the
    call's tag set."""
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            token = _CALL.set(_tag(kwargs))
            try:
                return await function(*args, **kwargs)
            finally:
                _CALL.reset(token)

        return call_async  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:  # sync ops run in worker threads: the var is per thread
        token = _CALL.set(_tag(kwargs))
        try:
            return function(*args, **kwargs)
        finally:
            _CALL.reset(token)

    return call  # type: ignore[return-value]


class PluginApi:
    """The ImJoy ``api`` of one plugin: ``export`` plus every function of the hub's workspace manager.

    Manager functions return awaitables when called on the kernel's event loop, and
    ``concurrent.futures.Future`` objects when called from a worker thread (sync ops run in threads).
    """

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop, defer_notify: bool = False) -> None:
        self._server = server
        self._loop = loop
        self._defer_notify = defer_notify
        self._pending: list[asyncio.Future[Any]] = []
        self.exported: Any = None

    def export(self, obj: Any, config: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        """Export ``obj``'s public methods as this plugin's ``default`` service."""
        self.exported = obj
        service = public_methods(obj)
        service.update({"id": "default", "name": self._server.config.get("client_id", "plugin")})
        service["config"] = dict(config or {})
        service["type"] = "imjoy-plugin"
        future = asyncio.ensure_future(
            self._server.rpc.register_service(service, overwrite=True, notify=not self._defer_notify),
            loop=self._loop,
        )
        self._pending.append(future)
        return future

    async def settle(self) -> None:
        """Wait for exports made while the plugin module ran."""
        while self._pending:
            await self._pending.pop(0)

    async def announce(self) -> None:
        """Tell the hub about this plugin's services (after ``setup`` has run)."""
        self._defer_notify = False
        await self._server.rpc._notify_service_update()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        function = self._server.get(name)
        if function is None:
            function = self._server.get(_snake(name)) or self._server.get(_camel(name))
        if not callable(function):
            raise AttributeError(f"the hub offers no api.{name}")
        if name in _TAGGED and (tag := _CALL.get()) is not None:
            function = functools.partial(function, call=tag)
        return self._threadsafe(function)

    def _threadsafe(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if _on_loop(self._loop):
                return function(*args, **kwargs)

            async def run() -> Any:
                return await function(*args, **kwargs)

            return asyncio.run_coroutine_threadsafe(run(), self._loop)

        return call


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return threading.current_thread() is threading.main_thread() and not loop.is_running()


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


