"""A client that stops reading (a background tab, a sleeping laptop) is dropped within seconds; the hub
does not buffer for it without end, and everyone else keeps their answers."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import msgpack
import pytest
from websockets.asyncio.client import connect as ws_connect

from conftest import HubProcess
from scopeflow.rpc.client import connect

pytestmark = pytest.mark.hub

MIB = 1 << 20


def sleeping_tab(hub: HubProcess, client_id: str) -> socket.socket:
    """A websocket client that completes the handshake, then never reads again (tiny receive buffer)."""
    parts = urlsplit(hub.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    request = (
        f"GET /ws?client_id={client_id}&token={hub.token} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: c2NvcGVmbG93LXRlc3Qta2V5AA==\r\n\r\n"
    )
    sock.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def clients(hub: HubProcess) -> list[str]:
    return list(hub.json("/api/hub")["clients"])


async def test_a_client_that_stops_reading_is_dropped_and_others_keep_working(hub: HubProcess) -> None:
    tab = sleeping_tab(hub, "sleeping-tab")
    try:
        assert "sleeping-tab" in clients(hub)
        frame = msgpack.packb({"type": "method", "to": "sleeping-tab", "method": "show"})
        frame += msgpack.packb({"pad": b"\0" * MIB})
        started = time.monotonic()
        async with ws_connect(
            f"{hub.url.replace('http', 'ws')}/ws?client_id=flooder&token={hub.token}", compression=None
        ) as flooder:
            for _ in range(64):  # progress and images for a tab that does not read: 64 MiB
                await flooder.send(frame)
            while "sleeping-tab" in clients(hub) and time.monotonic() - started < 30:
                await flooder.send(frame)
                await asyncio.sleep(0.2)
        dropped_after = time.monotonic() - started
        assert "sleeping-tab" not in clients(hub)
        assert dropped_after < 20, dropped_after
        server = await connect(hub.url, token=hub.token)  # the hub answers everyone else at once
        try:
            answered = time.monotonic()
            assert await server.echo({"still": "here"}) == {"still": "here"}
            assert time.monotonic() - answered < 2
        finally:
            await server.disconnect()
        assert hub.log().count("dropped sleeping-tab: it stopped reading") == 1  # logged once
    finally:
        tab.close()
