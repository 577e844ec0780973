"""A websocket connection for imjoy-rpc's ``RPC`` class, on current ``websockets``.

imjoy-rpc 0.5.59 ships its own connection, which reads ``websocket.closed`` and so breaks with
websockets >= 14. This one has the same small interface (``on_message``, ``emit_message``,
``disconnect``, ``set_reconnection_token``) on the ``websockets.asyncio`` client, with no message-size cap
and no permessage-deflate (compression costs far more than it saves on array traffic).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

log = logging.getLogger("scopeflow.rpc.connection")

MessageHandler = Callable[[bytes], Awaitable[None] | None]


def websocket_url(server_url: str) -> str:
    """``http://host:port`` → ``ws://host:port/ws`` (ws URLs are kept)."""
    url = server_url.rstrip("/")
    if url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    elif url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    if not url.endswith("/ws"):
        url += "/ws"
    return url


class WebsocketConnection:
    """One client's websocket to the hub's router."""

    def __init__(
        self,
        server_url: str,
        client_id: str,
        *,
        token: str | None = None,
        workspace: str | None = None,
        open_timeout: float = 30,
        reconnect: bool = True,
        query: dict[str, str] | None = None,
    ) -> None:
        self._base = websocket_url(server_url)
        self._query = {"client_id": client_id, **(query or {})}
        if workspace:
            self._query["workspace"] = workspace
        self._token = token
        self._open_timeout = open_timeout
        self._reconnect = reconnect
        self._reconnection_token: str | None = None
        self._ws: ClientConnection | None = None
        self._handler: MessageHandler | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self.on_disconnected: Callable[[], None] | None = None
        self.on_reconnected: Callable[[], Awaitable[None]] | None = None

    def on_message(self, handler: MessageHandler) -> None:
        self._handler = handler

    def set_reconnection_token(self, token: str) -> None:
        self._reconnection_token = token

    async def open(self) -> None:
        query = dict(self._query)
        if self._reconnection_token:
            query["reconnection_token"] = self._reconnection_token
        headers = {"Authorization": f"token {self._token}"} if self._token else None
        try:
            self._ws = await asyncio.wait_for(
                connect(
                    f"{self._base}?{urlencode(query)}",
                    additional_headers=headers,
                    max_size=None,
                    compression=None,
                    open_timeout=self._open_timeout,
                    ping_interval=20,
                    ping_timeout=60,
                    write_limit=2**22,
                ),
                self._open_timeout,
            )
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                body = exc.response.body.decode(errors="replace") if exc.response.body else ""
                raise PermissionError(f"the hub refused the connection: {body or exc}") from exc
            raise
        self._listener = asyncio.ensure_future(self._listen(self._ws))

    async def emit_message(self, data: bytes) -> None:
        if self._ws is None:
            raise ConnectionError("not connected to the hub")
        try:
            await self._ws.send(data)
        except ConnectionClosed:
            if self._closing:  # replies still in flight when the client chose to leave are dropped
                return
            raise

    async def _listen(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str) or self._handler is None:
                    continue
                try:
                    result = self._handler(message)
                    if result is not None:
                        await result
                except Exception:
                    log.exception("error while handling a message")
        except ConnectionClosed:
            pass
        if not self._closing:
            await self._on_broken()

    async def _on_broken(self) -> None:
        if self.on_disconnected:
            self.on_disconnected()
        if not self._reconnect:
            return
        delay = 0.5
        for _ in range(20):
            if self._closing:
                return
            await asyncio.sleep(delay)
            try:
                await self.open()
            except PermissionError:
                log.error("reconnection refused by the hub")
                return
            except (TimeoutError, OSError, InvalidStatus):
                delay = min(delay * 2, 10)
                continue
            if self.on_reconnected:
                await self.on_reconnected()
            return
        log.error("gave up reconnecting to %s", self._base)

    async def disconnect(self, reason: str | None = None) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close(code=1000, reason=reason or "")
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
