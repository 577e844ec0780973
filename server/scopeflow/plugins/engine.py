"""The engine: each Python plugin in its own Jupyter kernel, started through jupyter-server's kernel manager.

Because kernels come from the server's kernel manager, ``--gateway-url`` sends them to a Jupyter Kernel or
Enterprise Gateway with no code here. A kernel is started on first use; one execute request bootstraps it
(:mod:`scopeflow.plugins.bootstrap`), and the plugin is *ready* when that request returns with its service
announced.
A kernel that dies, or a plugin whose connection drops, is *crashed* with its traceback and last output;
the next request starts it again. Nothing here lets a plugin take the hub down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import inspect
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.ioloop import IOLoop
from traitlets import TraitError

from scopeflow.plugins.bootstrap import STOP_CELL
from scopeflow.plugins.environments import Environments, Layer, RequirementError
from scopeflow.plugins.gateway import authorised
from scopeflow.plugins.manifest import python_code
from scopeflow.plugins.registry import Registry
from scopeflow.plugins.state import Plugin, PluginCrashed

log = logging.getLogger("scopeflow.plugins.engine")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# the spec (hub URL, the kernel's secret, the plugin source) goes in a silent cell of its own, so that no
# traceback of the bootstrap cell can show it
SPEC_CELL = "import json as _json\n_scopeflow_spec = _json.loads({spec!r})"
BOOTSTRAP_CELL = (
    "from scopeflow.plugins.bootstrap import start_plugin as _scopeflow_start\n"
    "await _scopeflow_start(globals().pop('_scopeflow_spec'))"
)


# what every plugin's start-up imports, imported ahead in the spare kernel
WARM_CELL = "import scopeflow.plugins.bootstrap, numpy, tornado.httpclient"
EXIT_TIMEOUT = 12  # seconds a plugin's exit() may take before its kernel is shut down anyway
WARM = {"scopeflow", "numpy", "tornado", "msgpack", "imjoy_rpc", "websockets", "shortuuid"}
# a plugin's environment (plugins/environments.py) goes in front of the kernel's sys.path, .pth files included
# modules the kernel itself imported before (tornado, zmq, traitlets for ipykernel) cannot be replaced: say so
LAYER_CELL = (
    "import site as _site, sys as _sys\n_before = list(_sys.path)\n"
    "for _p in {paths!r}:\n    _site.addsitedir(_p)\n"
    "_sys.path[:] = [_p for _p in _sys.path if _p not in _before] + _before\ndel _before\n"
    "_stuck = sorted(_m for _m in {modules!r} if _m in _sys.modules and not any(str(getattr("
    "_sys.modules[_m], '__file__', '') or '').startswith(_p) for _p in {paths!r}))\n"
    "if _stuck:\n    print('warning: the kernel had imported ' + ', '.join(_m + ' ' + str(getattr("
    "_sys.modules[_m], '__version__', '')) for _m in _stuck) + ' before the plugin\\'s environment was added "
    "(Jupyter uses them): the plugin gets those versions, not the ones it asks for')\n"
    "del _stuck"
)


class HubKernelManager(AsyncMappingKernelManager):
    """jupyter-server's kernel manager, except that a kernel listed while it starts (``GET /api/kernels``
    as the engine starts its spare kernel) is reported as starting instead of failing the whole request:
    jupyter-server adds the kernel to its list before it sets the kernel's ``last_activity``."""

    def kernel_model(self, kernel_id: str) -> dict[str, Any]:
        try:
            return dict(super().kernel_model(kernel_id))
        except TraitError:
            return {
                "id": kernel_id,
                "name": self._kernels[kernel_id].kernel_name,
                "last_activity": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "execution_state": "starting",
                "connections": self._kernel_connections.get(kernel_id, 0),
            }


class PeerEvents(Protocol):
    """What the engine needs of the hub's router: to hear when a connection closes (a kernel's, say)."""

    on_disconnect: list[Callable[[str, Any], None]]


class KernelEngine:
    """Starts, watches and stops plugin kernels."""

    def __init__(
        self,
        kernel_manager: Any,
        registry: Registry,
        router: PeerEvents,
        *,
        hub_url: Callable[[], str],
        kernel_name: str = "python3",
        start_timeout: float = 120,
        keep_spare: bool | None = None,
        environments: Environments | None = None,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.registry = registry
        self.hub_url = hub_url
        self.kernel_name = kernel_name
        self.start_timeout = start_timeout
        self.environments = environments
        self.plugins: dict[str, Plugin] = {}
        self._background: set[asyncio.Future[None]] = set()  # crash handling and kernel shutdowns
        # one kernel started ahead, its imports warm, so that a plugin starts in a fraction of the time
        if keep_spare is None:
            keep_spare = os.environ.get("SCOPEFLOW_SPARE_KERNEL", "1") != "0"
        self.keep_spare = keep_spare
        self._spare: asyncio.Future[tuple[str, Any]] | None = None
        self._closing = False
        if os.environ.get("SCOPEFLOW_SPARE_KERNEL") != "lazy":  # lazy: the first spare after the first start
            IOLoop.current().add_callback(self._refill)
        router.on_disconnect.append(self._peer_gone)

    # -- queries ----------------------------------------------------------------------------------------
    def knows(self, plugin_id: str, rescan: bool = False) -> bool:
        """A Python plugin of the registry, as last scanned (``rescan`` looks for new files first)."""
        manifest = self.registry.known(plugin_id)
        if manifest is None and rescan and self.registry.refresh():
            manifest = self.registry.known(plugin_id)
        return manifest is not None and manifest.lang == "python"

    def environment_of(self, plugin_id: str) -> dict[str, str] | None:
        """The package versions a plugin's requirements resolve to here (None until it is known: its layer
        is built at its first start)."""
        running = self.plugins.get(plugin_id)
        if running is not None and running.environment is not None:
            return dict(running.environment["packages"])
        manifest = self.registry.resolve(plugin_id)
        envs = self.environments
        if envs is None or manifest is None or not manifest.requirements:
            return None
        try:
            wanted = envs.needs_layer(manifest.requirements)
        except RequirementError:
            return None
        if wanted is None:
            return envs.resolved_by_hub(manifest.requirements)
        layer = envs.find(envs.key(wanted))
        return dict(layer.packages) if layer is not None else None

    def resolve(self, name: str) -> str | None:
        """The id of the Python plugin called ``name`` in its config (or whose id it is), looking for new
        files once if none is known; None if there is none."""
        manifest = self.registry.resolve(name)
        if manifest is None and self.registry.refresh():  # a file changed: look again
            manifest = self.registry.resolve(name)
        return manifest.id if manifest is not None and manifest.lang == "python" else None

    def admit(self, client_id: str, secret: str | None) -> int | None:
        """The launch generation whose kernel this is, or None: a plugin id is reserved for its kernel."""
        plugin = self.plugins.get(client_id)
        if plugin is None or plugin.secret is None or not secret:
            return None
        given = secret.encode("utf-8", "surrogatepass")  # any text: bytes compare in constant time
        return plugin.generation if hmac.compare_digest(plugin.secret.encode(), given) else None

    def kernel_connected(self, plugin_id: str, generation: int) -> None:
        plugin = self.plugins.get(plugin_id)
        if plugin is not None and plugin.generation == generation:
            plugin.connected = True

    def serves(self, plugin_id: str) -> bool:
        """The plugin's id is held by the kernel of its current launch (and not by an impostor)."""
        plugin = self.plugins.get(plugin_id)
        return plugin is not None and plugin.connected

    def secret_of(self, plugin_id: str) -> str | None:
        plugin = self.plugins.get(plugin_id)
        return plugin.secret if plugin is not None else None

    def plugin(self, plugin_id: str) -> Plugin:
        if plugin_id not in self.plugins:
            self.plugins[plugin_id] = Plugin(plugin_id)
        return self.plugins[plugin_id]

    def status(self, plugin_id: str) -> dict[str, Any]:
        plugin = self.plugins.get(plugin_id)
        return plugin.status() if plugin else Plugin(plugin_id).status()

    def record_log(self, plugin_id: str, level: str, message: str) -> None:
        if plugin_id in self.plugins:
            self.plugins[plugin_id].logs.append({"time": time.time(), "level": level, "message": message})

    # -- lifecycle --------------------------------------------------------------------------------------
    async def ensure_started(self, plugin_id: str) -> None:
        """Start the plugin unless it is ready or starting; wait until it is ready or has crashed."""
        plugin = self.plugin(plugin_id)
        async with plugin.lock:  # a stop in progress finishes first
            if plugin.state not in ("ready", "starting"):
                self._launch(plugin)
        if plugin.state == "ready":
            return
        generation, ready = plugin.generation, plugin.ready
        assert ready is not None
        # the start-up timeout counts from the end of installing requirements (those steps have their own)
        while not ready.done() and plugin.generation == generation:
            since = time.monotonic() if plugin.installing else (plugin.installed_at or plugin.started_at)
            remaining = (since or time.monotonic()) + self.start_timeout - time.monotonic()
            if remaining <= 0:
                await self._crash(plugin, generation, f"not ready within {self.start_timeout:.0f} s")
                raise PluginCrashed(f"{plugin_id} crashed: {plugin.error}")
            await asyncio.wait([ready], timeout=min(remaining, 1.0))
        await asyncio.shield(ready)

    async def restart(self, plugin_id: str) -> None:
        await self.stop(plugin_id)
        await self.ensure_started(plugin_id)

    async def stop(self, plugin_id: str) -> None:
        plugin = self.plugin(plugin_id)
        async with plugin.lock:
            await self._say_goodbye(plugin)
            self._end_launch(plugin)
            task = plugin.task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            await self._shutdown_kernel(plugin)
            if plugin.shutdowns:  # "stopped" means its kernels are gone
                await asyncio.gather(*plugin.shutdowns, return_exceptions=True)
            self._fail_ready(plugin, PluginCrashed(f"{plugin_id} was stopped"))
            plugin.state, plugin.error = "stopped", None

    async def _say_goodbye(self, plugin: Plugin) -> None:
        """Let a ready plugin run its ``exit()`` (ImJoy plugins clean up there) before its kernel goes."""
        if plugin.state != "ready" or plugin.client is None or plugin.kernel_id is None:
            return
        with contextlib.suppress(Exception):
            kernel = self.kernel_manager.get_kernel(plugin.kernel_id)
            msg_id = plugin.client.execute(STOP_CELL, silent=True, store_history=False, allow_stdin=False)
            await asyncio.wait_for(self._await_reply(plugin.client, kernel, msg_id), EXIT_TIMEOUT)

    async def shutdown(self) -> None:
        self._closing = True
        spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(Exception):
                kernel_id, client = await spare
                client.stop_channels()
                await self._spawn_shutdown(kernel_id)
        await asyncio.gather(*(self.stop(p) for p in list(self.plugins)), return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _launch(self, plugin: Plugin) -> None:
        manifest = self.registry.get(plugin.id)
        if manifest.lang != "python":
            raise PluginCrashed(
                f"{plugin.id} is a {manifest.type} plugin: it runs in the browser, not a kernel"
            )
        self._end_launch(plugin)
        plugin.secret = secrets.token_urlsafe(24)
        plugin.state, plugin.error = "starting", None
        plugin.started_at, plugin.installed_at = time.monotonic(), None
        plugin.ready = asyncio.get_running_loop().create_future()
        plugin.ready.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        plugin.task = asyncio.ensure_future(self._run(plugin, manifest, plugin.generation))

    @staticmethod
    def _end_launch(plugin: Plugin) -> None:
        """Make every event of the current launch stale."""
        plugin.generation += 1
        plugin.secret, plugin.connected = None, False

    async def _layer(self, plugin: Plugin, manifest: Any) -> Layer | None:
        """The plugin's environment, installed with uv the first time (its output goes to the plugin's log);
        None when the hub has every requirement. Raises :class:`RequirementError` naming what failed."""
        envs = self.environments
        if envs is None or not manifest.requirements:
            return None
        if envs.needs_layer(manifest.requirements) is None:
            plugin.environment = {"key": None, "packages": envs.resolved_by_hub(manifest.requirements)}
            return None
        if "Gateway" in type(self.kernel_manager).__name__:
            raise RequirementError(
                f"{', '.join(manifest.requirements)}: plugin kernels run on a gateway, where the hub cannot "
                "install packages; install them in the gateway's kernel environment"
            )
        to_log = functools.partial(self.record_log, plugin.id, "info")
        plugin.installing = True
        try:
            layer = await envs.prepare(manifest.requirements, to_log)
        finally:
            plugin.installing, plugin.installed_at = False, time.monotonic()
        if layer is not None:
            envs.hold(layer.key, plugin.id)
            plugin.environment = {"key": layer.key, "packages": layer.packages, "installed": layer.installed}
        return layer

    async def _run(self, plugin: Plugin, manifest: Any, generation: int) -> None:
        try:
            plugin.environment = None
            layer = await self._layer(plugin, manifest)
            fresh = layer is not None and bool(WARM & set(layer.modules))  # it replaces what a spare imported
            start = asyncio.ensure_future(self._new_kernel() if fresh else self._kernel())
            try:
                kernel_id, client = await asyncio.shield(start)  # a kernel being started is never abandoned
            except asyncio.CancelledError:  # stopped meanwhile: the stop waits until that kernel is gone
                self._keep(asyncio.ensure_future(self._discard_when_started(start)), plugin.shutdowns)
                raise
            plugin.kernel_id, plugin.client = kernel_id, client
            kernel = self.kernel_manager.get_kernel(kernel_id)
            plugin.reader = asyncio.ensure_future(self._read_output(plugin, client))
            source = self.registry.source(plugin.id)  # rescans if the file changed since the last scan
            known = self.registry.known(plugin.id)
            plugin.sha256 = known.sha256 if known is not None else None
            spec = {
                "server_url": self.hub_url(),
                "secret": plugin.secret,
                "plugin_id": plugin.id,
                "name": manifest.name,
                "format": manifest.format,
                "filename": manifest.path or f"{plugin.id}.py",
                "source": python_code(source, manifest.path or manifest.id),
                "requirements": list(manifest.requirements),
                "file_source": source,  # attachments and the ui form, read in the kernel (maybe remote)
                "tag": manifest.tag,
            }
            client.execute(SPEC_CELL.format(spec=json.dumps(spec)), silent=True, store_history=False)
            if layer is not None:
                layer_cell = LAYER_CELL.format(paths=layer.paths, modules=layer.modules)
                client.execute(layer_cell, store_history=False)  # not silent: its warning reaches the log
            msg_id = client.execute(BOOTSTRAP_CELL, store_history=False, allow_stdin=False)
            reply = await self._await_reply(client, kernel, msg_id)
            content = reply["content"]
            if content.get("status") != "ok":
                trace = ANSI.sub("", "\n".join(content.get("traceback") or []))
                message = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
                await self._crash(plugin, generation, f"{message}\n{trace}".strip())
                return
            if plugin.generation != generation:
                return
            plugin.state = "ready"
            plugin.startup_seconds = time.monotonic() - (plugin.started_at or time.monotonic())
            if plugin.ready and not plugin.ready.done():
                plugin.ready.set_result(None)
            log.info("plugin %s ready in %.2f s", plugin.id, plugin.startup_seconds)
        except asyncio.CancelledError:
            raise
        except RequirementError as exc:  # the installer's message says it all
            log.warning("could not prepare %s: %s", plugin.id, exc)
            await self._crash(plugin, generation, str(exc))
        except Exception as exc:
            log.exception("could not start %s", plugin.id)
            await self._crash(plugin, generation, f"{type(exc).__name__}: {exc}")
        finally:
            self._refill()  # the next plugin finds a kernel waiting (started now, not to slow this one)

    # -- kernels ----------------------------------------------------------------------------------------
    async def _new_kernel(self) -> tuple[str, Any]:
        """Start a kernel and open its channels; it is shut down again if it never gets ready."""
        kernel_id = await self.kernel_manager.start_kernel(kernel_name=self.kernel_name)
        try:
            client = authorised(self.kernel_manager.get_kernel(kernel_id)).client()
            started = client.start_channels()
            if inspect.isawaitable(started):  # a gateway kernel's client opens its channels asynchronously
                await started
            await client.wait_for_ready(timeout=self.start_timeout)
            # its connection file holds the key that signs messages to it: once the kernel has read it, no
            # other plugin's kernel (the same user) may find it and take this kernel over
            connection_file = getattr(self.kernel_manager.get_kernel(kernel_id), "connection_file", "")
            if connection_file:
                with contextlib.suppress(OSError):
                    os.unlink(connection_file)
        except BaseException:
            self._spawn_shutdown(kernel_id)
            raise
        return kernel_id, client

    async def _kernel(self) -> tuple[str, Any]:
        """A kernel for a plugin: the spare one if it is (or gets) ready and alive, else a new one."""
        spare, self._spare = self._spare, None
        if spare is not None:
            try:
                kernel_id, client = await asyncio.shield(spare)
            except asyncio.CancelledError:
                spare.add_done_callback(self._discard_started_kernel)
                raise
            except Exception as exc:
                log.warning("the spare kernel failed to start: %s", exc)
            else:
                if await self.kernel_manager.get_kernel(kernel_id).is_alive():
                    return kernel_id, client
                client.stop_channels()
                self._spawn_shutdown(kernel_id)
        return await self._new_kernel()

    async def _spare_kernel(self) -> tuple[str, Any]:
        kernel_id, client = await self._new_kernel()
        client.execute(WARM_CELL, silent=True, store_history=False)
        return kernel_id, client

    def _refill(self) -> None:
        """Start the spare kernel unless there is one (and the engine keeps one)."""
        if self.keep_spare and self._spare is None and not self._closing:
            self._spare = asyncio.ensure_future(self._spare_kernel())
            self._spare.add_done_callback(lambda f: f.cancelled() or f.exception())

    def spare_kernel_id(self) -> str | None:
        """The id of the kernel kept ready for the next plugin, once it is started."""
        spare = self._spare
        if spare is None or not spare.done() or spare.cancelled() or spare.exception():
            return None
        return spare.result()[0]

    async def _await_reply(self, client: Any, kernel: Any, msg_id: str) -> dict[str, Any]:
        """The bootstrap's execute reply; fails fast if the kernel process dies meanwhile."""
        while True:
            try:
                reply: dict[str, Any] = await client.get_shell_msg(timeout=0.5)
            except Exception:  # queue.Empty: nothing yet
                if not await kernel.is_alive():
                    raise PluginCrashed("the kernel process exited during start-up") from None
                continue
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                return reply

    async def _read_output(self, plugin: Plugin, client: Any) -> None:
        while True:
            try:
                msg = await client.get_iopub_msg()
            except asyncio.CancelledError:
                raise
            except Exception:
                return
            kind, content = msg.get("msg_type"), msg.get("content", {})
            if kind == "stream":
                level = "error" if content.get("name") == "stderr" else "info"
                for line in str(content.get("text", "")).rstrip("\n").splitlines():
                    self.record_log(plugin.id, level, line)
            elif kind == "error":
                self.record_log(plugin.id, "error", ANSI.sub("", "\n".join(content.get("traceback") or [])))

    def _peer_gone(self, peer_id: str, peer: Any) -> None:
        """A connection closed: if it was the current kernel of a plugin, that plugin has crashed."""
        plugin = self.plugins.get(peer_id.split("/", 1)[-1])
        generation = getattr(peer, "generation", None)
        if plugin is None or generation != plugin.generation:
            return
        plugin.connected = False
        if plugin.state in ("ready", "starting"):
            message = "the plugin's kernel died or lost its connection to the hub"
            self._keep(asyncio.ensure_future(self._crash(plugin, generation, message)))

    async def _crash(self, plugin: Plugin, generation: int, error: str) -> None:
        if plugin.generation != generation:
            return  # that launch is over already
        recent = [e["message"] for e in plugin.logs if e["level"] == "error"][-20:]
        if recent and "\n".join(recent) not in error:
            error = error + "\n\nlast output:\n" + "\n".join(recent)
        secret = plugin.secret
        self._end_launch(plugin)
        plugin.state = "crashed"
        plugin.error = error.replace(secret, "[secret]") if secret else error
        log.warning("plugin %s crashed: %s", plugin.id, error.splitlines()[0] if error else "")
        self._fail_ready(plugin, PluginCrashed(f"{plugin.id} crashed: {plugin.error}"))
        if plugin.task and not plugin.task.done() and plugin.task is not asyncio.current_task():
            plugin.task.cancel()
        await self._shutdown_kernel(plugin)

    @staticmethod
    def _fail_ready(plugin: Plugin, error: Exception) -> None:
        if plugin.ready and not plugin.ready.done():
            plugin.ready.set_exception(error)

    async def _shutdown_kernel(self, plugin: Plugin) -> None:
        """Shut the plugin's kernel down; cancelling the caller never interrupts the shutdown itself."""
        kernel_id, plugin.kernel_id = plugin.kernel_id, None
        if self.environments is not None:
            self.environments.release(plugin.id)
        if plugin.reader is not None:
            plugin.reader.cancel()
            plugin.reader = None
        if plugin.client is not None:
            plugin.client.stop_channels()
            plugin.client = None
        if kernel_id:
            await asyncio.shield(self._spawn_shutdown(kernel_id, plugin))

    def _spawn_shutdown(self, kernel_id: str, plugin: Plugin | None = None) -> asyncio.Future[None]:
        async def shutdown() -> None:
            if kernel_id in self.kernel_manager:
                try:
                    await self.kernel_manager.shutdown_kernel(kernel_id, now=True)
                except Exception:
                    log.exception("could not shut down kernel %s", kernel_id)

        return self._keep(asyncio.ensure_future(shutdown()), plugin.shutdowns if plugin else None)

    def _keep(
        self, task: asyncio.Future[None], also: set[asyncio.Future[None]] | None = None
    ) -> asyncio.Future[None]:
        """Hold a background task until it is done (and in ``also``, e.g. a plugin's shutdowns)."""
        for tasks in (self._background, also):
            if tasks is not None:
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return task

    async def _discard_when_started(self, start: asyncio.Future[tuple[str, Any]]) -> None:
        try:
            kernel_id, client = await start
        except Exception:
            return  # it never started
        client.stop_channels()
        await self._spawn_shutdown(kernel_id)

    def _discard_started_kernel(self, start: asyncio.Future[tuple[str, Any]]) -> None:
        """A kernel whose launch was stopped while it was starting: shut it down once it is up."""
        if not start.cancelled() and start.exception() is None:
            kernel_id, client = start.result()
            client.stop_channels()
            self._spawn_shutdown(kernel_id)
