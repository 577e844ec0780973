"""Router: frame rewriting, routing, debts of dead peers, bad frames."""

from __future__ import annotations

import msgpack
import pytest

from scopeflow.hub.router import FrameError, Router, read_main


class Inbox:
    def __init__(self) -> None:
        self.frames: list[tuple[dict, dict | None]] = []

    def send(self, data: bytes) -> None:
        unpacker = msgpack.Unpacker(strict_map_key=False)
        unpacker.feed(data)
        objects = list(unpacker)
        self.frames.append((objects[0], objects[1] if len(objects) > 1 else None))


def frame(main: dict, extra: dict | None = None) -> bytes:
    return msgpack.packb(main) + (msgpack.packb(extra) if extra is not None else b"")


def cache_call(verb: str, to: str, session: str, args: list) -> bytes:
    """A frame calling ``message_cache.<verb>`` of ``to``: how imjoy-rpc sends large messages."""
    method = f"services.built-in.message_cache.{verb}"
    return frame({"type": "method", "to": to, "method": method, "session": session}, {"args": args})


@pytest.fixture
def router() -> tuple[Router, Inbox, Inbox]:
    r = Router("ws1")
    a, b = Inbox(), Inbox()
    r.add("a", a)
    r.add("b", b)
    return r, a, b


def test_forwards_payload_untouched_and_rewrites_header(router):
    r, a, b = router
    payload = {"args": [b"\x00" * 1000, {"nested": [1, 2]}]}
    r.route("ws1/a", frame({"type": "method", "to": "b", "from": "forged", "method": "m"}, payload))
    main, extra = b.frames[0]
    assert main["to"] == "ws1/b"
    assert main["from"] == "ws1/a"
    assert main["user"]["id"]
    assert extra == payload
    assert a.frames == []


def test_call_to_missing_peer_is_rejected_at_once(router):
    r, a, _ = router
    r.route("ws1/a", frame({"type": "method", "to": "ghost", "method": "x", "session": "s1"}))
    main, extra = a.frames[0]
    assert main["method"] == "s1.reject"
    assert main["from"] == "ws1/ghost"
    assert extra["args"][0]["_rtype"] == "error"
    assert "not connected" in extra["args"][0]["_rvalue"]


def test_pending_calls_fail_when_callee_disconnects(router):
    r, a, _ = router
    r.route("ws1/a", frame({"type": "method", "to": "b", "method": "slow", "session": "s1"}))
    r.route("ws1/a", frame({"type": "method", "to": "b", "method": "done", "session": "s2"}))
    # b answers s2, not s1
    r.route("ws1/b", frame({"type": "method", "to": "ws1/a", "method": "s2.resolve"}, {"args": [1]}))
    assert r.routes["ws1/b"].owed == {"s1": "ws1/a"}
    gone: list[str] = []
    r.on_disconnect.append(lambda peer_id, peer: gone.append(peer_id))
    r.remove("ws1/b")
    rejects = [m for m, _ in a.frames if m["method"].endswith(".reject")]
    assert [m["method"] for m in rejects] == ["s1.reject"]
    assert gone == ["ws1/b"]


def test_chunked_call_session_is_tracked(router):
    r, a, _ = router
    inner = frame(
        {"type": "method", "to": "ws1/b", "method": "big", "session": "hidden"}, {"args": [b"x" * 100]}
    )
    r.route(
        "ws1/a",
        cache_call("create", "b", "c1", ["k1", False]),
    )
    r.route(
        "ws1/a",
        cache_call("append", "b", "c2", ["k1", inner[:-50], False]),
    )
    assert r.routes["ws1/b"].owed.get("hidden") == "ws1/a"
    r.remove("ws1/b")
    assert any(m["method"] == "hidden.reject" for m, _ in a.frames)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        msgpack.packb([1, 2]),
        msgpack.packb({"type": "method"}),
        msgpack.packb({"type": 1, "to": "b"}),
    ],
)
def test_bad_frames_are_dropped(router, data):
    r, a, b = router
    r.route("ws1/a", data)
    assert a.frames == [] and b.frames == []
    with pytest.raises(FrameError):
        read_main(data)


def test_large_result_sent_in_chunks_settles_the_debt(router):
    r, a, _ = router
    r.route("ws1/a", frame({"type": "method", "to": "b", "method": "big", "session": "s9"}))
    assert r.routes["ws1/b"].owed == {"s9": "ws1/a"}
    inner = frame({"type": "method", "to": "ws1/a", "method": "s9.resolve"}, {"args": [b"x" * 100]})
    r.route(
        "ws1/b",
        cache_call("append", "a", "c1", ["k9", inner, False]),
    )
    assert "s9" not in r.routes["ws1/b"].owed
    r.remove("ws1/b")
    assert not any(m["method"] == "s9.reject" for m, _ in a.frames)


def test_odd_chunk_keys_do_not_break_routing(router):
    r, _, b = router
    r.route(
        "ws1/a",
        cache_call("append", "b", "c1", [[1, 2], b"x", False]),
    )
    assert len(b.frames) == 1
