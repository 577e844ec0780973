"""Every HTTP and websocket door needs the token; the index page loads without it and never holds it."""

from __future__ import annotations

import json
import urllib.request

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

DOORS = [
    ("GET", "/api/hub"),
    ("GET", "/api/plugins"),
    ("POST", "/api/plugins"),
    ("GET", "/api/plugins/crasher"),
    ("DELETE", "/api/plugins/crasher"),
    ("POST", "/api/plugins/crasher/start"),
    ("POST", "/api/plugins/crasher/stop"),
    ("POST", "/api/plugins/crasher/restart"),
    ("GET", "/api/plugins/crasher/logs"),
    ("GET", "/api/samples"),
    ("GET", "/api/samples/nuclei-2d"),
    ("POST", "/api/images/read"),
    ("POST", "/api/images/write"),
]


@pytest.mark.parametrize(("method", "path"), DOORS)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_rest_doors_need_the_token(hub, method, path, token):
    body = {"url": "http://127.0.0.1:9/x.py"} if method == "POST" else None
    status, _ = hub.request(path, method, body, token=token)
    assert status in (401, 403), f"{method} {path} without a valid token gave {status}"


def test_token_in_query_or_header(hub):
    assert hub.request(f"/api/hub?token={hub.token}", token=None)[0] == 200
    assert hub.request("/api/hub")[0] == 200


@pytest.mark.parametrize("query", ["client_id=x", "client_id=x&token=wrong"])
async def test_websocket_needs_the_token(hub, query):
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(hub.url.replace("http", "ws") + "/ws?" + query):
            pass
    assert info.value.response.status_code == 403


async def test_websocket_rejects_bad_client_ids_and_workspaces(hub):
    base = hub.url.replace("http", "ws") + f"/ws?token={hub.token}"
    for query in [
        "",
        "&client_id=",
        "&client_id=../etc",
        "&client_id=workspace-manager",
        "&client_id=ok&workspace=other",
    ]:
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(base + query):
                pass
        assert info.value.response.status_code == 403, query


async def test_websocket_survives_garbage_frames(hub):
    url = hub.url.replace("http", "ws") + f"/ws?token={hub.token}&client_id=garbage-sender"
    async with ws_connect(url, compression=None) as ws:
        for junk in [b"", b"\xc1\xc1", b"\x93\x01\x02\x03", "text frame", b"\x81\xa4type\xa6method"]:
            await ws.send(junk)
        await ws.ping()
    assert hub.request("/api/hub")[0] == 200


def test_index_page_is_public_and_never_holds_the_token(hub):
    for path in ["/", f"/?token={hub.token}", "/no-such-page"]:
        status, body = hub.request(path, token=None)
        assert hub.token.encode() not in body, path
    status, body = hub.request("/", token=None)
    assert status == 200 and b"scopeflow" in body


def test_install_errors_are_clear_400s(hub):
    status, body = hub.request("/api/plugins", "POST", {"source": "def broken(:\n", "filename": "x.py"})
    assert status == 400 and b"x.py" in body
    status, body = hub.request("/api/plugins", "POST", {"nothing": 1})
    assert status == 400
    status, body = hub.request("/api/plugins", "POST", {"url": "ftp://example.invalid/p.py"})
    assert status == 400


def test_plugin_list_has_manifests_and_status(hub):
    data = hub.json("/api/plugins")
    by_id = {p["id"]: p for p in data["plugins"]}
    assert {"hello", "gaussian", "crasher", "caller", "broken-setup"} <= set(by_id)
    crasher = by_id["crasher"]
    assert crasher["sha256"] and len(crasher["sha256"]) == 64
    assert crasher["status"]["state"] in ("stopped", "starting", "ready", "crashed")
    invert = next(op for op in crasher["ops"] if op["name"] == "invert")
    assert invert["inputs"][0]["kind"] == "ndarray" and invert["inputs"][0]["axes"] == "yx"
    json.dumps(data)  # plain JSON all the way down


SHARED_PLUGIN = """<config lang="json">
{"name": "Shared Thing", "type": "native-python", "version": "1.2.3", "description": "sent by a colleague"}
</config>
<script lang="python">
from imjoy import api

class ImJoyPlugin:
    def setup(self):
        api.log("shared plugin up")

    def triple(self, x):
        return 3 * x

api.export(ImJoyPlugin())
</script>
"""


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server for plugin files, standing in for a colleague's URL."""
    import functools
    import http.server
    import threading

    (tmp_path / "shared.imjoy.html").write_text(SHARED_PLUGIN)
    (tmp_path / "broken.imjoy.html").write_text('<config lang="json">{"name": </config>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_install_from_url_previews_then_installs_then_runs(hub, file_server):
    from scopeflow.rpc.client import connect

    url = f"{file_server}/shared.imjoy.html"
    preview = hub.json("/api/plugins", "POST", {"url": url, "preview": True})
    assert preview["id"] == "shared-thing" and preview["version"] == "1.2.3"
    assert "shared-thing" not in {p["id"] for p in hub.json("/api/plugins")["plugins"]}, (
        "preview installs nothing"
    )
    status, body = hub.request("/api/plugins", "POST", {"url": url})
    assert status == 201, body
    installed = json.loads(body)
    assert installed["source_url"] == url and len(installed["sha256"]) == 64
    assert "shared-thing" in {p["id"] for p in hub.json("/api/plugins")["plugins"]}
    server = await connect(hub.url, token=hub.token)
    try:
        plugin = await server.get_plugin("shared-thing")
        assert await plugin.triple(5) == 15
    finally:
        await server.disconnect()
    assert hub.request("/api/plugins/shared-thing", "DELETE")[0] == 204
    assert "shared-thing" not in {p["id"] for p in hub.json("/api/plugins")["plugins"]}


def test_install_from_bad_urls_says_why(hub, file_server):
    status, body = hub.request("/api/plugins", "POST", {"url": f"{file_server}/broken.imjoy.html"})
    assert status == 400 and b"broken.imjoy.html" in body
    status, body = hub.request("/api/plugins", "POST", {"url": f"{file_server}/missing.imjoy.html"})
    assert status == 400 and b"404" in body


def test_builtin_plugins_cannot_be_deleted(hub):
    assert hub.request("/api/plugins/hello", "DELETE")[0] == 403
    assert "hello" in {p["id"] for p in hub.json("/api/plugins")["plugins"]}


async def test_large_and_malformed_frames_keep_the_socket_open(hub):
    """Frames far above tornado's 10 MiB default pass; a garbage payload to the manager is dropped."""
    import msgpack

    url = hub.url.replace("http", "ws") + f"/ws?token={hub.token}&client_id=big-sender"
    async with ws_connect(url, compression=None, max_size=None) as ws:
        big = msgpack.packb({"type": "method", "to": "nobody-here", "method": "x"}) + b"\0" * (40 * 2**20)
        await ws.send(big)
        garbage = msgpack.packb({"type": "method", "to": "workspace-manager", "method": "x"}) + b"\xc1\xc1"
        await ws.send(garbage)
        pong = await ws.ping()
        await pong  # still connected
    assert hub.request("/api/hub")[0] == 200


async def test_refused_connections_do_not_log_the_token(hub):
    url = hub.url.replace("http", "ws") + f"/ws?client_id=bad/id&token={hub.token}"
    with pytest.raises(InvalidStatus):
        async with ws_connect(url):
            pass
    leaks = [line for line in hub.log().splitlines() if hub.token in line and "/?token=" not in line]
    assert leaks == []


def test_a_preview_nobody_confirmed_stays_out_of_the_local_network(hub):
    for url in ("http://127.0.0.1:9/x.py", "http://localhost:9/x.py", "http://192.168.1.1/x.py"):
        status, body = hub.request("/api/plugins", "POST", {"url": url, "preview": True, "public_only": True})
        assert status == 400 and b"loopback, private or link-local" in body, (url, body)
    status, body = hub.request("/api/plugins", "POST", {"url": "http://127.0.0.1:9/x.py", "preview": True})
    assert status == 400 and b"could not fetch" in body and b"private" not in body  # asked for: it was tried


def test_a_token_in_the_url_leaves_no_login_cookie(hub):
    req = urllib.request.Request(f"{hub.url}/?token={hub.token}")
    with urllib.request.urlopen(req) as res:
        assert res.status == 200
        assert "Set-Cookie" not in res.headers
    status, _ = hub.request(f"/api/hub?token={hub.token}", token=None)
    assert status == 200
    # a cookie jupyter-server would have set in the past opens nothing
    port = hub.url.rsplit(":", 1)[1]
    cookie = {"Cookie": f"username-127-0-0-1-{port}=anything; _xsrf=x"}
    assert hub.request("/api/hub", token=None, headers=cookie)[0] == 403


def policy(url: str) -> tuple[dict[str, list[str]], bytes]:
    """The Content-Security-Policy of a page, directive by directive, and the page."""
    with urllib.request.urlopen(url) as res:
        header = res.headers["Content-Security-Policy"]
        body = res.read()
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}, body


def test_the_app_page_runs_only_the_hubs_scripts(hub):
    csp, _ = policy(f"{hub.url}/?token={hub.token}")
    assert csp["script-src"] == ["'self'"]  # no inline script, no eval
    assert csp["connect-src"] == ["'self'"] and csp["default-src"] == ["'self'"]
    assert csp["object-src"] == csp["base-uri"] == csp["form-action"] == csp["frame-ancestors"] == ["'none'"]


def test_the_window_page_is_public_sandboxed_and_offline(hub):
    csp, body = policy(f"{hub.url}/window.html?token={hub.token}")
    assert hub.token.encode() not in body and b"/window.js" in body
    assert csp["sandbox"] == ["allow-scripts"]  # no same-origin, even when opened on its own
    assert "'unsafe-inline'" in csp["script-src"] and "'self'" in csp["script-src"]
    assert hub.url in csp["script-src"]  # for browsers that match 'self' against the sandbox's opaque origin
    assert csp["connect-src"] == ["'none'"] and csp["frame-ancestors"] == ["'self'", hub.url]
    status, script = hub.request("/window.js", token=None)
    assert status == 200 and b"scopeflow/window-parts" in script
