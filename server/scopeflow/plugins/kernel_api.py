"""The ImJoy ``api`` of a plugin inside its kernel, and the tagging of op calls with whom they are for.

Plugin code reaches this object as ``scopeflow.api``, ``from imjoy import api`` or the global ``api`` (see
:mod:`scopeflow.plugins.bootstrap`). Besides what ImJoy's Python api offers in the kernel itself
(``export``, ``registerService``, ``getAttachment``, ``TAG``, ``utils``, ``exit``, ...), every attribute is
a function of the hub's workspace manager; UI calls turn a Python plugin's keyword arguments into what
ImJoy's JavaScript api takes (:func:`imjoy_arguments`). Each op call runs with a tag saying whom it is for
(``CALL_KEYWORD`` in :mod:`scopeflow.sdk`), and UI calls made while it runs carry the tag back. The
methods an ImJoy plugin exports run like ImJoy ran them, with two differences that keep a plugin
responsive: sync methods run in the plugin's own worker thread (one call at a time), so the UI calls they
make leave at once; and ``run`` is given a ``ctx`` whose ``config`` starts from the ``ui`` form's defaults.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import os
import re
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from imjoy_rpc.hypha.utils import dotdict

from scopeflow.plugins.imjoy_config import ui_fields
from scopeflow.rpc.client import public_methods
from scopeflow.sdk import CALL_KEYWORD, UI_CALLS

__all__ = ["PluginApi", "imjoy_arguments", "imjoy_context", "imjoy_utils", "tagged"]

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


# ImJoy's api functions whose JavaScript form takes positional values, with the names a Python plugin may
# give them as keywords (``api.showMessage(msg="hi")``); the other UI calls take one config object, which a
# Python plugin's keyword arguments become (``api.showDialog(src=..., fullscreen=True)``).
_POSITIONAL: dict[str, tuple[tuple[str, ...], ...]] = {
    "showMessage": (("message", "msg", "text", "info", "content"), ("duration",)),
    "showSnackbar": (("message", "msg", "text", "info", "content"), ("duration",)),
    "showStatus": (("status", "message", "msg", "text"),),
    "showProgress": (("progress", "p", "value", "percent"),),
    "alert": (("message", "msg", "text", "content"),),
    "confirm": (("message", "msg", "text", "content"),),
    "prompt": (("message", "msg", "text", "content"), ("default", "placeholder", "value")),
    "log": (("message", "msg", "text", "info"),),
    "error": (("message", "msg", "text", "error"),),
}
_OBJECT_CALLS = frozenset(UI_CALLS) - set(_POSITIONAL)


def imjoy_arguments(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The positional arguments the JavaScript api takes for a Python call ``api.<name>(*args, **kwargs)``."""
    if not kwargs:
        return args
    slots = _POSITIONAL.get(name)
    if slots is not None:
        found = list(args)
        for aliases in slots[len(args) :]:
            given = [alias for alias in aliases if alias in kwargs]
            if len(given) > 1:
                raise TypeError(f"api.{name}: {' and '.join(given)} give the same argument")
            found.append(kwargs.pop(given[0]) if given else None)
        if not kwargs:
            while len(found) > len(args) and found[-1] is None:
                found.pop()
            return tuple(found)
        if args:
            raise TypeError(f"api.{name}() got unexpected keyword arguments: {', '.join(kwargs)}")
    if args and isinstance(args[0], dict):  # ImJoy: keywords join the config object
        return ({**args[0], **kwargs}, *args[1:])
    return (*args, dict(kwargs)) if args else (dict(kwargs),)


class PluginApi:
    """The ImJoy ``api`` of one plugin: ``export`` plus every function of the hub's workspace manager.

    Manager functions return awaitables when called on the kernel's event loop, and
    ``concurrent.futures.Future`` objects when called from a worker thread (sync ops run in threads).
    ``TAG`` is the ImJoy tag chosen, ``utils`` ImJoy's Python helpers, ``getAttachment(name)`` the content
    of an ``<attachment>`` block; ``register``/``registerService`` announce services other clients reach as
    ``<plugin id>:<service id>``.
    """

    def __init__(
        self,
        server: Any,
        loop: asyncio.AbstractEventLoop,
        defer_notify: bool = False,
        *,
        tag: str = "",
        attachments: dict[str, str] | None = None,
        ui_defaults: dict[str, Any] | None = None,
    ) -> None:
        self._server = server
        self._loop = loop
        self._defer_notify = defer_notify
        self._pending: list[asyncio.Future[Any]] = []
        self._attachments = dict(attachments or {})
        self._ui_defaults = dict(ui_defaults or {})
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="imjoy-plugin")  # sync methods, in order
        self._exited = False
        self.exported: Any = None
        self.TAG = tag
        self.WORKSPACE = str(server.config.get("workspace") or "")
        self.WORK_DIR = os.getcwd()
        self.utils = imjoy_utils()

    # -- exporting ---------------------------------------------------------------------------------------
    def export(self, obj: Any, config: dict[str, Any] | None = None) -> asyncio.Future[Any]:
        """Export ``obj``'s public methods as this plugin's ``default`` service."""
        self.exported = obj
        service: dict[str, Any] = {name: self._method(name, m) for name, m in public_methods(obj).items()}
        service.update({"id": "default", "name": self._server.config.get("client_id", "plugin")})
        service["config"] = {**dict(config or {}), "require_context": True}  # see tagged
        service["type"] = "imjoy-plugin"
        return self._register(service)

    def _method(
        self, name: str, method: Callable[..., Any], defaults: dict[str, Any] | None = None
    ) -> Callable[..., Any]:
        """An exported method as the hub calls it: tagged with its caller, a sync one in the plugin's worker
        thread (so that the UI calls it makes leave at once), ``run`` given an ImJoy ``ctx`` whose config
        starts from ``defaults`` (default: those of the plugin's ``ui``)."""
        loop, worker = self._loop, self._worker
        defaults = self._ui_defaults if defaults is None else defaults

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            if name == "run":
                args = (imjoy_context(args[0] if args else kwargs.pop("ctx", None), defaults), *args[1:])
            if inspect.iscoroutinefunction(method):
                result = method(*args, **kwargs)
            else:
                context = contextvars.copy_context()  # the call's tag, for the UI calls it makes
                result = await loop.run_in_executor(
                    worker, functools.partial(context.run, method, *args, **kwargs)
                )
            if isinstance(
                result, concurrent.futures.Future
            ):  # e.g. ``return api.showDialog(...)`` in a thread
                result = asyncio.wrap_future(result, loop=loop)
            while inspect.isawaitable(result):
                result = await result
            return result

        return tagged(call)

    def _register(self, service: dict[str, Any]) -> asyncio.Future[Any]:
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

    # -- services ----------------------------------------------------------------------------------------
    def registerService(self, service: Any, overwrite: bool = True) -> Any:
        """Register a service (a dict or an object) that other clients reach as ``<plugin id>:<its id>``;
        its id defaults to its name made into an id. Returns (a future of) the service's info."""
        api = dict(service) if isinstance(service, dict) else public_methods(service)
        if not isinstance(service, dict):
            api |= {k: getattr(service, k) for k in ("id", "name", "type", "config") if hasattr(service, k)}
        name = str(api.get("name") or api.get("id") or "service")
        api["id"] = str(api.get("id") or re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-") or "service")
        if api["id"] in ("default", "built-in"):
            raise ValueError(f"api.registerService: the service id {api['id']!r} is reserved")
        api["name"] = name
        api["config"] = {"visibility": "public", **dict(api.get("config") or {})}
        defaults = {field["id"]: field["default"] for field in ui_fields(api.get("ui"))}  # an op's own form
        api = {k: self._method(k, v, defaults) if callable(v) else v for k, v in api.items()}
        return self._on_loop_call(self._registered(api, overwrite))

    register_service = registerService

    def register(self, config: Any = None, **kwargs: Any) -> Any:
        """ImJoy ``api.register``: a service when ``config`` has a ``type`` (``#file-loader``, ...), else an
        op (``name``, ``ui``, ``run``), registered as service ``<plugin id>:<op name made into an id>``."""
        spec = {**dict(config or {}), **kwargs}
        spec.setdefault("type", "imjoy-op")
        return self.registerService(spec)

    async def _registered(self, service: dict[str, Any], overwrite: bool) -> Any:
        return await self._server.rpc.register_service(service, overwrite=overwrite, notify=True)

    def unregisterService(self, service: Any) -> Any:
        """Remove a service this plugin registered (its id, full id, name or info dict)."""
        key = service.get("id") if isinstance(service, dict) else service
        local = str(key).rsplit(":", 1)[-1]
        services = self._server.rpc._services
        if local not in services:
            local = next((k for k, v in services.items() if v.get("name") == key), local)
        return self._on_loop_call(self._server.rpc.unregister_service(local, notify=True))

    unregister_service = unregisterService
    unregister = unregisterService

    def getServices(self, query: Any = None) -> Any:
        """ImJoy ``api.getServices``: the hub's services, all or those matching ``query``
        (``{"type": ...}``, ``{"name": ...}``; a string is a type)."""
        query = {"type": query} if isinstance(query, str) else query
        return self._threadsafe(self._server.list_services)(query if isinstance(query, dict) else None)

    get_services = getServices

    # -- plugin ------------------------------------------------------------------------------------------
    def getAttachment(self, name: str) -> Any:
        """The content of the plugin file's ``<attachment name="...">`` block (a future, as in ImJoy)."""
        if name not in self._attachments:
            known = ", ".join(sorted(self._attachments)) or "none"
            return self._settled(
                error=KeyError(f"api.getAttachment: no attachment named {name!r} (found: {known})")
            )
        return self._settled(self._attachments[name])

    get_attachment = getAttachment

    def getWindow(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "api.getWindow is not available to Python plugins in scopeflow: keep the object that "
            "api.createWindow(...) returns and call it, or have the window plugin call this plugin"
        )

    get_window = getWindow

    def showFileDialog(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "api.showFileDialog is not available to Python plugins in scopeflow: take the file as an "
            "argument of the op (a path, or the image itself: the web app opens files and passes arrays)"
        )

    show_file_dialog = showFileDialog

    def exit(self, code: int = 0) -> Any:
        """ImJoy ``api.exit``: call the exported ``exit()``, then have the hub stop this plugin."""
        return self._on_loop_call(self._exit_and_stop())

    async def _exit_and_stop(self) -> None:
        await self.call_exit()
        stop = self._server.get("exit_plugin")
        if callable(stop):
            await stop()

    async def call_exit(self) -> None:
        """Call the exported object's ``exit()`` once (the plugin is being stopped)."""
        if self._exited or self.exported is None:
            return
        self._exited = True
        exit_method = getattr(self.exported, "exit", None)
        if callable(exit_method):
            result = exit_method()
            if inspect.isawaitable(result):
                await result

    # -- the hub's functions -----------------------------------------------------------------------------
    def call_hub(self, service_id: str, method: str, *args: Any) -> Any:
        """Call ``method`` of one of the hub's own services (``plugin-versions``, ``workflows``): an awaitable
        on the kernel's loop, a concurrent future from a worker thread."""

        async def call() -> Any:
            service = await self._server.get_service(service_id)
            result = service[method](*args)
            while inspect.isawaitable(result):
                result = await result
            return result

        return self._on_loop_call(call())

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
        if name in _POSITIONAL or name in _OBJECT_CALLS:
            function = _with_imjoy_arguments(name, function)
        return self._threadsafe(function)

    def _threadsafe(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if _on_loop(self._loop):
                return function(*args, **kwargs)

            async def run() -> Any:
                return await function(*args, **kwargs)

            return asyncio.run_coroutine_threadsafe(run(), self._loop)

        return call

    def _on_loop_call(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the kernel's loop: a task there, a concurrent future from a thread."""
        if _on_loop(self._loop):
            return asyncio.ensure_future(coroutine, loop=self._loop)
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _settled(self, value: Any = None, error: Exception | None = None) -> Any:
        """A future already holding ``value`` (or ``error``), of the kind the calling thread awaits."""
        future: Any = self._loop.create_future() if _on_loop(self._loop) else concurrent.futures.Future()
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
        return future


def _with_imjoy_arguments(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*imjoy_arguments(name, args, kwargs))

    return call


def imjoy_context(given: Any, defaults: dict[str, Any]) -> Any:
    """ImJoy's ``ctx`` for ``run``: what the caller gave, with ``config`` holding the ``ui`` form's values
    (the defaults, overridden by the caller's) and ``data`` ({} if none); dicts allow ``ctx.config.sigma``."""
    if given is not None and not isinstance(given, dict):
        return given
    ctx = dotdict(given or {})
    config = ctx.get("config")
    ctx["config"] = dotdict({**defaults, **(config if isinstance(config, dict) else {})})
    data = ctx.get("data")
    ctx["data"] = (
        dotdict(data if isinstance(data, dict) else {}) if data is None or isinstance(data, dict) else data
    )
    return ctx


def imjoy_utils() -> dotdict:
    """``api.utils``: the helpers ImJoy's Python plugin engine offered (``kill``, ``ndarray``, ``debounce``,
    ``set_interval``), with ``dotdict`` and an awaitable ``sleep``."""
    return dotdict(
        dotdict=dotdict,
        kill=_kill,
        ndarray=_ndarray,
        debounce=_debounce,
        set_interval=_set_interval,
        setInterval=_set_interval,
        sleep=asyncio.sleep,
    )


def _kill(process: Any) -> None:
    """Kill a process: a ``subprocess.Popen`` or a pid."""
    pid = process.pid if hasattr(process, "pid") else int(process)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)


def _ndarray(value: Any, shape: Any = None, dtype: Any = None) -> Any:
    """A numpy array from an array, a list or bytes, with ``shape`` and ``dtype``."""
    import numpy as np

    array = np.frombuffer(value, dtype=dtype or "uint8") if isinstance(value, bytes | bytearray) else None
    array = np.asarray(value, dtype=dtype) if array is None else array
    return array.reshape(shape) if shape is not None else array


def _debounce(wait: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: call the function only once no call came for ``wait`` seconds (from any thread)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        timer: list[threading.Timer] = []

        @functools.wraps(function)
        def debounced(*args: Any, **kwargs: Any) -> None:
            for pending in timer:
                pending.cancel()
            timer[:] = [threading.Timer(wait, function, args, kwargs)]
            timer[0].daemon = True
            timer[0].start()

        return debounced

    return decorate


def _set_interval(interval: float) -> Callable[[Callable[..., Any]], Callable[..., threading.Event]]:
    """Decorator: calling the function starts calling it every ``interval`` seconds in a thread; the call
    returns an event that stops it when set."""

    def decorate(function: Callable[..., Any]) -> Callable[..., threading.Event]:
        @functools.wraps(function)
        def start(*args: Any, **kwargs: Any) -> threading.Event:
            stopped = threading.Event()

            def loop() -> None:
                while not stopped.wait(interval):
                    function(*args, **kwargs)

            threading.Thread(target=loop, daemon=True).start()
            return stopped

        return start

    return decorate


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
