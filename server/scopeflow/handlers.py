"""HTTP and websocket doors of the hub. Every one of them but the index page needs the token.

Handlers only translate HTTP to calls on the router, registry and engine (see :mod:`scopeflow.app`),
in the jupyter-server manner: ``default_handlers`` at the end lists the routes.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .engine import PluginCrashed
from .manifest import ManifestError

CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PLUGIN_ID = r"(?P<plugin_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"


class HubMixin:
    """Access to the hub's parts from a handler."""

    settings: dict[str, Any]

    @property
    def hub(self) -> Any:
        return self.settings["scopeflow_hub"]


class RouterSocket(HubMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """``/ws``: one imjoy-rpc client; binary frames go to the router."""

    peer_id: str | None = None

    def set_default_headers(self) -> None:
        """No JupyterHandler headers on a websocket."""

    def get_compression_options(self) -> None:
        return None  # permessage-deflate off: it costs far more than it saves on array traffic

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        client_id = self.get_argument("client_id", "")
        if not CLIENT_ID.match(client_id) or client_id == "workspace-manager":
            raise web.HTTPError(403, "client_id must be 1-128 letters, digits, '.', '_' or '-'")
        workspace = self.get_argument("workspace", None)
        if workspace not in (None, "", self.hub.router.workspace):
            raise web.HTTPError(403, f"this hub has one workspace: {self.hub.router.workspace}")
        if not self.hub.engine.may_connect(client_id, self.get_argument("plugin_secret", None)):
            raise web.HTTPError(403, f"{client_id} is a plugin id: only its kernel may connect as it")
        peer_id = self.hub.router.absolute(client_id)
        existing = self.hub.router.routes.get(peer_id)
        if existing is not None:
            if not self.hub.manager.check_reconnection(
                self.get_argument("reconnection_token", None), client_id
            ):
                raise web.HTTPError(403, f"client id {client_id} is already connected")
            self.hub.router.remove(peer_id, "reconnected")
            if isinstance(existing.peer, RouterSocket):
                existing.peer.close(4000, "replaced by a new connection")
        self.client_id = client_id
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.set_nodelay(True)  # small RPC frames must not wait for Nagle's algorithm (~40 ms)
        self.peer_id = self.hub.router.add(self.client_id, self)

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, str) or self.peer_id is None:
            self.log.warning("ignored a text frame from %s: imjoy-rpc frames are binary", self.client_id)
            return
        self.hub.router.route(self.peer_id, message)

    def on_close(self) -> None:
        route = self.hub.router.routes.get(self.peer_id) if self.peer_id else None
        if route is not None and route.peer is self:
            self.hub.router.remove(self.peer_id)

    def send(self, data: bytes) -> None:
        with contextlib.suppress(WebSocketClosedError):  # the peer is going: on_close cleans up
            self.write_message(data, binary=True)


class PluginsHandler(HubMixin, APIHandler):
    """``GET /api/plugins``: manifests with status. ``POST {"url"}`` installs; with ``"preview": true`` it
    only parses (nothing from a URL runs before the user trusts it)."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps({"plugins": self.hub.plugin_list(), "errors": self.hub.registry.errors}))

    @web.authenticated
    async def post(self) -> None:
        body = self.get_json_body() or {}
        url = body.get("url")
        source = body.get("source")
        try:
            if isinstance(url, str) and url:
                if body.get("preview"):
                    manifest = await self.hub.registry.preview_url(url)
                else:
                    manifest = await self.hub.registry.install_url(url)
            elif isinstance(source, str) and isinstance(body.get("filename"), str):
                manifest = self.hub.registry.install_source(source, body["filename"])
            else:
                raise ValueError('send {"url": "..."} or {"source": "...", "filename": "..."}')
        except (ManifestError, ValueError) as exc:
            raise web.HTTPError(400, str(exc)) from exc
        self.set_status(200 if body.get("preview") else 201)
        self.finish(manifest.model_dump_json(by_alias=True))


class PluginHandler(HubMixin, APIHandler):
    """``GET /api/plugins/ID``: manifest, status, source; ``DELETE`` removes an installed plugin."""

    def _manifest(self, plugin_id: str) -> Any:
        try:
            return self.hub.registry.get(plugin_id)
        except KeyError:
            raise web.HTTPError(404, f"no plugin {plugin_id}") from None

    @web.authenticated
    def get(self, plugin_id: str) -> None:
        manifest = self._manifest(plugin_id)
        data = manifest.model_dump(mode="json", by_alias=True)
        data["status"] = self.hub.engine.status(plugin_id)
        data["source"] = self.hub.registry.source(plugin_id)
        self.finish(json.dumps(data))

    @web.authenticated
    async def delete(self, plugin_id: str) -> None:
        self._manifest(plugin_id)
        try:
            await self.hub.engine.stop(plugin_id)
            self.hub.registry.remove(plugin_id)
        except PermissionError as exc:
            raise web.HTTPError(403, str(exc)) from exc
        self.set_status(204)
        self.finish()


class PluginActionHandler(HubMixin, APIHandler):
    """``POST /api/plugins/ID/start|stop|restart``."""

    @web.authenticated
    async def post(self, plugin_id: str, action: str) -> None:
        try:
            self.hub.registry.get(plugin_id)
        except KeyError:
            raise web.HTTPError(404, f"no plugin {plugin_id}") from None
        try:
            if action == "start":
                await self.hub.engine.ensure_started(plugin_id)
            elif action == "restart":
                await self.hub.engine.restart(plugin_id)
            else:
                await self.hub.engine.stop(plugin_id)
        except PluginCrashed as exc:
            self.set_status(500)
            self.finish(json.dumps({"message": str(exc), "status": self.hub.engine.status(plugin_id)}))
            return
        self.finish(json.dumps(self.hub.engine.status(plugin_id)))


class PluginLogsHandler(HubMixin, APIHandler):
    """``GET /api/plugins/ID/logs``: the plugin's recent output and api.log messages."""

    @web.authenticated
    def get(self, plugin_id: str) -> None:
        self.finish(json.dumps({"logs": list(self.hub.engine.plugin(plugin_id).logs)}))


class HubInfoHandler(HubMixin, APIHandler):
    """``GET /api/hub``: version, workspace and connected clients."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(self.hub.info()))


class IndexHandler(HubMixin, JupyterHandler):
    """``/``: the web app. Loads without the token (it asks for one) and never contains it."""

    @allow_unauthenticated
    def get(self) -> None:
        index = Path(self.hub.web_dir) / "index.html"
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(index.read_bytes())


# the web app's built files (public, like the page: they hold no secret); added with the hub's web_dir
ASSETS = r"/((?:assets|icons|samples)/.+|favicon\.(?:ico|svg))"

default_handlers: list[tuple[str, type, dict[str, Any]] | tuple[str, type]] = [
    (r"/", IndexHandler),
    (r"/ws", RouterSocket),
    (r"/api/hub", HubInfoHandler),
    (r"/api/plugins", PluginsHandler),
    (rf"/api/plugins/{PLUGIN_ID}", PluginHandler),
    (rf"/api/plugins/{PLUGIN_ID}/(?P<action>start|stop|restart)", PluginActionHandler),
    (rf"/api/plugins/{PLUGIN_ID}/logs", PluginLogsHandler),
]
