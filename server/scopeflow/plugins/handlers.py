"""HTTP doors of the plugins: list, install (from a URL only after a preview the user trusted), start, stop,
restart, logs, choose a tag, remove. Every one needs the token."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from scopeflow._http import HubMixin
from scopeflow._util import ID
from scopeflow.plugins.manifest import ManifestError
from scopeflow.plugins.registry import PluginChanged
from scopeflow.plugins.state import PluginCrashed

PLUGIN_ID = rf"(?P<plugin_id>{ID})"


class PluginMixin(HubMixin):
    def manifest_or_404(self, plugin_id: str) -> Any:
        try:
            return self.hub.registry.get(plugin_id)
        except KeyError:
            raise web.HTTPError(404, f"no plugin {plugin_id}") from None


class PluginsHandler(PluginMixin, APIHandler):
    """``GET /api/plugins``: manifests with status. ``POST {"url"}`` installs; with ``"preview": true`` it
    only parses (nothing from a URL runs before the user trusts it)."""

    @web.authenticated
    async def get(self) -> None:
        await asyncio.to_thread(self.hub.registry.refresh)  # files added or edited since: off the loop
        self.finish(json.dumps({"plugins": self.hub.plugin_list(), "errors": self.hub.registry.errors}))

    @web.authenticated
    async def post(self) -> None:
        body = self.body()
        if not isinstance(body, dict):
            raise web.HTTPError(400, 'send {"url": "..."} or {"source": "...", "filename": "..."}')
        url = body.get("url")
        source = body.get("source")
        tag = body.get("tag")  # the ImJoy tag the user picked in the preview
        tag = tag if isinstance(tag, str) and tag else None
        try:
            if isinstance(url, str) and url:
                public_only = body.get("public_only") is True  # a link nobody confirmed yet
                if body.get("preview"):
                    manifest = await self.hub.registry.preview_url(url, public_only, tag)
                else:
                    trusted = body.get("sha256")  # what the user saw in the preview
                    trusted = trusted if isinstance(trusted, str) else None
                    manifest = await self.hub.registry.install_url(url, trusted, public_only)
            elif isinstance(source, str) and isinstance(body.get("filename"), str):
                manifest = self.hub.registry.install_source(source, body["filename"])
            else:
                raise ValueError('send {"url": "..."} or {"source": "...", "filename": "..."}')
            if tag is not None and not body.get("preview") and tag != manifest.tag:
                manifest = self.hub.registry.choose_tag(manifest.id, tag)
        except PluginChanged as exc:
            raise web.HTTPError(409, str(exc)) from exc
        except (ManifestError, ValueError) as exc:
            raise web.HTTPError(400, str(exc)) from exc
        self.set_status(200 if body.get("preview") else 201)
        self.finish(manifest.model_dump_json(by_alias=True))


class PluginHandler(PluginMixin, APIHandler):
    """``GET /api/plugins/ID``: manifest, status, source; ``DELETE`` removes an installed plugin."""

    @web.authenticated
    def get(self, plugin_id: str) -> None:
        manifest = self.manifest_or_404(plugin_id)
        data = manifest.model_dump(mode="json", by_alias=True)
        data["status"] = self.hub.engine.status(plugin_id)
        data["builtin"] = self.hub.registry.is_builtin(manifest)
        data["source"] = self.hub.registry.source(plugin_id)
        self.finish(json.dumps(data))

    @web.authenticated
    async def delete(self, plugin_id: str) -> None:
        self.manifest_or_404(plugin_id)
        try:
            await self.hub.engine.stop(plugin_id)
            self.hub.registry.remove(plugin_id)
        except PermissionError as exc:
            raise web.HTTPError(403, str(exc)) from exc
        self.set_status(204)
        self.finish()


class PluginActionHandler(PluginMixin, APIHandler):
    """``POST /api/plugins/ID/start|stop|restart``."""

    @web.authenticated
    async def post(self, plugin_id: str, action: str) -> None:
        self.manifest_or_404(plugin_id)
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


class PluginTagHandler(PluginMixin, APIHandler):
    """``POST /api/plugins/ID/tag {"tag": "GPU"}``: use another of an ImJoy plugin's ``tags``. Its kernel
    is stopped (its requirements may differ); the next call starts it with the new tag's environment."""

    @web.authenticated
    async def post(self, plugin_id: str) -> None:
        manifest = self.manifest_or_404(plugin_id)
        body = self.body()
        tag = body.get("tag") if isinstance(body, dict) else None
        if not isinstance(tag, str):
            raise web.HTTPError(400, 'send {"tag": "..."}, one of the plugin\'s tags')
        if tag not in manifest.tags:
            raise web.HTTPError(400, f"{manifest.name} has no tag {tag!r} (its tags: {manifest.tags})")
        if tag != manifest.tag:
            await self.hub.engine.stop(manifest.id)
            manifest = self.hub.registry.choose_tag(manifest.id, tag)
        data = manifest.model_dump(mode="json", by_alias=True)
        data["status"] = self.hub.engine.status(manifest.id)
        self.finish(json.dumps(data))


class PluginLogsHandler(PluginMixin, APIHandler):
    """``GET /api/plugins/ID/logs``: the plugin's recent output and api.log messages."""

    @web.authenticated
    def get(self, plugin_id: str) -> None:
        self.manifest_or_404(plugin_id)
        self.finish(json.dumps({"logs": list(self.hub.engine.plugin(plugin_id).logs)}))


class PluginVerifyHandler(PluginMixin, APIHandler):
    """``POST /api/plugins/ID/verify``: run the plugin's declared test cases in its kernel; the report says
    pass or fail per case with the largest difference (a failing plugin is still a 200: the check ran)."""

    @web.authenticated
    async def post(self, plugin_id: str) -> None:
        manifest = self.manifest_or_404(plugin_id)
        self.finish(json.dumps(await self.hub.verifier.verify(manifest.id), allow_nan=False, default=str))


default_handlers: list[tuple[str, type]] = [
    (r"/api/plugins", PluginsHandler),
    (rf"/api/plugins/{PLUGIN_ID}", PluginHandler),
    (rf"/api/plugins/{PLUGIN_ID}/(?P<action>start|stop|restart)", PluginActionHandler),
    (rf"/api/plugins/{PLUGIN_ID}/logs", PluginLogsHandler),
    (rf"/api/plugins/{PLUGIN_ID}/tag", PluginTagHandler),
    (rf"/api/plugins/{PLUGIN_ID}/verify", PluginVerifyHandler),
]
