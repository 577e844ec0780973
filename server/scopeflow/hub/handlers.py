"""HTTP and websocket doors of the hub. Every one of them but the app's pages (index, window) needs the token.

Handlers only translate HTTP to calls on the router, registry and engine (see :mod:`scopeflow.hub.app`),
in the jupyter-server manner: ``default_handlers`` at the end lists the routes.
"""

from __future__ import annotations

import functools
import json
import re
import time
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from scopeflow._http import HubMixin
from scopeflow._util import ID
from scopeflow.hub.openapi import openapi_document
from scopeflow.transfer.websocket import SocketArrays

CLIENT_ID = re.compile(ID)
BACKLOG_SOFT = 16 << 20  # bytes queued for a client before the hub starts counting how long it lags
BACKLOG_HARD = 256 << 20  # bytes queued for a client: dropped at once
BACKLOG_SECONDS = 5.0  # seconds a client may stay past BACKLOG_SOFT
HOST_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


class RouterSocket(HubMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """``/ws``: one imjoy-rpc client; binary frames go to the router.

    A client needs the token, except a plugin kernel, which connects with the secret of its launch instead
    (kernels, possibly on other hosts behind a gateway, never hold the hub's token). A plugin's id is
    reserved for its kernel, which takes over the id from whoever holds it.
    """

    peer_id: str | None = None
    generation: int | None = None  # the plugin launch this kernel belongs to
    takes_over = False
    _backlog = 0  # bytes queued for this client and not yet written to its socket
    _behind_since: float | None = None
    _dropped = False
    arrays: SocketArrays | None = None  # arrays over this socket (the web app's)

    def set_default_headers(self) -> None:
        """No JupyterHandler headers on a websocket."""

    def get_compression_options(self) -> None:
        return None  # permessage-deflate off: it costs far more than it saves on array traffic

    @allow_unauthenticated  # checked below: the token, or a plugin kernel's secret
    async def get(self, *args: Any, **kwargs: Any) -> None:
        client_id = self.get_argument("client_id", "")
        if not CLIENT_ID.fullmatch(client_id) or client_id == "workspace-manager":
            raise web.HTTPError(403, "client_id must be 1-128 letters, digits, '.', '_' or '-'")
        workspace = self.get_argument("workspace", None)
        if workspace not in (None, "", self.hub.router.workspace):
            raise web.HTTPError(403, f"this hub has one workspace: {self.hub.router.workspace}")
        if self.hub.engine.knows(client_id):
            self.generation = self.hub.engine.admit(client_id, self.get_argument("plugin_secret", None))
            if self.generation is None:
                raise web.HTTPError(403, f"{client_id} is a plugin id: only its kernel may connect as it")
            self.takes_over = True
        elif self.current_user is None:
            raise web.HTTPError(403, "a valid token is required")
        elif self.hub.router.absolute(client_id) in self.hub.router.routes:
            token = self.get_argument("reconnection_token", None)
            if not self.hub.manager.check_reconnection(token, client_id):
                raise web.HTTPError(403, f"client id {client_id} is already connected")
            self.takes_over = True
        self.client_id = client_id
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.set_nodelay(True)  # small RPC frames must not wait for Nagle's algorithm (~40 ms)
        router = self.hub.router
        existing = router.routes.get(router.absolute(self.client_id))
        if existing is not None:
            if not self.takes_over:  # another connection won a race for the same id
                self.close(4003, f"client id {self.client_id} is already connected")
                return
            if isinstance(existing.peer, RouterSocket):
                existing.peer.close(4000, "replaced by a new connection")
        self.peer_id = router.add(self.client_id, self)
        store = self.hub.transfer_store
        self.arrays = SocketArrays(store, store.segments.prefix(self.peer_id), self.client_id)
        if self.generation is not None:
            self.hub.engine.kernel_connected(self.client_id, self.generation)

    def on_message(self, message: str | bytes) -> None:
        route = self.hub.router.routes.get(self.peer_id) if self.peer_id else None
        if route is None or route.peer is not self:
            return  # this connection no longer holds its id
        if isinstance(message, str):
            self.log.warning("ignored a text frame from %s: imjoy-rpc frames are binary", self.client_id)
            return
        if self.arrays is not None and self.arrays.receive(message):
            return  # an array's bytes (transfer.websocket)
        self.hub.router.route(self.peer_id, message)

    def on_close(self) -> None:
        route = self.hub.router.routes.get(self.peer_id) if self.peer_id else None
        if route is not None and route.peer is self:
            self.hub.router.remove(self.peer_id)

    def send(self, data: bytes) -> None:
        """Queue a frame for this client. A client that stops reading (a sleeping laptop, a background tab)
        must not make the hub buffer without end: past ``BACKLOG_HARD`` bytes not yet written, or past
        ``BACKLOG_SOFT`` for ``BACKLOG_SECONDS``, it is dropped (it reconnects when it wakes)."""
        if self._dropped:
            return
        if self.arrays is not None:
            for blob in self.arrays.pushes(data):  # the arrays the frame names, before it
                self._queue(blob)
        self._queue(data)

    def _queue(self, data: bytes) -> None:
        if self._dropped:
            return
        try:
            written = self.write_message(data, binary=True)
        except WebSocketClosedError:  # the peer is going: on_close cleans up
            return
        self._backlog += len(data)
        written.add_done_callback(functools.partial(self._written, len(data)))
        if self._backlog <= BACKLOG_SOFT:  # nearly always: nothing more to do on the hot path
            self._behind_since = None
            return
        now = time.monotonic()
        self._behind_since = self._behind_since or now
        if self._backlog > BACKLOG_HARD or now - self._behind_since > BACKLOG_SECONDS:
            self._dropped = True
            self.log.warning(
                "dropped %s: it stopped reading (%d MiB waiting for %.0f s)",
                self.client_id,
                self._backlog >> 20,
                now - self._behind_since,
            )
            self.close(1013, "too far behind: reconnect")
            self.on_close()  # its route goes now, not when the socket's buffers drain

    def _written(self, size: int, _future: Any) -> None:
        self._backlog -= size


class HubInfoHandler(HubMixin, APIHandler):
    """``GET /api/hub``: version, workspace and connected clients."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(self.hub.info()))


class OpenApiHandler(HubMixin, APIHandler):
    """``GET /api/openapi.json``: the REST API as an OpenAPI 3.0 document."""

    @web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(openapi_document()))


# The app page runs only the hub's own scripts: an injected <script> or onclick does not run, and nothing it
# runs reaches another origin. Styles may be inline (React and the editor set them); imjoy-rpc's one eval at
# load time is rewritten by the build (web/vite.config.ts), so there is no 'unsafe-eval'.
APP_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# A window plugin's frame runs the plugin's own inline code (and imjoy-rpc, which needs eval) in a sandbox
# without same-origin, even when opened on its own; it loads only the hub's files and connects nowhere.
WINDOW_POLICY = "; ".join(
    [
        "sandbox allow-scripts",
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'none'",
        "worker-src blob:",  # web-worker plugins: a Worker made in the frame keeps its origin and policy
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    ]
)


class PageHandler(HubMixin, JupyterHandler):
    """A public page of the built web app, under its own Content-Security-Policy."""

    page = "index.html"
    policy = APP_POLICY

    @property
    def content_security_policy(self) -> str:
        return self.policy

    @allow_unauthenticated
    def get(self) -> None:
        path = Path(self.hub.web_dir) / self.page
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        if path.is_file():
            self.finish(path.read_bytes())
            return
        # in plain words, for whoever opens the hub in a browser (the hub logged it at start too)
        import html  # here: only this method of the module writes HTML

        self.set_status(503)
        self.finish(
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>scopeflow: the web app is not built</title></head><body>\n"
            "<h1>scopeflow's web app is not built</h1>\n"
            "<p>The hub is running, but it has no web app to show: there is no "
            f"<code>{self.page}</code> in <code>{html.escape(str(path.parent))}</code>.</p>\n"
            "<p>In a source checkout, build it with <code>bash scripts/setup</code>, or with "
            "<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code> (both need Node.js and npm), "
            "then reload this page.</p>\n"
            "<p>Installed from a wheel? A wheel built with Node.js and npm carries the app; this one was "
            "built without it (<code>SCOPEFLOW_SKIP_WEB=1</code>): build the wheel again with npm installed "
            "(<code>pip wheel .</code> in a checkout) and install that.</p>\n"
            "<p>Workflows run without the app too: <code>scopeflow run</code>.</p>\n</body></html>\n"
        )


class IndexHandler(PageHandler):
    """``/``: the web app. Loads without the token (it asks for one) and never contains it."""


class WindowHandler(PageHandler):
    """``/window.html``: the empty document a window plugin's iframe starts from. The app posts the plugin's
    parts into it (web/public/window.js); it holds no secret and never receives the token."""

    page = "window.html"
    policy = WINDOW_POLICY

    @property
    def content_security_policy(self) -> str:
        # the sandboxed document's own origin is opaque: browsers that match 'self' against it rather than
        # against its URL still load the hub's files through the hub's origin, named beside 'self'
        origin = f"{self.request.protocol}://{self.request.host}"
        if not HOST_ORIGIN.fullmatch(origin):
            return self.policy
        return self.policy.replace("'self'", f"'self' {origin}")


# the web app's built files (public, like the page: they hold no secret); added with the hub's web_dir
ASSETS = r"/((?:assets|icons|samples)/.+|favicon\.(?:ico|svg)|window\.js)"

default_handlers: list[tuple[str, type, dict[str, Any]] | tuple[str, type]] = [
    (r"/", IndexHandler),
    (r"/window\.html", WindowHandler),
    (r"/ws", RouterSocket),
    (r"/api/hub", HubInfoHandler),
    (r"/api/openapi\.json", OpenApiHandler),
]
