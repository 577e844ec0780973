"""Connect to a scopeflow hub from Python: plugin kernels, the CLI, tests and scripts.

``await connect(url, token=...)`` returns the hub's workspace manager with the same helpers as
imjoy-rpc's ``connect_to_server`` (``export``, ``get_plugin``, ``get_service``, ``disconnect``, ...),
built on :class:`~scopeflow.rpc.connection.WebsocketConnection` instead of the library's own socket.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import shortuuid
from imjoy_rpc.hypha.utils import dotdict

from scopeflow.rpc.connection import WebsocketConnection
from scopeflow.rpc.direct import Links, reject_calls
from scopeflow.rpc.lean import LeanRPC
from scopeflow.rpc.quick import QuickCalls
from scopeflow.transfer.codec import Transfer

__all__ = ["connect", "public_methods"]


def public_methods(obj: Any) -> dict[str, Any]:
    """The callables an object exports: public, and not remote objects held as attributes."""
    items = obj.items() if isinstance(obj, dict) else ((n, getattr(obj, n, None)) for n in dir(obj))
    return {
        name: value
        for name, value in items
        if not name.startswith("_") and callable(value) and not hasattr(value, "__rpc_object__")
    }


async def connect(
    server_url: str,
    *,
    token: str | None = None,
    client_id: str | None = None,
    name: str | None = None,
    method_timeout: float = 600,
    reconnect: bool = True,
    query: dict[str, str] | None = None,
    transfer: str | None = None,
) -> Any:
    """Connect to the hub; return its workspace manager (a dotdict of remote methods plus helpers).

    Large numpy arrays travel out of band when the hub offers it (:mod:`scopeflow.transfer.codec`):
    ``transfer`` forces ``"shm"`` or ``"http"``, ``"inline"`` keeps them in the messages; by default
    shared memory is used when this process sees the hub's, HTTP otherwise.
    """
    client_id = client_id or shortuuid.uuid()
    connection = WebsocketConnection(server_url, client_id, token=token, reconnect=reconnect, query=query)
    headers = {"Authorization": f"token {token}"} if token else {}
    if query and query.get("plugin_secret"):
        headers["X-Scopeflow-Plugin"] = f"{client_id} {query['plugin_secret']}"
    arrays = None
    if transfer != "inline":  # asked for while the websocket opens
        arrays = asyncio.ensure_future(Transfer.open(server_url, client_id, headers, mode=transfer))
    await connection.open()
    links = Links(connection, client_id, hub_url=server_url)  # direct links to kernels the hub introduces
    rpc = LeanRPC(
        links,
        client_id=client_id,
        manager_id="workspace-manager",
        default_context={"connection_type": "websocket"},
        name=name,
        method_timeout=method_timeout,
        loop=asyncio.get_running_loop(),
    )

    async def resend_services() -> None:
        # a hub that restarted forgot this client's services: tell it again
        rpc._manager_service = None
        await rpc._notify_service_update()

    connection.on_reconnected = resend_services
    links.on_lost = functools.partial(reject_calls, rpc)
    QuickCalls(rpc, links)  # calls over those links skip imjoy-rpc's promise machinery
    if arrays is not None and (installed := await arrays) is not None:
        rpc.install_transfer(installed)
    wm = await rpc.get_remote_service("workspace-manager:default")
    wm = dotdict(wm)
    wm.rpc = rpc
    wm.config = dotdict(wm.get("config") or {})
    wm.config["client_id"] = client_id

    async def export(api: Any, config: dict[str, Any] | None = None) -> Any:
        service = public_methods(api)
        service.update({"id": "default", "name": name or client_id, "config": dict(config or {})})
        return await rpc.register_service(service, overwrite=True)

    async def register_service(api: dict[str, Any], overwrite: bool = True) -> Any:
        # registered here, announced to the hub: the functions stay callable while this client lives
        return await rpc.register_service(dict(api), overwrite=overwrite)

    manager_get_service = wm.get_service

    async def get_service(query: Any, *args: Any, **kwargs: Any) -> Any:
        service = await manager_get_service(query, *args, **kwargs)
        rpc.learn_service(service)  # does it read array handles?
        await links.introduce(service)  # calls to its kernel go straight there when the hub allows it
        return service

    async def get_plugin(query: str) -> Any:
        return await get_service(query + ":default")

    async def disconnect() -> None:
        await rpc.disconnect()
        await links.disconnect()

    wm.export = export
    wm.register_service = register_service
    wm.registerService = register_service
    wm.get_service = get_service
    wm.getService = get_service
    wm.get_plugin = get_plugin
    wm.getPlugin = get_plugin
    wm.disconnect = disconnect
    wm.register_codec = rpc.register_codec
    wm.links = links
    return wm
