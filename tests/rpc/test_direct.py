"""Direct links between a client and a plugin kernel (scopeflow.rpc.direct), against a real hub and kernel:
calls take the link once the hub has introduced the two, answers are stamped with who really sent them, a
ticket the hub did not issue is refused, a kernel that does not prove itself is not used, and a kernel that
dies fails the calls waiting over its link at once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from conftest import HubProcess
from scopeflow.rpc import direct
from scopeflow.rpc.client import connect

pytestmark = pytest.mark.hub


class Counting:
    """Counts what a client sends through the hub (its own websocket), around the real one."""

    def __init__(self, links: Any) -> None:
        self.frames = 0
        self._emit = links.hub.emit_message
        links.hub.emit_message = self.emit

    async def emit(self, data: bytes) -> None:
        self.frames += 1
        await self._emit(data)


async def test_calls_go_over_the_link_and_bypass_the_hub(hub: HubProcess) -> None:
    server = await connect(hub.url, token=hub.token)
    try:
        crasher = await server.get_plugin("crasher")
        kernel = next(iter(server.links.peers))
        assert kernel.endswith("/crasher")
        config = crasher["config"]
        assert (
            config["direct"].startswith("ws://127.0.0.1:")
            and config["direct_ticket"]
            and config["direct_proof"]
        )
        counting = Counting(server.links)
        assert [await crasher.ping() for _ in range(20)] == ["pong"] * 20
        assert await crasher.echo({"a": [1, 2, {"b": "c"}]}) == {"a": [1, 2, {"b": "c"}]}
        image = np.arange(1024 * 1024, dtype="uint16").reshape(
            1024, 1024
        )  # out of band, handles over the link
        assert np.array_equal(await crasher.invert(image), image.max() - image)
        with pytest.raises(Exception, match="kaboom-direct"):
            await crasher.boom("kaboom-direct")
        assert counting.frames == 0  # not one frame of those calls went through the hub
    finally:
        await server.disconnect()


async def test_a_ticket_the_hub_did_not_issue_is_refused(hub: HubProcess) -> None:
    server = await connect(hub.url, token=hub.token)
    try:
        config = (await server.get_plugin("crasher"))["config"]
        me = next(iter(server.links.peers)).split("/")[0] + "/" + server.config.client_id
        refused = [
            {},
            {direct.CALLER: me},
            {direct.CALLER: me, direct.TICKET: "0" * 64},
            {direct.CALLER: me.split("/")[0] + "/someone-else", direct.TICKET: config["direct_ticket"]},
            {direct.CALLER: "elsewhere/" + server.config.client_id, direct.TICKET: config["direct_ticket"]},
        ]
        for headers in refused:
            with pytest.raises(InvalidStatus) as caught:
                async with ws_connect(config["direct"], additional_headers=headers):
                    pass
            assert caught.value.response.status_code == 403, headers
        # the ticket the hub issued works only for the id it was issued to, and the kernel proves itself
        async with ws_connect(
            config["direct"], additional_headers={direct.CALLER: me, direct.TICKET: config["direct_ticket"]}
        ) as ws:
            assert await ws.recv() == config["direct_proof"]
    finally:
        await server.disconnect()


async def test_a_port_that_does_not_prove_it_is_the_kernel_is_not_used(hub: HubProcess) -> None:
    server = await connect(hub.url, token=hub.token)
    try:
        crasher = await server.get_plugin("crasher")
        await server.links.close()  # forget the link, then be introduced with a wrong proof
        assert not server.links.peers
        crasher["config"] = {**crasher["config"], "direct_proof": "f" * 64}
        await server.links.introduce(crasher)
        assert not server.links.peers
        counting = Counting(server.links)
        assert await crasher.ping() == "pong"  # through the hub
        assert counting.frames == 1
    finally:
        await server.disconnect()


async def test_links_can_be_turned_off(hub: HubProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEFLOW_DIRECT", "0")
    server = await connect(hub.url, token=hub.token)
    try:
        crasher = await server.get_plugin("crasher")
        assert not server.links.peers
        assert await crasher.ping() == "pong"
    finally:
        await server.disconnect()


async def test_a_kernel_that_dies_fails_the_calls_waiting_over_its_link_at_once(hub: HubProcess) -> None:
    server = await connect(hub.url, token=hub.token, method_timeout=120)
    try:
        crasher = await server.get_plugin("crasher")
        assert server.links.peers
        started = time.monotonic()
        with pytest.raises(Exception, match=r"disconnected before answering \(its direct link closed\)"):
            await asyncio.wait_for(crasher.slow_die(0.3), 60)
        assert time.monotonic() - started < 15
        # the caller heard it first, from its link; once the hub has too, the plugin starts again, linked
        deadline = time.monotonic() + 30
        while json.loads(hub.request("/api/plugins/crasher")[1])["status"]["state"] == "ready":
            assert time.monotonic() < deadline, "the hub never noticed the crash"
            await asyncio.sleep(0.05)
        crasher = await server.get_plugin("crasher")
        assert await crasher.ping() == "pong"
        assert server.links.peers
    finally:
        await server.disconnect()


async def test_quick_sync_ops_move_onto_the_kernel_loop_unless_declared_long_running(hub: HubProcess) -> None:
    server = await connect(hub.url, token=hub.token)
    try:
        crasher = await server.get_plugin("crasher")
        names = [await crasher.thread() for _ in range(20)]  # a preempted call may need a few more
        loop_thread = names[-1]
        assert all(name != loop_thread for name in names[:3]), names  # threads first
        assert names[-3:] == [loop_thread] * 3, names
        long_names = [await crasher.thread_long() for _ in range(20)]
        assert loop_thread not in long_names
    finally:
        await server.disconnect()


async def test_quick_calls_and_imjoy_rpc_calls_share_a_link(hub: HubProcess) -> None:
    """Values go as quick calls; a function among the arguments takes imjoy-rpc's path over the same link;
    a function in a result stays callable; errors come back with the callee's traceback."""
    server = await connect(hub.url, token=hub.token)
    try:
        crasher = await server.get_plugin("crasher")
        counting = Counting(server.links)
        waiting = server.rpc.open_sessions()
        assert await crasher.echo({"n": 1}) == {"n": 1}
        assert server.rpc.open_sessions() == waiting  # a quick call opens no imjoy-rpc session

        seen: list[int] = []

        def remember(value: int) -> int:
            seen.append(value)
            return value * 10

        assert await crasher.apply(7, remember) == 70 and seen == [7]
        counter = await crasher.counter(5)
        assert [await counter["next"]() for _ in range(3)] == [6, 7, 8]
        with pytest.raises(Exception, match=r"(?s)crasher.py.*ValueError: quick-boom"):
            await crasher.boom("quick-boom")
        assert counting.frames == 0
    finally:
        await server.disconnect()
