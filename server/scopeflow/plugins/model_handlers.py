"""HTTP doors of bioimage.io model packages: preview (a zip sent as the body, or ``{"url"}`` of one), then
install exactly the previewed package by its sha256. Every one needs the token; nothing of a package runs
before the user has seen its preview, architecture source included, and pressed *Install and trust*."""

from __future__ import annotations

import asyncio
import json

from jupyter_server.base.handlers import APIHandler
from tornado import web

from scopeflow._http import HubMixin
from scopeflow.plugins.manifest import ManifestError
from scopeflow.plugins.model_packages import MAX_ZIP, PackageError


class ModelPreviewHandler(HubMixin, APIHandler):
    """``POST /api/models/preview``: the body is the package (``application/zip``; jupyter-server's body
    limit, 512 MB, applies), or ``{"url": ...}`` of one (up to 1 GB)."""

    @web.authenticated
    async def post(self) -> None:
        packages = self.hub.model_packages
        source_url = None
        data = self.request.body
        if self.request.headers.get("Content-Type", "").split(";")[0].strip() == "application/json":
            body = self.body()
            url = body.get("url") if isinstance(body, dict) else None
            if not isinstance(url, str) or not url.strip():
                raise web.HTTPError(400, 'send the package as the body, or {"url": "https://…/model.zip"}')
            try:
                source_url, data = await self.hub.registry.fetch_bytes(
                    url.strip(), max_bytes=MAX_ZIP, timeout=120
                )
            except ValueError as exc:
                raise web.HTTPError(400, str(exc)) from None
        if not data:
            raise web.HTTPError(400, "empty body: send the package's zip")
        try:
            preview = await asyncio.to_thread(packages.preview, data, source_url)
        except PackageError as exc:
            raise web.HTTPError(400, f"not a model package this hub can run: {exc}") from None
        self.finish(json.dumps(preview))


class ModelInstallHandler(HubMixin, APIHandler):
    """``POST /api/models/install {"sha256"}``: install the package previewed with that sha256 as a plugin."""

    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        sha256 = body.get("sha256") if isinstance(body, dict) else None
        source_url = body.get("source_url") if isinstance(body, dict) else None
        if not isinstance(sha256, str) or (source_url is not None and not isinstance(source_url, str)):
            raise web.HTTPError(400, 'send {"sha256": "<the previewed package\'s sha256>"}')
        try:
            manifest = await asyncio.to_thread(self.hub.model_packages.install, sha256, source_url)
        except KeyError as exc:
            raise web.HTTPError(404, str(exc.args[0])) from None
        except (PackageError, ManifestError) as exc:
            raise web.HTTPError(400, str(exc)) from None
        data = manifest.model_dump(mode="json", by_alias=True)
        data["status"] = self.hub.engine.status(manifest.id)
        self.set_status(201)
        self.finish(json.dumps(data))


default_handlers: list[tuple[str, type]] = [
    (r"/api/models/preview", ModelPreviewHandler),
    (r"/api/models/install", ModelInstallHandler),
]
