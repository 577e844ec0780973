"""The hub: a jupyter-server extension that wires router, manager, registry and engine together.

Jupyter-server gives us tornado, token auth, traitlets configuration and kernel management (local, or
remote through ``--gateway-url``). This class stays thin: it reads configuration, builds the parts and
hands routes to tornado; the parts own the logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from tornado.ioloop import IOLoop
from tornado.web import StaticFileHandler
from traitlets import Bool, Float, Int, List, Unicode, default

from scopeflow import __version__
from scopeflow._http import safe_error_pages
from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.hub.handlers import ASSETS
from scopeflow.hub.handlers import default_handlers as hub_handlers
from scopeflow.hub.router import Router
from scopeflow.hub.workspace import WorkspaceManager
from scopeflow.images.handlers import default_handlers as image_handlers
from scopeflow.plugins.engine import KernelEngine
from scopeflow.plugins.environments import Environments
from scopeflow.plugins.handlers import default_handlers as plugin_handlers
from scopeflow.plugins.model_handlers import default_handlers as model_handlers
from scopeflow.plugins.model_packages import ModelPackages
from scopeflow.plugins.registry import Registry
from scopeflow.plugins.versions import PluginVersions
from scopeflow.transfer.codec import Transfer
from scopeflow.transfer.handlers import default_handlers as transfer_handlers
from scopeflow.transfer.store import TransferStore
from scopeflow.workflows.cache import Cache
from scopeflow.workflows.handlers import default_handlers as workflow_handlers
from scopeflow.workflows.library import Documents, Gallery
from scopeflow.workflows.runner import WorkflowRunner
from scopeflow.workflows.runs import RunStore
from scopeflow.workflows.verify import Verifier

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[1]


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HubServer(ServerApp):
    """jupyter-server as the hub uses it: tornado, traitlets and the kernel manager (local or a gateway's),
    but none of jupyter's own doors (``/api/kernels``, ``/api/contents``, ``/api/sessions``,
    ``/api/shutdown``, ``/files``, ``/api``, ``/metrics``, its ``/static`` ...: the hub mounts its own) and
    no file holding the token in the runtime dir, where plugin kernels could read it."""

    default_services = ()  # type: ignore[assignment]  # none of jupyter's services
    OPEN_FILE_SECONDS = 30  # how long the browser-open file (it holds the token) may stay for the browser

    @default("no_browser_open_file")
    def _default_no_browser_open_file(self) -> bool:
        return not self.open_browser  # written only to open a browser, and removed soon after

    def write_server_info_file(self) -> None:
        """No ``jpserver-PID.json``: it holds the token (``jupyter server list`` does not list hubs)."""

    def write_browser_open_files(self) -> None:
        super().write_browser_open_files()
        IOLoop.current().call_later(self.OPEN_FILE_SECONDS, self.remove_browser_open_files)

    def init_webapp(self) -> None:
        self.contents_manager.files_handler_class = None  # no /files/
        super().init_webapp()
        assert self.web_app is not None
        # what jupyter mounts whatever the services: /api, /metrics, /static, robots.txt, redirects
        rules = self.web_app.wildcard_router.rules
        rules[:] = [r for r in rules if not getattr(r.target, "__module__", "").startswith("jupyter_server.")]
        safe_error_pages(self.web_app)


class Hub(ExtensionApp):
    """scopeflow hub: runs plugins in Jupyter kernels and routes imjoy-rpc between every party."""

    name = "scopeflow"
    serverapp_class = HubServer
    extension_url = "/"
    load_other_extensions = False
    open_browser = False

    data_dir = Unicode(
        help="Directory of all state: installed plugins, workflows, cache (default ~/.scopeflow)."
    ).tag(config=True)
    plugins_dirs = List(Unicode(), help="Extra directories of plugin files.").tag(config=True)
    builtin_plugins_dir = Unicode(help="Directory of the built-in plugins ('' for none).").tag(config=True)
    web_dir = Unicode(help="Directory of the built web app (index.html and assets).").tag(config=True)
    workspace = Unicode("default", help="Name of the hub's one workspace.").tag(config=True)
    kernel_name = Unicode("python3", help="Kernel spec that plugin kernels are started with.").tag(
        config=True
    )
    hub_url = Unicode(
        help="URL plugin kernels use to reach this hub (default: http://127.0.0.1:PORT); "
        "set it when kernels run elsewhere, through a gateway."
    ).tag(config=True)
    plugin_start_timeout = Float(
        120, help="Seconds a plugin may take to become ready once its requirements are installed."
    ).tag(config=True)
    cache_bytes = Int(
        2 * 1024**3, help="Size budget of the workflow result cache in bytes (least recently used out first)."
    ).tag(config=True)
    env_bytes = Int(
        20 * 1024**3,
        help="Size budget of plugin environments in bytes (least recently used go first; `scopeflow envs`).",
    ).tag(config=True)
    plugin_environments = Bool(
        True,
        help="Install each Python plugin's requirements into an environment of its own (with uv); when off, "
        "plugins run with the hub's packages only.",
    ).tag(config=True)
    allow_remote_access = Bool(
        False, help="Listen on a non-loopback address. Anyone who can reach it and has the token runs code."
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.environ.get("SCOPEFLOW_DATA_DIR") or str(Path.home() / ".scopeflow")

    @default("builtin_plugins_dir")
    def _default_builtin(self) -> str:
        return str(BUILTIN_PLUGINS) if BUILTIN_PLUGINS.is_dir() else ""

    @default("web_dir")
    def _default_web_dir(self) -> str:
        """The checkout's web/dist (scripts/setup builds it) when this is a source checkout, else the app a
        wheel carries (package data, built by setup.py). Never web/ itself: its index.html is the unbuilt one
        (it loads /src/main.tsx), a blank page. Read once, at start: so is the warning when there is none."""
        candidates = [PACKAGE / "static"]
        if PACKAGE == REPO / "server" / "scopeflow" and (REPO / "pyproject.toml").is_file():
            candidates.insert(0, REPO / "web" / "dist")
        for candidate in candidates:
            if (candidate / "index.html").is_file():
                return str(candidate)
        self.log.warning(
            "scopeflow's web app is not built (no index.html in %s): / says so until it is. In a source "
            "checkout run `bash scripts/setup` (or `cd web && npm ci && npm run build`); a wheel built with "
            "Node.js and npm (without SCOPEFLOW_SKIP_WEB=1) carries the app.",
            " or ".join(str(c) for c in candidates),
        )
        return str(candidates[0])  # a checkout: web/dist, where its build lands (reload the page then)

    def initialize_settings(self) -> None:
        server = self.server
        if not (is_loopback(server.ip) or self.allow_remote_access):
            raise SystemExit(
                f"refusing to listen on {server.ip!r}: not a loopback address. "
                "Pass --allow-remote-access if every machine that can reach it may run code with the token."
            )
        if not server.identity_provider.token:
            raise SystemExit("scopeflow needs a token: pass --token or set SCOPEFLOW_TOKEN")
        data = Path(self.data_dir).expanduser()
        data.mkdir(parents=True, exist_ok=True)
        # every part gets its collaborators here, and nowhere else
        self.router = Router(self.workspace)
        self.registry = Registry(
            Path(self.builtin_plugins_dir) if self.builtin_plugins_dir else None,
            [Path(p).expanduser() for p in self.plugins_dirs],
            data,
        )
        self.registry.scan()
        self.engine = KernelEngine(
            server.kernel_manager,
            self.registry,
            self.router,
            hub_url=self.kernel_hub_url,
            kernel_name=self.kernel_name,
            start_timeout=self.plugin_start_timeout,
            environments=Environments(data / "envs", self.env_bytes) if self.plugin_environments else None,
        )
        self.manager = WorkspaceManager(
            self.router,
            {"hub": "scopeflow", "version": __version__},
            config_dir=data / "plugin-config",
            plugins=self.engine,
        )
        self.runner = WorkflowRunner(
            self.manager,
            self.engine,
            self.registry,
            Cache(data / "cache", self.cache_bytes),
            RunStore(data / "runs"),
        )
        self.manager.rpc.add_service(self.runner.service(), overwrite=True)
        self.manager.rpc.add_service(PluginVersions(self.registry, self.engine).service(), overwrite=True)
        self.verifier = Verifier(self.runner, self.registry)
        self.model_packages = ModelPackages(self.registry)
        self.manager.rpc.add_service(self.verifier.service(), overwrite=True)
        self.documents = Documents(data / "workflows")
        self.documents.recover()  # a hub killed mid-save leaves nothing half-done behind
        builtin = self.builtin_plugins_dir
        self.gallery = Gallery(Path(builtin) / "workflows" if builtin else None)
        self.transfer_store = self._transfer_store()
        IOLoop.current().add_callback(self._announce)
        self.settings.update(
            {
                "scopeflow_hub": self,
                "websocket_max_message_size": 512 * 1024 * 1024,
            }
        )

    def _transfer_store(self) -> TransferStore:
        """The blobs of arrays in flight; the workspace manager reads and writes array handles too (through
        shared memory, the hub's own), so that arrays a plugin shows through the ImJoy api reach the web app
        out of band."""
        store = TransferStore()

        def release(peer_id: str, _peer: Any) -> None:
            store.release_owner(peer_id)

        self.router.on_disconnect.append(release)
        self.router.on_undelivered.append(lambda _target, frame: store.release_named_in(frame))
        segs = store.segments
        if segs.enabled:
            peer = self.manager.peer_id
            self.manager.rpc.install_transfer(Transfer("", {}, segs.prefix(peer), segs.hub_prefix, "shm"))
        IOLoop.current().add_callback(store.start)
        return store

    def _announce(self) -> None:
        server = self.server
        host = "127.0.0.1" if server.ip in ("", "0.0.0.0") else server.ip
        host = f"[{host}]" if ":" in host else host
        url = f"http://{host}:{server.port}{server.base_url}"
        provider = server.identity_provider
        announced = getattr(provider, "announced_token", None)
        token = announced() if announced is not None else provider.token
        print(
            f"\n    scopeflow {__version__} is running. Open this URL in a browser:"
            f"\n\n        {url}?token={token}\n",
            flush=True,
        )
        if token != provider.token:  # the user gave it, and this output goes to a file
            print("    (... is the token you gave: the hub writes it to no file or log)\n", flush=True)

    def kernel_hub_url(self) -> str:
        """Where plugin kernels connect (read at each start: the port is known once bound)."""
        if self.hub_url:
            return str(self.hub_url)
        server = self.server
        host = server.ip if server.ip and server.ip not in ("0.0.0.0", "::", "localhost") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if server.certfile else "http"
        return f"{scheme}://{host}:{server.port}{server.base_url.rstrip('/')}"

    def initialize_handlers(self) -> None:
        for routes in (
            hub_handlers,
            plugin_handlers,
            model_handlers,
            image_handlers,
            transfer_handlers,
            workflow_handlers,
        ):
            self.handlers.extend(routes)
        self.handlers.append((ASSETS, StaticFileHandler, {"path": self.web_dir}))

    @property
    def server(self) -> ServerApp:
        assert self.serverapp is not None, "the hub is not linked to a server yet"
        return self.serverapp

    def plugin_list(self) -> list[dict[str, Any]]:
        plugins = []
        for manifest in self.registry.list():
            data = manifest.model_dump(mode="json", by_alias=True)
            data["status"] = self.engine.status(manifest.id)
            data["builtin"] = self.registry.is_builtin(manifest)
            plugins.append(data)
        return plugins

    def info(self) -> dict[str, Any]:
        return {
            "hub": "scopeflow",
            "version": __version__,
            "workspace": self.workspace,
            "clients": sorted(c.split("/", 1)[-1] for c in self.router.routes),
            "plugins": len(self.registry.list()),
            "kernels": sorted(self.server.kernel_manager.list_kernel_ids()),  # plugins' and the spare
            "open_calls": self.manager.rpc.open_sessions(),  # calls the hub's own services are in
        }

    async def stop_extension(self) -> None:
        with contextlib.suppress(Exception):  # the kernels are shut down whatever happens to the runs
            await asyncio.wait_for(self.runner.shutdown(), 10)
        await asyncio.wait_for(self.engine.shutdown(), 20)
        self.transfer_store.close()
