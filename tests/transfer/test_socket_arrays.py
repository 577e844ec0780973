"""Arrays on a client's own websocket (scopeflow.transfer.websocket), against a real hub with shared memory
and one without: an upload is stored before the frame after it is routed, names not the client's are
refused without losing the frames that follow, and pushes go only to a client that asked for them, each
blob once and before the frame that names it."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.transfer.websocket import PUSH, UPLOAD, WS_ARRAY_MAX

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module", params=["shm", "memory"])
def any_hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    env = {"SCOPEFLOW_SHM": "0"} if request.param == "memory" else {}
    running = start_hub(tmp_path_factory.mktemp(f"{request.param}-hub"), env=env)
    yield running
    stop_hub(running)


async def client(hub: HubProcess, client_id: str) -> tuple[ClientConnection, str]:
    """A raw websocket to the hub's /ws, and the prefix of its array names."""
    ws_url = hub.url.replace("http://", "ws://") + f"/ws?client_id={client_id}"
    ws = await connect(ws_url, additional_headers={"Authorization": f"token {hub.token}"}, max_size=None)
    info = json.loads(hub.request(f"/api/transfer?client_id={client_id}")[1])
    assert info["ws_arrays"] == WS_ARRAY_MAX
    return ws, info["prefix"]


def frame(to: str, name: str) -> bytes:
    main = {"type": "method", "to": to, "method": "services.x.y"}
    return msgpack.packb(main) + msgpack.packb({"args": [{"_rtype": "scopeflow-array", "name": name}]})


async def test_an_upload_is_stored_before_the_frame_after_it(any_hub: HubProcess) -> None:
    sender_id = "up-" + secrets.token_hex(4)
    sender, prefix = await client(any_hub, sender_id)
    reader_id = "down-" + secrets.token_hex(4)
    reader, _ = await client(any_hub, reader_id)
    try:
        name = prefix + secrets.token_hex(16)
        data = os.urandom(300_000)
        await sender.send(bytes((UPLOAD,)) + name.encode())
        await sender.send(data)
        await sender.send(frame(reader_id, name))
        routed = msgpack.Unpacker()
        routed.feed(await reader.recv())
        assert next(routed)["from"].endswith("/" + sender_id)
        status, body = any_hub.request(f"/api/transfer/{name}")
        assert (status, body) == (200, data)  # it was there when the frame arrived; reading consumed it
        assert any_hub.request(f"/api/transfer/{name}")[0] == 404
    finally:
        await sender.close()
        await reader.close()


async def test_names_not_the_clients_own_are_refused_and_nothing_after_is_lost(any_hub: HubProcess) -> None:
    sender, prefix = await client(any_hub, "bad-" + secrets.token_hex(4))
    reader_id = "down-" + secrets.token_hex(4)
    reader, other_prefix = await client(any_hub, reader_id)
    try:
        taken = other_prefix + secrets.token_hex(16)  # another client's name
        await sender.send(bytes((UPLOAD,)) + taken.encode())
        await sender.send(b"x" * 1000)  # dropped with its header
        await sender.send(bytes((UPLOAD,)) + b"not-a-name")
        await sender.send(b"y" * 1000)
        good = prefix + secrets.token_hex(16)
        await sender.send(bytes((UPLOAD,)) + good.encode())
        await sender.send(b"z" * 1000)
        await sender.send(frame(reader_id, good))
        got = await reader.recv()  # the frame after them still arrives
        assert isinstance(got, bytes) and got[0] != PUSH
        assert any_hub.request(f"/api/transfer/{taken}")[0] == 404
        assert any_hub.request(f"/api/transfer/{good}") == (200, b"z" * 1000)
    finally:
        await sender.close()
        await reader.close()


async def test_pushes_go_only_to_who_asked_once_and_before_their_frame(any_hub: HubProcess) -> None:
    sender, prefix = await client(any_hub, "src-" + secrets.token_hex(4))
    asked_id, plain_id = "asked-" + secrets.token_hex(4), "plain-" + secrets.token_hex(4)
    asked, _ = await client(any_hub, asked_id)
    plain, _ = await client(any_hub, plain_id)
    try:
        await asked.send(bytes((PUSH,)))
        for target, payload in ((asked_id, os.urandom(200_000)), (plain_id, os.urandom(1000))):
            name = prefix + secrets.token_hex(16)
            await sender.send(bytes((UPLOAD,)) + name.encode())
            await sender.send(payload)
            await sender.send(frame(target, name))
            if target == asked_id:
                assert await asked.recv() == bytes((PUSH,)) + name.encode()
                assert await asked.recv() == payload
                routed = await asked.recv()
                assert name.encode() in routed and routed[0] != PUSH
                assert any_hub.request(f"/api/transfer/{name}")[0] == 404  # consumed by the push
            else:
                routed = await plain.recv()  # no push: the frame alone, the blob still held
                assert routed[0] != PUSH and name.encode() in routed
                assert any_hub.request(f"/api/transfer/{name}") == (200, payload)
    finally:
        for ws in (sender, asked, plain):
            await ws.close()
