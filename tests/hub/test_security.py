"""The hub's token goes nowhere it could be read: not the hub's command line or environment, no file in the
data dir, no log line, no error page, no plugin kernel; it is compared in constant time; and jupyter-server's
own endpoints, which scopeflow does not use, are not mounted.

The hub here is started as the tests start every hub (conftest.start_hub): the token in ``SCOPEFLOW_TOKEN``,
stdout and stderr to a log file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.rpc.client import connect

pytestmark = pytest.mark.hub

linux_only = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")

# A plugin that looks for the token wherever a plugin kernel, running as the same user as the hub, can look
# without special privileges: its own environment and command line, the hub's (its parent's) command line,
# environment and output (the log file, through /proc/PID/fd), and every file of the hub's data dir.
SNOOP = '''
"""Test plugin: everything a plugin kernel can read about the hub that started it."""

import os
from pathlib import Path

from scopeflow import op

PLUGIN = {"id": "snoop", "name": "Snoop", "version": "1.0.0", "description": "reads what it can"}
LIMIT = 4 << 20


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read(LIMIT).decode("utf-8", "replace")
    except OSError as exc:
        return f"unreadable: {exc}"


@op
def findings() -> dict:
    found = {"own environ": repr(dict(os.environ)), "own cmdline": _read("/proc/self/cmdline")}
    hub = os.getppid()
    found["hub pid"] = str(hub)
    for what in ("cmdline", "environ"):
        found[f"hub {what}"] = _read(f"/proc/{hub}/{what}")
    for fd in ("1", "2"):
        found[f"hub fd {fd}: " + os.path.realpath(f"/proc/{hub}/fd/{fd}")] = _read(f"/proc/{hub}/fd/{fd}")
    runtime = os.environ.get("JUPYTER_RUNTIME_DIR", "")
    data = Path(runtime).parent if runtime else Path.cwd().parent
    found["data dir"] = str(data)
    for path in sorted(data.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[f"file {path}"] = _read(path)
    return found
'''


@pytest.fixture(scope="module")
def secure_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("secure")
    plugins = tmp / "plugins"
    plugins.mkdir()
    (plugins / "snoop.py").write_text(SNOOP)
    hub = start_hub(tmp, "--plugins-dir", str(plugins), token="sf-" + secrets.token_urlsafe(24))
    yield hub
    stop_hub(hub)


def proc(pid: int, what: str) -> bytes:
    return Path(f"/proc/{pid}/{what}").read_bytes()


@linux_only
def test_the_token_is_not_on_the_hubs_command_line(secure_hub):
    """Every local user can read /proc/PID/cmdline (ps): the hub got its token in SCOPEFLOW_TOKEN, and
    nothing put it on a command line."""
    cmdline = proc(secure_hub.process.pid, "cmdline")
    assert b"scopeflow.cli.main" in cmdline  # it is the hub we mean
    assert secure_hub.token.encode() not in cmdline, cmdline


@linux_only
def test_the_token_is_not_in_the_hubs_environment(secure_hub):
    """/proc/PID/environ keeps a process's starting environment whatever os.environ becomes later: the hub
    starts itself again without SCOPEFLOW_TOKEN once it has read it."""
    environ = proc(secure_hub.process.pid, "environ")
    assert b"JUPYTER_RUNTIME_DIR=" in environ or b"PATH=" in environ
    assert secure_hub.token.encode() not in environ
    assert b"SCOPEFLOW_TOKEN=" not in environ


def test_no_file_of_the_data_dir_holds_the_token(secure_hub):
    """jupyter-server writes jpserver-PID.json and jpserver-PID-open.html (both with the token) into the
    runtime dir; the hub writes neither, and nothing else in its data dir holds the token."""
    secure_hub.json("/api/plugins")  # the hub is up and has written what it writes at start
    runtime = secure_hub.data_dir / "runtime"
    assert runtime.is_dir()
    assert not list(runtime.glob("jpserver-*")), sorted(p.name for p in runtime.iterdir())
    token = secure_hub.token.encode()
    holding = [p for p in secure_hub.data_dir.rglob("*") if p.is_file() and token in p.read_bytes()]
    assert holding == []


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/lab", "/static/nope.js", "/api/kernels/x/y"])
def test_error_pages_do_not_hold_the_token(secure_hub, path):
    """jupyter-server's HTML pages embed the token (data-jupyter-api-token) for a token-authenticated
    request; its 404 for any unknown path was such a page."""
    token = secure_hub.token
    for query, auth in [(f"?token={token}", None), ("", token), (f"?token={token}&x=1", token)]:
        status, body = secure_hub.request(path + query, token=auth)
        assert status == 404, (path, status)
        assert token.encode() not in body
        assert urllib.parse.quote(token).encode() not in body


async def test_a_websocket_refusal_page_does_not_hold_the_token(secure_hub):
    """A refused websocket answers with a jupyter HTML error page, after the token was accepted."""
    url = secure_hub.url.replace("http", "ws") + f"/ws?token={secure_hub.token}&client_id=../x"
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(url):
            pass
    response = info.value.response
    assert response.status_code == 403
    assert secure_hub.token.encode() not in response.body
    assert b"client_id must be" in response.body  # the message still says what was wrong


JUPYTER_ENDPOINTS = [
    ("GET", "/api/kernels"),
    ("POST", "/api/kernels"),
    ("GET", "/api/kernels/00000000-0000-0000-0000-000000000000/channels"),
    ("GET", "/api/contents"),
    ("GET", "/api/contents/x"),
    ("PUT", "/api/contents/x.txt"),
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
    ("POST", "/api/shutdown"),
    ("GET", "/api/terminals"),
    ("GET", "/api/kernelspecs"),
    ("GET", "/kernelspecs/python3/logo-64x64.png"),
    ("GET", "/api/nbconvert"),
    ("GET", "/nbconvert/html/x.ipynb"),
    ("GET", "/api/config/x"),
    ("GET", "/api/me"),
    ("GET", "/api/status"),
    ("GET", "/api"),
    ("GET", "/api/spec.yaml"),
    ("GET", "/api/security/csp-report"),
    ("GET", "/api/events/subscribe"),
    ("GET", "/files/x"),
    ("GET", "/view/x"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/logout"),
    ("GET", "/metrics"),
    ("GET", "/static/favicon.ico"),
    ("GET", "/robots.txt"),
]


@pytest.mark.parametrize(("method", "path"), JUPYTER_ENDPOINTS)
def test_jupyters_own_endpoints_are_not_mounted(secure_hub, method, path):
    """With the token, each of them is a 404: not refused, not there (the hub starts its kernels through
    jupyter-server's kernel manager, in code; no HTTP door of jupyter's is mounted)."""
    body = {} if method in ("POST", "PUT") else None
    status, _ = secure_hub.request(path, method, body)
    assert status == 404, f"{method} {path} gave {status}"
    assert secure_hub.request("/api/hub")[0] == 200  # and the hub is still up (no /api/shutdown)


def test_a_wrong_or_odd_token_is_refused_not_an_error(secure_hub):
    """The check compares bytes in constant time; a token that is not ASCII (which hmac.compare_digest
    refuses as a str) is a 403, not a 500."""
    token = secure_hub.token
    for wrong in [token[:-1], token + "x", "é" + token[1:], "\u2603", token.upper(), token[::-1]]:
        if wrong.isascii():  # a header is latin-1
            assert secure_hub.request("/api/hub", token=wrong)[0] == 403, wrong
        quoted = urllib.parse.quote(wrong)
        assert secure_hub.request(f"/api/hub?token={quoted}", token=None)[0] == 403, wrong
    assert secure_hub.request("/api/hub")[0] == 200


async def test_a_plugin_kernel_cannot_find_the_token(secure_hub):
    """The snoop plugin reports what its kernel can read: its environment and command line, the hub's
    command line, environment and output, every file in the data dir. The token is in none of them."""
    server = await connect(secure_hub.url, token=secure_hub.token, reconnect=False)
    try:
        snoop = await server.get_plugin("snoop")
        found = dict(await snoop.findings())
    finally:
        await server.disconnect()
    # it did look where we mean
    assert found["hub pid"] == str(secure_hub.process.pid)
    assert "scopeflow.cli.main" in found["hub cmdline"]
    assert "PATH=" in found["hub environ"] or "unreadable" in found["hub environ"]
    assert any(k.startswith("file ") and "/runtime/kernel-" in k for k in found), sorted(found)
    assert any(k.startswith("hub fd 1: ") and k.endswith("hub.log") for k in found), sorted(found)
    assert "Open this URL in a browser" in "".join(v for k, v in found.items() if k.startswith("hub fd"))
    leaks = [where for where, text in found.items() if secure_hub.token in text]
    assert leaks == []
    assert "SCOPEFLOW_TOKEN" not in found["own environ"] and "JUPYTER_TOKEN" not in found["own environ"]


def test_the_log_does_not_hold_the_token(secure_hub):
    """Request lines (jupyter's log_request, tornado's warnings), refusals and the start-up message: none
    holds the token. The URL printed at start says ``?token=...`` when the token was given and the output
    goes to a file; run last in this module, so that every request above is in the log."""
    token = secure_hub.token
    secure_hub.request(f"/api/hub?token={token}", token=None)
    secure_hub.request(f"/nope?token={token}&reconnection_token={token}", token=None)
    secure_hub.request(f"/api/plugins/nope?token={token}", token=None)
    secure_hub.request("/api/hub", token=token + "-wrong")
    asyncio.run(asyncio.sleep(0.5))  # the log handler flushes per line; let the last one land
    log = secure_hub.log()
    assert "Open this URL in a browser" in log and "?token=..." in log
    assert "?token=[secret]" in log  # the request lines are there, redacted
    assert token not in log


def test_serve_argv_never_holds_the_token(monkeypatch):
    """What scopeflow passes to jupyter-server's command line parser has no token, whatever was given."""
    from scopeflow.cli.main import parser, serve_argv

    monkeypatch.setenv("SCOPEFLOW_TOKEN", "from-the-environment")
    argv = serve_argv(parser().parse_args(["serve", "--token", "from-the-command-line"]))
    assert not any("from-the" in a or a.startswith("--IdentityProvider.token") for a in argv), argv


def test_the_token_check_is_constant_time(monkeypatch):
    """The identity provider's check (REST, websocket) goes through hmac.compare_digest, on bytes."""
    from scopeflow.hub import auth

    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    provider = auth.TokenIdentityProvider(token="s3cret-token")

    class Handler:
        request = type("R", (), {"remote_ip": "127.0.0.1", "headers": {}})()
        log = provider.log

        def __init__(self, given: str) -> None:
            self.given = given

        def get_argument(self, name: str, default: str = "") -> str:
            return self.given if name in ("token", "password") else default

    assert asyncio.run(provider.get_user_token(Handler("s3cret-token"))) is not None
    assert asyncio.run(provider.get_user_token(Handler("s3cret-tokeX"))) is None
    assert asyncio.run(provider.get_user_token(Handler("☃"))) is None  # no TypeError
    assert provider.process_login_form(Handler("nope")) is None
    assert calls and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)
    assert provider.get_handlers() == []  # no /login, /logout
    assert auth.same_secret("a-token", "a-token") and not auth.same_secret("", "")
    assert not auth.same_secret(None, "x") and not auth.same_secret("x", None)


def test_log_records_are_redacted(caplog):
    """Whatever logger and handler: a token in a message, its arguments or a traceback is replaced."""
    import logging

    from scopeflow._http import redact, redact_logs

    token = "tok-" + secrets.token_hex(8)
    redact_logs(token)
    log = logging.getLogger("scopeflow.test.redaction")
    with caplog.at_level(logging.INFO, logger="scopeflow.test.redaction"):
        log.info("GET /api/hub?token=%s&x=1", "abc")
        log.info("request %r", {"uri": f"/ws?client_id=a&plugin_secret=zz&token={token}"})
        log.warning("Authorization: token %s", token)
        try:
            raise ValueError(f"bad {token}")
        except ValueError:
            log.exception("failed")
    text = "\n".join(caplog.messages) + "\n".join(r.exc_text or "" for r in caplog.records)
    assert token not in text and "token=abc" not in text and "plugin_secret=zz" not in text
    assert "token=[secret]" in text and "ValueError" in text
    assert redact(f"x?token={token}") == "x?token=[secret]"


@linux_only
def test_a_token_given_on_the_command_line_leaves_it(tmp_path):
    """``scopeflow serve --token T`` warns, and T is gone from the hub's command line once it runs."""
    import subprocess
    import time

    from conftest import free_port
    from scopeflow.cli.launcher import announced_url

    token = "argv-" + secrets.token_hex(12)
    log_path = tmp_path / "hub.log"
    env = {k: v for k, v in os.environ.items() if k != "SCOPEFLOW_TOKEN"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scopeflow.cli.main", "serve", "--no-browser", "--port", str(free_port()),
             "--data-dir", str(tmp_path / "data"), "--token", token],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while announced_url(log_path.read_text(errors="replace")) is None:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.2)
        assert token.encode() not in proc(process.pid, "cmdline")
        assert token.encode() not in proc(process.pid, "environ")
        text = log_path.read_text()
        assert "--token on a command line is visible to every user" in text
        assert token not in text
    finally:
        process.terminate()
        process.wait(30)
