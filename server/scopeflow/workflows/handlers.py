"""REST doors of workflows: saved documents and their versions, the gallery, checks, fetches and pins.

Every route needs the token (``@web.authenticated``, as in :mod:`scopeflow.hub.handlers`). See
``docs/workflows.md`` for the contract.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from scopeflow._http import HubMixin
from scopeflow._util import ID
from scopeflow.plugins.manifest import ManifestError
from scopeflow.plugins.registry import PluginChanged
from scopeflow.workflows.document import json_schema, validate
from scopeflow.workflows.library import Documents, Gallery
from scopeflow.workflows.pins import make_pins

__all__ = ["default_handlers"]

WORKFLOW_NAME = rf"(?P<name>{ID})"
FETCH_MAX_BYTES = 2_000_000


class WorkflowMixin(HubMixin):
    finish: Any
    set_status: Any

    @property
    def documents(self) -> Documents:
        return self.hub.documents

    @property
    def gallery(self) -> Gallery:
        return self.hub.gallery

    def check(self, doc: Any) -> dict[str, Any]:
        self.hub.runner.refresh(doc)
        return validate(doc, self.hub.registry, self.hub.runner.samples, self.hub.engine.environment_of)


class WorkflowsHandler(WorkflowMixin, APIHandler):
    """``GET /api/workflows``: the saved workflows."""

    @web.authenticated
    def get(self) -> None:
        self.finish_json(self.documents.listing())


class WorkflowHandler(WorkflowMixin, APIHandler):
    """``GET|PUT|DELETE /api/workflows/NAME`` (``?version=V`` reads an earlier version)."""

    @web.authenticated
    def get(self, name: str) -> None:
        version = self.get_argument("version", None)
        if version is not None and not (version.isascii() and version.isdigit() and len(version) < 10):
            raise web.HTTPError(400, f"version must be a number, not {version!r}")
        try:
            self.finish_json(self.documents.load(name, int(version) if version else None))
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None

    @web.authenticated
    def put(self, name: str) -> None:
        doc = self.body()
        result = self.check(doc)
        if not result["ok"]:
            self.finish_json({"message": "the workflow is not valid", **result}, 400)
            return
        try:
            saved = self.documents.save(name, doc)
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.finish_json({"name": name, **saved, "pins": result["pins"]})

    @web.authenticated
    def delete(self, name: str) -> None:
        try:
            self.documents.delete(name)
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None
        self.set_status(204)
        self.finish()


class VersionsHandler(WorkflowMixin, APIHandler):
    """``GET /api/workflows/NAME/versions``."""

    @web.authenticated
    def get(self, name: str) -> None:
        try:
            self.finish_json(self.documents.versions(name))
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None


class CheckHandler(WorkflowMixin, APIHandler):
    """``POST /api/workflows/check``: a document → ``{"ok", "errors", "pins"}``."""

    @web.authenticated
    def post(self) -> None:
        self.finish_json(self.check(self.body()))


class FetchHandler(WorkflowMixin, APIHandler):
    """``POST /api/workflows/fetch {"url", "public_only"}`` → ``{"document", "check"}``."""

    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            raise web.HTTPError(400, 'send {"url": "...", "public_only": true|false}')
        public_only = body.get("public_only") is not False  # private addresses only when asked for
        try:
            final, text = await self.hub.registry.fetch(
                url, max_bytes=FETCH_MAX_BYTES, public_only=public_only
            )
            doc = json.loads(text)
        except ValueError as exc:
            raise web.HTTPError(400, f"{url}: {exc}") from None
        self.finish_json({"url": final, "document": doc, "check": self.check(doc)})


class PinHandler(WorkflowMixin, APIHandler):
    """``POST /api/workflows/pin {"plugin", "sha256"}``: put the pinned version of a plugin back."""

    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        plugin, sha = (body.get("plugin"), body.get("sha256")) if isinstance(body, dict) else (None, None)
        if not isinstance(plugin, str) or not isinstance(sha, str) or len(sha) != 64:
            raise web.HTTPError(400, 'send {"plugin": "<id>", "sha256": "<64 hex>"}')
        registry = self.hub.registry
        current = registry.known(plugin)
        if current is None or current.sha256 != sha:
            try:
                restored = registry.restore(plugin, sha)
            except (PluginChanged, ManifestError, ValueError) as exc:
                raise web.HTTPError(409, str(exc)) from None
            if not restored:
                raise web.HTTPError(
                    409,
                    f"{plugin} {sha[:12]}… is not kept on this hub: install it from its URL (you will see it "
                    "before anything runs)",
                )
            await self.hub.engine.stop(plugin)  # its next use starts the pinned version
        self.finish_json(
            {
                "plugin": plugin,
                "state": "ok",
                "current": make_pins(registry, [plugin], self.hub.engine.environment_of)[plugin],
            }
        )


class GalleryHandler(WorkflowMixin, APIHandler):
    """``GET /api/gallery``: the example workflows."""

    @web.authenticated
    def get(self) -> None:
        self.finish_json(self.gallery.listing())


class GalleryItemHandler(WorkflowMixin, APIHandler):
    """``GET /api/gallery/NAME``: one example's document."""

    @web.authenticated
    def get(self, name: str) -> None:
        try:
            self.finish_json(self.gallery.load(name))
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None


class SchemaHandler(WorkflowMixin, APIHandler):
    """``GET /api/workflow-schema``: the JSON Schema of workflow documents."""

    @web.authenticated
    def get(self) -> None:
        self.finish_json(json_schema())


# the POST actions come before the documents' route, which would match their names
default_handlers: list[tuple[str, type]] = [
    (r"/api/workflows", WorkflowsHandler),
    (r"/api/workflows/check", CheckHandler),
    (r"/api/workflows/fetch", FetchHandler),
    (r"/api/workflows/pin", PinHandler),
    (rf"/api/workflows/{WORKFLOW_NAME}/versions", VersionsHandler),
    (rf"/api/workflows/{WORKFLOW_NAME}", WorkflowHandler),
    (r"/api/gallery", GalleryHandler),
    (rf"/api/gallery/{WORKFLOW_NAME}", GalleryItemHandler),
    (r"/api/workflow-schema", SchemaHandler),
]
