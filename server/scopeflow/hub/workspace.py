"""The ``workspace-manager`` peer: the hub's own imjoy-rpc client, with the ``default`` service.

It runs imjoy-rpc's ``RPC`` class in the hub process, attached to the router like any other peer. Its
service keeps the directory of services (what each client announced with ``update_client_info``),
resolves ``get_service`` queries (starting a plugin's kernel when its service is asked for), and carries
the ImJoy ``api`` calls plugins make (``showMessage``, ``showProgress``, ...): they go to the browser app
when one is attached, and are logged otherwise, never blocking a plugin.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scopeflow._util import write_atomic
from scopeflow.hub.router import MANAGER_ID, Router
from scopeflow.rpc.direct import introduce
from scopeflow.rpc.lean import LeanRPC
from scopeflow.sdk import UI_CALLS

log = logging.getLogger("scopeflow.hub.workspace")

APP_SERVICE = "imjoy-api"  # the service the web app registers for plugins' UI calls
RECONNECTION_EXPIRES_IN = 24 * 3600


class PluginStarter(Protocol):
    """What the manager needs from the engine."""

    def knows(self, plugin_id: str, rescan: bool = False) -> bool: ...

    def resolve(self, name: str) -> str | None: ...

    def serves(self, plugin_id: str) -> bool: ...

    def secret_of(self, plugin_id: str) -> str | None: ...

    async def ensure_started(self, plugin_id: str) -> None: ...

    def record_log(self, plugin_id: str, level: str, message: str) -> None: ...


class _ManagerPeer:
    """The manager as a router peer: frames for it go straight into its RPC."""

    def __init__(self, manager: WorkspaceManager) -> None:
        self._manager = manager

    def send(self, data: bytes) -> None:
        try:
            self._manager.rpc._on_message(data)
        except Exception as exc:  # a malformed payload must not reach the sender's socket handler
            log.warning("workspace-manager dropped a message it could not decode: %s", exc)

    def discard_chunks(self, key: str) -> None:
        """The sender of a chunked message went away before finishing it."""
        self._manager.rpc._object_store.get("message_cache", {}).pop(key, None)


class _ManagerConnection:
    """The manager's side of the imjoy-rpc connection interface."""

    def __init__(self, router: Router, peer_id: str) -> None:
        self._router = router
        self._peer_id = peer_id

    def on_message(self, handler: Callable[[bytes], None]) -> None:
        pass  # frames arrive through _ManagerPeer

    async def emit_message(self, data: bytes) -> None:
        self._router.route(self._peer_id, data)

    async def disconnect(self, reason: str | None = None) -> None:
        pass


def split_query(query: str, workspace: str) -> tuple[str | None, str]:
    """``ws/client:svc`` | ``client:svc`` | ``svc`` → (absolute client id or None, service id)."""
    if ":" in query:
        client, service = query.rsplit(":", 1)
        if "/" not in client:
            client = f"{workspace}/{client}"
        return client, service
    return None, query


class WorkspaceManager:
    """Directory of services and plugin lifecycle entry point, served as ``workspace-manager:default``."""

    def __init__(
        self,
        router: Router,
        hub_info: dict[str, Any] | None = None,
        config_dir: Path | None = None,
        plugins: PluginStarter | None = None,
    ) -> None:
        self.router = router
        self.workspace = router.workspace
        self.peer_id = router.add(MANAGER_ID, _ManagerPeer(self))
        self.rpc = LeanRPC(
            _ManagerConnection(router, self.peer_id),
            client_id=MANAGER_ID,
            manager_id=None,
            workspace=self.workspace,
            method_timeout=600,
        )
        self.hub_info = dict(hub_info or {})
        self._forwards: set[asyncio.Future[Any]] = set()  # log lines on their way to the app
        self.config_dir = config_dir
        self.engine = plugins  # starts a plugin's kernel when a client asks for its service
        # called with (plugin id, UI call name, args) for every UI call a client makes (e.g. the runner's
        # progress of the node a plugin is running); a listener must not block or raise
        self.ui_listeners: list[Callable[[str, str, list[Any], str | None], None]] = []
        # who the op call a UI call comes from is for: tag (sdk.CALL_KEYWORD) → client id, or None
        self.call_owners: list[Callable[[str], str | None]] = []
        self.clients: dict[str, dict[str, Any]] = {}  # absolute client id → {"services": [...], ...}
        # the app service of each app client, fetched once (a fetch per UI call cost time and ~600 bytes
        # of imjoy-rpc bookkeeping each); forgotten when the client goes or registers services again
        self._app_proxies: dict[str, Any] = {}
        self.reconnection_tokens: dict[str, tuple[str, float]] = {}  # client id → (its latest token, expiry)
        router.on_disconnect.append(self._client_gone)
        self.rpc.add_service(self._service(), overwrite=True)

    # -- service --------------------------------------------------------------------------------------
    def _service(self) -> dict[str, Any]:
        service: dict[str, Any] = {
            "id": "default",
            "name": "scopeflow workspace manager",
            "type": "workspace-manager",
            "description": "Services directory and plugin lifecycle of a scopeflow hub",
            "config": {"require_context": True, "visibility": "public", "workspace": self.workspace},
            "echo": self.echo,
            "log": self.log,
            "get_connection_info": self.get_connection_info,
            "update_client_info": self.update_client_info,
            "register_service": self.register_service,
            "unregister_service": self.unregister_service,
            "get_service": self.get_service,
            "list_services": self.list_services,
            "list_clients": self.list_clients,
            "getPlugin": self.get_plugin,
            "get_plugin": self.get_plugin,
            "call": self.call,
            "getConfig": self.get_config,
            "setConfig": self.set_config,
            "exit_plugin": self.exit_plugin,
        }
        for name in UI_CALLS:
            service[name] = self._ui_call(name)
        return service

    def echo(self, data: Any, context: Any = None) -> Any:
        return data

    def log(self, *messages, context=None, call=None):  # untyped: imjoy-rpc parses the signature
        text = " ".join(str(m) for m in messages)
        self._plugin_log(context, "info", text)
        if self._provider_of(APP_SERVICE) is not None:  # the app shows plugin logs live
            forward = asyncio.ensure_future(self._ui_call("log")(text, context=context, call=call))
            self._forwards.add(forward)
            forward.add_done_callback(self._forwarded)

    def _forwarded(self, forward: asyncio.Future[Any]) -> None:
        self._forwards.discard(forward)
        if not forward.cancelled() and forward.exception() is not None:
            log.debug("a log line did not reach the app: %s", forward.exception())

    def get_connection_info(self, context: Any = None) -> dict[str, Any]:
        caller = context["from"]
        token, now = secrets.token_urlsafe(24), time.time()
        for client in [c for c, (_, expiry) in self.reconnection_tokens.items() if expiry < now]:
            del self.reconnection_tokens[client]
        self.reconnection_tokens[caller] = (token, now + RECONNECTION_EXPIRES_IN)
        return {
            "workspace": self.workspace,
            "client_id": caller,
            "manager_id": self.peer_id,
            "reconnection_token": token,
            "reconnection_expires_in": RECONNECTION_EXPIRES_IN,
            **self.hub_info,
        }

    def check_reconnection(self, token: str | None, client_id: str) -> bool:
        """May this connection take over ``client_id``? Only with the token the client was last given."""
        entry = self.reconnection_tokens.get(self.router.absolute(client_id))
        return (
            bool(token)
            and entry is not None
            and entry[1] > time.time()
            and hmac.compare_digest(entry[0].encode(), str(token).encode("utf-8", "surrogatepass"))
        )

    def update_client_info(self, info: dict[str, Any], context: Any = None) -> None:
        caller = context["from"]
        services = []
        for svc in info.get("services") or []:
            local_id = str(svc.get("id", "")).split(":")[-1]
            if not local_id or local_id == "built-in":
                continue
            services.append(self._service_info(caller, local_id, svc))
        self.clients[caller] = {"id": caller, "services": services}
        self._app_proxies.pop(caller, None)

    def register_service(self, service: dict[str, Any], overwrite: bool = True, context: Any = None) -> dict:
        """Record a service the caller provides itself (announced, not hosted: it lives in the caller)."""
        caller = context["from"]
        local_id = str(service.get("id") or "default").split(":")[-1]
        entry = self.clients.setdefault(caller, {"id": caller, "services": []})
        existing = [s for s in entry["services"] if s["id"] != f"{caller}:{local_id}"]
        if not overwrite and len(existing) != len(entry["services"]):
            raise KeyError(f"service already registered: {caller}:{local_id}")
        info = self._service_info(caller, local_id, service)
        entry["services"] = [*existing, info]
        self._app_proxies.pop(caller, None)
        return info

    def unregister_service(self, service_id: str, context: Any = None) -> None:
        caller = context["from"]
        client, local_id = split_query(service_id, self.workspace)
        entry = self.clients.get(client or caller)
        if entry is None or (client is not None and client != caller):
            raise KeyError(f"service not found: {service_id}")
        entry["services"] = [s for s in entry["services"] if s["id"].split(":")[-1] != local_id]
        self._app_proxies.pop(client or caller, None)

    def list_services(self, query: Any = None, context: Any = None) -> list[dict[str, Any]]:
        """Every announced service; ``query`` may be a workspace name or ``{"type": ...}`` filter."""
        found = [
            {
                "id": f"{self.peer_id}:default",
                "name": "scopeflow workspace manager",
                "type": "workspace-manager",
                "description": "",
                "config": {"visibility": "public"},
            },
        ]
        for local_id, service in self.rpc._services.items():
            if local_id not in ("default", "built-in"):  # the hub's own services, e.g. ``workflows``
                found.append(
                    self._service_info(self.peer_id, local_id, service) | {"config": {"visibility": "public"}}
                )
        for entry in self.clients.values():
            found.extend(entry["services"])
        if isinstance(query, dict):
            found = [s for s in found if all(s.get(k) == v for k, v in query.items() if k != "workspace")]
        return found

    def list_clients(self, context: Any = None) -> list[str]:
        return sorted(self.router.routes)

    async def get_service(self, query: Any, context: Any = None) -> Any:
        if isinstance(query, dict):
            query = query.get("id") or ""
        if not isinstance(query, str) or not query:
            raise ValueError("get_service needs a service id such as 'plugin-id:default'")
        client, local_id = split_query(query, self.workspace)
        if client is None and local_id not in ("default", "built-in") and local_id in self.rpc._services:
            client = self.peer_id  # the hub's own services (e.g. ``workflows``) come first
        if client is None:
            client = self._provider_of(local_id)
            if client is None:
                raise KeyError(f"Service not found: {query}")
        if client == self.peer_id:
            return self.rpc.get_local_service(local_id, {"to": self.peer_id, "from": context["from"]})
        engine = self.engine
        if client not in self.clients and engine is not None:  # a plugin by its name, as ImJoy has it
            plugin_id = engine.resolve(client.split("/", 1)[1])
            if plugin_id is not None:
                client = self.router.absolute(plugin_id)
        plugin_id = client.split("/", 1)[1]
        served = self.has_service(client, local_id)
        # a plugin's id is served only by the kernel the engine started for it, never by an impostor
        if (
            engine is not None
            and engine.knows(plugin_id, rescan=not served)
            and not (served and engine.serves(plugin_id))
        ):
            await engine.ensure_started(plugin_id)
        if not self.has_service(client, local_id):
            raise KeyError(f"Service not found: {query}")
        try:
            service = await self.rpc.get_remote_service(f"{client}:{local_id}")
        except Exception:
            await asyncio.sleep(0)  # its kernel may have died as we asked: the engine hears of it first
            if engine is None or not engine.knows(plugin_id) or engine.serves(plugin_id):
                raise
            await engine.ensure_started(plugin_id)  # once more, from a new kernel
            service = await self.rpc.get_remote_service(f"{client}:{local_id}")
        if engine is not None and engine.serves(plugin_id):  # the caller may link to the kernel directly
            service = introduce(service, engine.secret_of(plugin_id), context["from"])
        return service

    async def get_plugin(self, name: str, context: Any = None) -> Any:
        return await self.get_service(f"{name}:default", context=context)

    async def call(self, plugin, function, *args, context=None):  # untyped, as log
        service = await self.get_plugin(plugin, context=context)
        if function not in service or not callable(service[function]):
            raise AttributeError(f"plugin {plugin} has no function {function}")
        return await service[function](*args)

    def get_config(self, name: str | None = None, context: Any = None) -> Any:
        """ImJoy ``api.getConfig``: a value the calling plugin saved, kept across restarts."""
        config = self._read_config(context)
        return config if name is None else config.get(name)

    def exit_plugin(self, context: Any = None) -> None:
        """ImJoy ``api.exit`` of a plugin's kernel: the engine stops that plugin once this call has returned
        (the caller's kernel is shut down, so the stop cannot be awaited here)."""
        caller = context["from"].split("/")[-1] if context else ""
        engine = self.engine
        stop = getattr(engine, "stop", None)
        if engine is None or not callable(stop) or not engine.knows(caller) or not engine.serves(caller):
            raise PermissionError("api.exit: only a plugin's own kernel may stop it")

        def later() -> None:
            stopping = asyncio.ensure_future(stop(caller))
            self._forwards.add(stopping)
            stopping.add_done_callback(self._forwarded)

        asyncio.get_running_loop().call_later(0.1, later)

    def set_config(self, name: str, value: Any, context: Any = None) -> None:
        """ImJoy ``api.setConfig``: save a JSON value for the calling plugin."""
        config = self._read_config(context)
        config[name] = value
        path = self._config_path(context)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(config, indent=1))

    def _config_path(self, context: Any) -> Path | None:
        if self.config_dir is None:
            return None
        return self.config_dir / (context["from"].split("/")[-1] + ".json")

    def _read_config(self, context: Any) -> dict[str, Any]:
        path = self._config_path(context)
        if path is None or not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    # -- UI calls ------------------------------------------------------------------------------------
    def _ui_call(self, name: str) -> Callable[..., Any]:
        async def ui_call(*args, context=None, call=None):  # untyped: imjoy-rpc reads the signature
            caller = context["from"].split("/")[-1] if context else ""
            tag = call if isinstance(call, str) else None  # the op call it comes from (sdk.CALL_KEYWORD)
            for listener in self.ui_listeners:
                try:
                    listener(caller, name, list(args), tag)
                except Exception:
                    log.exception("a listener of %s failed", name)
            app = self._app_for(tag)
            if app is None:
                self._plugin_log(
                    context, "info", f"{name}: {' '.join(repr(a) for a in args)} (no browser attached)"
                )
                return None
            service = self._app_proxies.get(app)
            if service is None:
                service = await self.rpc.get_remote_service(f"{app}:{APP_SERVICE}")
                if app in self.clients:  # not gone meanwhile
                    self._app_proxies[app] = service
            dispatch = service.get("dispatch")
            if callable(dispatch):  # the scopeflow app also wants to know which plugin calls
                return await dispatch(caller, name, list(args))
            function = service.get(name)
            if not callable(function):
                self._plugin_log(context, "info", f"{name}: {args!r} (the app does not offer {name})")
                return None
            return await function(*args)

        ui_call.__name__ = name
        return ui_call

    def _plugin_log(self, context: Any, level: str, message: str) -> None:
        caller = context["from"].split("/")[-1] if context else "?"
        log.info("[%s] %s", caller, message)
        if self.engine is not None:
            self.engine.record_log(caller, level, message)

    # -- directory -----------------------------------------------------------------------------------
    def _service_info(self, client: str, local_id: str, svc: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"{client}:{local_id}",
            "name": svc.get("name") or local_id,
            "type": svc.get("type") or "generic",
            "description": svc.get("description") or "",
            "config": dict(svc.get("config") or {}),
        }

    def has_service(self, client_id: str, local_id: str) -> bool:
        client = self.router.absolute(client_id)
        entry = self.clients.get(client)
        return entry is not None and any(s["id"] == f"{client}:{local_id}" for s in entry["services"])

    def _provider_of(self, local_id: str, shared_only: bool = False) -> str | None:
        """The newest client offering the service; ``shared_only`` skips those that want only the UI calls
        of their own op calls (a script or notebook showing its progress: ``config.own_calls_only``)."""
        for client, entry in reversed(list(self.clients.items())):
            if shared_only and any(
                s["id"].split(":")[-1] == local_id and s["config"].get("own_calls_only")
                for s in entry["services"]
            ):
                continue
            if self._offers(client, entry, local_id):
                return client
        return None

    def _offers(self, client: str, entry: dict[str, Any], local_id: str) -> bool:
        kernel = self.engine is not None and self.engine.knows(client.split("/")[-1])
        if local_id == APP_SERVICE and kernel:
            return False  # a plugin kernel offering the app's api would read every prompt meant for the user
        return any(s["id"].split(":")[-1] == local_id for s in entry["services"])

    def _app_for(self, tag: str | None) -> str | None:
        """The tab of the web app a UI call goes to: the one that made the op call it comes from (``tag``,
        see sdk.CALL_KEYWORD), or that started the run of that call, if it is still open; else the newest."""
        owner = None
        if tag and tag.startswith("client:"):
            owner = tag.removeprefix("client:")
        elif tag:
            owner = next((found for find in self.call_owners if (found := find(tag))), None)
        if owner:
            short = owner.split("/")[-1]
            for client, entry in self.clients.items():
                if client.split("/")[-1] == short and self._offers(client, entry, APP_SERVICE):
                    return client
        return self._provider_of(APP_SERVICE, shared_only=True)

    def _client_gone(self, client: str, peer: object) -> None:
        self.clients.pop(client, None)
        self._app_proxies.pop(client, None)
