"""Plugin kernels on a Jupyter Kernel (or Enterprise) Gateway that requires a token.

jupyter-server's ``GatewayKernelClient.start_channels`` (jupyter_server/gateway/managers.py, 2.21.1 and its
main branch) opens the kernel's ``/channels`` websocket with no headers at all, so a gateway with a token
answers 401 and no plugin starts; its REST calls do send the token. :class:`AuthorisedGatewayKernelClient`
opens that websocket with the same headers as the REST calls (``GatewayClient.load_connection_args``: the
``Authorization`` header of ``--GatewayClient.auth_token`` or ``JUPYTER_GATEWAY_AUTH_TOKEN``, and any other
configured header), then sets up the channels as the upstream client does. Drop it once a release sends
the headers itself: ``tests/plugins/test_engine.py`` runs a gateway with a token through both.
"""

from __future__ import annotations

import threading
from typing import Any

import websocket
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import GatewayKernelClient
from jupyter_server.utils import url_escape, url_path_join

__all__ = ["AuthorisedGatewayKernelClient"]


class AuthorisedGatewayKernelClient(GatewayKernelClient):
    """A gateway kernel's client whose channels websocket carries the gateway's headers (its token)."""

    async def start_channels(  # type: ignore[override]  # async, as GatewayKernelClient.start_channels
        self,
        shell: bool = True,
        iopub: bool = True,
        stdin: bool = True,
        hb: bool = True,
        control: bool = True,
    ) -> None:
        gateway = GatewayClient.instance()
        address = url_path_join(
            gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id), "channels"
        )
        headers: dict[str, Any] = gateway.load_connection_args().get("headers") or {}
        self.channel_socket = websocket.create_connection(
            address,
            timeout=gateway.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            header=[f"{name}: {value}" for name, value in headers.items()],
            sslopt={
                "ca_certs": gateway.ca_certs,
                "certfile": gateway.client_cert,
                "keyfile": gateway.client_key,
            },
        )
        # the channels themselves: the base client's, as GatewayKernelClient sets them up over that socket
        AsyncKernelClient.start_channels(self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control)
        self.response_router = threading.Thread(target=self._route_responses, daemon=True)
        self.response_router.start()


def authorised(kernel: Any) -> Any:
    """``kernel`` (a kernel manager), its clients opening their channels with the gateway's headers."""
    from jupyter_server.gateway.managers import GatewayKernelManager

    if isinstance(kernel, GatewayKernelManager):
        kernel.client_factory = AuthorisedGatewayKernelClient
    return kernel
