"""The engine: each Python plugin in its own Jupyter kernel, started through jupyter-server's kernel manager.

Because kernels come from the server's kernel manager, ``--gateway-url`` sends them to a Jupyter Kernel or
Enterprise Gateway with no code here. A kernel is started on first use; one execute request bootstraps it
(:mod:`scopeflow.kernel`), and the plugin is *ready* when that request returns with its service announced.
A kernel that dies, or a plugin whose connection drops, is *crashed* with its traceback and last output;
the next request starts it again. Nothing here lets a plugin take the hub down.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .manager import Manager
from .manifest import python_code
from .registry import Registry

log = logging.getLogger("scopeflow.engine")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BOOTSTRAP = (
    "import json\n"
    "from scopeflow.kernel import start_plugin as _scopeflow_start\n"
    "await _scopeflow_start(json.loads({spec!r}))"
)


class PluginCrashed(RuntimeError):
    """A plugin's kernel failed to start, or died."""


@dataclass
class Plugin:
    """Runtime state of one plugin: ``stopped`` → ``starting`` → ``ready`` | ``crashed``."""

    id: str
    state: str = "stopped"
    kernel_id: str | None = None
    error: str | None = None
    logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    started_at: float | None = None
    startup_seconds: float | None = None
    ready: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    client: Any = None
    reader: asyncio.Task[None] | None = None
    stopping: bool = False

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "kernel_id": self.kernel_id,
            "error": self.error,
            "startup_seconds": self.startup_seconds,
        }


class Engine:
    """Starts, watches and stops plugin kernels."""

    def __init__(
        self,
        kernel_manager: Any,
        registry: Registry,
        manager: Manager,
        *,
        hub_url: Callable[[], str],
        token: str,
        kernel_name: str = "python3",
        start_timeout: float = 120,
    ) -> None:
        self.kernel_manager = kernel_manager
        self.registry = registry
        self.manager = manager
        self.hub_url = hub_url
        self.token = token
        self.kernel_name = kernel_name
        self.start_timeout = start_timeout
        self.plugins: dict[str, Plugin] = {}
        self._secrets: dict[str, str] = {}  # plugin id → secret its current kernel connects with
        manager.engine = self
        manager.add_listener(self._on_client)

    # -- queries ----------------------------------------------------------------------------------------
    def knows(self, plugin_id: str) -> bool:
        try:
            return self.registry.get(plugin_id).lang == "python"
        except KeyError:
            return False

    def may_connect(self, client_id: str, secret: str | None) -> bool:
        """A plugin's id is reserved for the kernel the engine started for it."""
        if not self.knows(client_id):
            return True
        expected = self._secrets.get(client_id)
        return bool(expected and secret and secrets.compare_digest(expected, secret))

    def plugin(self, plugin_id: str) -> Plugin:
        if plugin_id not in self.plugins:
            self.plugins[plugin_id] = Plugin(plugin_id)
        return self.plugins[plugin_id]

    def status(self, plugin_id: str) -> dict[str, Any]:
        return self.plugin(plugin_id).status()

    def record_log(self, plugin_id: str, level: str, message: str) -> None:
        if plugin_id in self.plugins:
            self.plugins[plugin_id].logs.append({"time": time.time(), "level": level, "message": message})

    # -- lifecycle --------------------------------------------------------------------------------------
    async def ensure_started(self, plugin_id: str) -> None:
        """Start the plugin unless it is ready; wait until it is ready or has crashed."""
        plugin = self.plugin(plugin_id)
        if plugin.state != "starting" and not (plugin.state == "ready" and plugin.kernel_id):
            self._launch(plugin)
        if plugin.state == "ready":
            return
        assert plugin.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(plugin.ready), self.start_timeout)
        except TimeoutError:
            await self._crash(plugin, f"the plugin did not become ready within {self.start_timeout:.0f} s")
            raise PluginCrashed(plugin.error) from None

    async def restart(self, plugin_id: str) -> None:
        await self.stop(plugin_id)
        await self.ensure_started(plugin_id)

    async def stop(self, plugin_id: str) -> None:
        plugin = self.plugin(plugin_id)
        plugin.stopping = True
        try:
            if plugin.task and not plugin.task.done():
                plugin.task.cancel()
            await self._shutdown_kernel(plugin)
            self._fail_ready(plugin, PluginCrashed(f"{plugin_id} was stopped"))
            plugin.state = "stopped"
        finally:
            plugin.stopping = False

    async def shutdown(self) -> None:
        await asyncio.gather(*(self.stop(p) for p in list(self.plugins)), return_exceptions=True)

    def _launch(self, plugin: Plugin) -> None:
        manifest = self.registry.get(plugin.id)
        if manifest.lang != "python":
            raise PluginCrashed(
                f"{plugin.id} is a {manifest.type} plugin: it runs in the browser, not a kernel"
            )
        plugin.state = "starting"
        plugin.error = None
        plugin.started_at = time.monotonic()
        plugin.ready = asyncio.get_running_loop().create_future()
        plugin.ready.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        plugin.task = asyncio.ensure_future(self._run(plugin, manifest))

    async def _run(self, plugin: Plugin, manifest: Any) -> None:
        try:
            kernel_id = await self.kernel_manager.start_kernel(kernel_name=self.kernel_name)
            plugin.kernel_id = kernel_id
            kernel = self.kernel_manager.get_kernel(kernel_id)
            client = plugin.client = kernel.client()
            started = client.start_channels()
            if inspect.isawaitable(started):  # a gateway kernel's client opens its channels asynchronously
                await started
            await client.wait_for_ready(timeout=self.start_timeout)
            plugin.reader = asyncio.ensure_future(self._read_output(plugin, client))
            spec = {
                "server_url": self.hub_url(),
                "token": self.token,
                "plugin_id": plugin.id,
                "name": manifest.name,
                "format": manifest.format,
                "filename": manifest.path or f"{plugin.id}.py",
                "source": python_code(self.registry.source(plugin.id), manifest.path or manifest.id),
                "requirements": list(manifest.requirements),
                "secret": self._secrets.setdefault(plugin.id, secrets.token_urlsafe(24)),
            }
            code = BOOTSTRAP.format(spec=json.dumps(spec))
            msg_id = client.execute(code, store_history=False, allow_stdin=False)
            reply = await self._await_reply(client, kernel, msg_id)
            content = reply["content"]
            if content.get("status") != "ok":
                trace = ANSI.sub("", "\n".join(content.get("traceback") or []))
                message = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
                await self._crash(plugin, f"{message}\n{trace}".strip())
                return
            plugin.state = "ready"
            plugin.startup_seconds = time.monotonic() - (plugin.started_at or time.monotonic())
            if plugin.ready and not plugin.ready.done():
                plugin.ready.set_result(None)
            log.info("plugin %s ready in %.2f s", plugin.id, plugin.startup_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("could not start %s", plugin.id)
            await self._crash(plugin, f"{type(exc).__name__}: {exc}")

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

    async def _on_client(self, client: str, event: str) -> None:
        plugin_id = client.split("/", 1)[-1]
        plugin = self.plugins.get(plugin_id)
        if plugin is None or event != "gone" or plugin.stopping:
            return
        if plugin.state in ("ready", "starting"):
            await self._crash(plugin, "the plugin's kernel died or lost its connection to the hub")

    async def _crash(self, plugin: Plugin, error: str) -> None:
        recent = [e["message"] for e in plugin.logs if e["level"] == "error"][-20:]
        if recent and "\n".join(recent) not in error:
            error = error + "\n\nlast output:\n" + "\n".join(recent)
        plugin.state = "crashed"
        plugin.error = error
        log.warning("plugin %s crashed: %s", plugin.id, error.splitlines()[0] if error else "")
        self._fail_ready(plugin, PluginCrashed(f"{plugin.id} crashed: {error}"))
        if plugin.task and not plugin.task.done() and plugin.task is not asyncio.current_task():
            plugin.task.cancel()
        await self._shutdown_kernel(plugin)
        plugin.state = "crashed"

    @staticmethod
    def _fail_ready(plugin: Plugin, error: Exception) -> None:
        if plugin.ready and not plugin.ready.done():
            plugin.ready.set_exception(error)

    async def _shutdown_kernel(self, plugin: Plugin) -> None:
        kernel_id, plugin.kernel_id = plugin.kernel_id, None
        self._secrets.pop(plugin.id, None)
        if plugin.reader is not None:
            plugin.reader.cancel()
            plugin.reader = None
        if plugin.client is not None:
            plugin.client.stop_channels()
            plugin.client = None
        if kernel_id and kernel_id in self.kernel_manager:
            try:
                await self.kernel_manager.shutdown_kernel(kernel_id, now=True)
            except Exception:
                log.exception("could not shut down the kernel of %s", plugin.id)
