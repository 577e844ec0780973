"""The registry: scanning plugin directories, installing from source and from URLs (a loopback server)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from scopeflow._util import BUILTIN_PLUGINS
from scopeflow.plugins.manifest import ManifestError
from scopeflow.plugins.registry import Registry, normalize_url
from scopeflow.plugins.shorthand import parse_shorthand, plugin_url

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures" / "plugins"
GAUSSIAN = (BUILTIN_PLUGINS / "gaussian.py").read_text()
HELLO = (BUILTIN_PLUGINS / "hello.imjoy.html").read_text()
PINGER = "from scopeflow import op\n\n\n@op\ndef ping() -> str:\n    return 'pong'\n"


def copy(names: list[str], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / name, directory / name)
    return directory


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    builtin = copy(["image_tools.imjoy.html", "viewer.imjoy.html", "helper.py"], tmp_path / "builtin")
    (builtin / "hello.imjoy.html").write_text(HELLO)
    return Registry(builtin, [], tmp_path / "data")


# --- scanning ---------------------------------------------------------------------------------------------


def test_scan_lists_plugins_and_skips_non_plugins(registry: Registry) -> None:
    registry.scan()
    assert [m.id for m in registry.list()] == ["hello", "image-tools", "viewer"]
    assert registry.errors == [] and registry.shadowed == []
    assert registry.get("viewer").type == "window"


def test_real_builtin_directory() -> None:
    registry = Registry(BUILTIN_PLUGINS, [], ROOT / "does-not-exist")
    registry.scan()
    ids = [m.id for m in registry.list()]
    assert "hello" in ids and "gaussian" in ids
    assert registry.errors == []
    assert registry.is_builtin(registry.get("gaussian"))


def test_an_installed_copy_of_a_built_in_is_not_built_in(tmp_path: Path) -> None:
    registry = Registry(BUILTIN_PLUGINS, [], tmp_path / "data")
    registry.scan()
    copy = registry.install_source(GAUSSIAN, "gaussian.py")  # the same file, installed: shadows the built-in
    current = registry.get("gaussian")
    assert copy.sha256 == current.sha256 and not registry.is_builtin(current)


def test_broken_files_are_reported_and_do_not_stop_the_scan(tmp_path: Path) -> None:
    builtin = copy(["bad_json.imjoy.html", "missing_name.imjoy.html", "viewer.imjoy.html"], tmp_path / "b")
    (builtin / "syntax.py").write_text("PLUGIN = {'name': 'x'}\n\ndef broken(:\n    pass\n")
    (builtin / "empty.imjoy.html").write_text("")
    (builtin / "latin1.imjoy.html").write_bytes(b'<config>{"name": "\xe9"}</config>')
    registry = Registry(builtin, [], tmp_path / "data")
    registry.scan()
    assert [m.id for m in registry.list()] == ["viewer"]
    errors = {Path(e["path"]).name: e["error"] for e in registry.errors}
    assert errors["bad_json.imjoy.html"].startswith("bad_json.imjoy.html: config: invalid JSON at line 5")
    assert errors["missing_name.imjoy.html"].startswith("missing_name.imjoy.html: config.name: required")
    assert errors["syntax.py"].startswith("syntax.py: line 3: SyntaxError")
    assert errors["empty.imjoy.html"] == "empty.imjoy.html: empty file"
    assert errors["latin1.imjoy.html"].startswith("latin1.imjoy.html: not UTF-8 text")
    assert all(e["path"] == str(builtin / name) for name, e in zip(errors, registry.errors, strict=True))


def test_later_directories_shadow_earlier_ones(tmp_path: Path, registry: Registry) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "hello.py").write_text('PLUGIN = {"id": "hello", "name": "Hello again"}\n')
    registry = Registry(registry.builtin_dir, [extra, tmp_path / "missing"], tmp_path / "data")
    registry.scan()
    assert registry.get("hello").name == "Hello again"
    assert registry.shadowed == [
        {
            "id": "hello",
            "path": str(tmp_path / "builtin" / "hello.imjoy.html"),
            "by": str(extra / "hello.py"),
        }
    ]
    installed = registry.install_source(HELLO.replace('"name": "Hello"', '"name": "Hello three"'), "h.html")
    assert registry.get("hello") == installed and installed.name == "Hello three"  # installed ones win
    assert [s["by"] for s in registry.shadowed] == [str(extra / "hello.py"), installed.path]


def test_get_rescans_for_unknown_ids_and_source_returns_the_text(tmp_path: Path, registry: Registry) -> None:
    registry.scan()
    with pytest.raises(KeyError):
        registry.get("pinger")
    assert registry.builtin_dir is not None
    (registry.builtin_dir / "pinger.py").write_text(PINGER)
    assert registry.get("pinger").ops[0].name == "ping"
    assert registry.source("pinger") == PINGER
    changed = PINGER + "\n\n@op\ndef pong() -> str:\n    return 'ping'\n"
    (registry.builtin_dir / "pinger.py").write_text(changed)
    assert registry.source("pinger") == changed
    assert [op.name for op in registry.get("pinger").ops] == ["ping", "pong"]  # rescanned


# --- installing -------------------------------------------------------------------------------------------


def plugin_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_install_source_writes_file_version_copy_and_index(registry: Registry) -> None:
    registry.scan()
    manifest = registry.install_source(GAUSSIAN, "blur-anything.py", source_url="https://example.org/g.py")
    plugins = registry.installed_dir
    assert manifest.id == "gaussian" and manifest.path == str(plugins / "gaussian.py")
    assert manifest.source_url == "https://example.org/g.py"
    assert (plugins / "gaussian.py").read_text() == GAUSSIAN
    assert plugin_files(plugins) == [".versions", "gaussian.py", "index.json"]  # no temporary files left
    first = f"gaussian-{manifest.sha256[:12]}.py"
    assert plugin_files(registry.versions_dir) == [first]
    index = json.loads((plugins / "index.json").read_text())
    assert index["gaussian"]["source_url"] == "https://example.org/g.py"
    assert index["gaussian"]["sha256"] == manifest.sha256

    newer = registry.install_source(GAUSSIAN.replace('"0.1.0"', '"0.2.0"').encode(), "gaussian.py")
    assert newer.version == "0.2.0" and registry.get("gaussian").version == "0.2.0"
    assert newer.source_url is None  # installed from source this time
    assert plugin_files(registry.versions_dir) == sorted([first, f"gaussian-{newer.sha256[:12]}.py"])
    fresh = Registry(None, [], plugins.parent)
    fresh.scan()
    assert [m.id for m in fresh.list()] == ["gaussian"] and fresh.errors == []


def test_install_keeps_the_source_url_across_scans(tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    registry.install_source(HELLO, "hello.imjoy.html", source_url="https://example.org/hello.imjoy.html")
    fresh = Registry(None, [], tmp_path)
    fresh.scan()
    assert fresh.get("hello").source_url == "https://example.org/hello.imjoy.html"


def test_install_of_another_format_replaces_the_old_file_and_keeps_it(tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    old = registry.install_source('PLUGIN = {"id": "hello", "name": "Hello"}\n', "hello.py")
    new = registry.install_source(HELLO, "hello.html")
    assert new.path == str(registry.installed_dir / "hello.imjoy.html")
    assert not (registry.installed_dir / "hello.py").exists()
    assert (registry.versions_dir / f"hello-{old.sha256[:12]}.py").exists()
    assert [m.id for m in registry.list()] == ["hello"]


def test_install_replaces_a_hand_placed_file_of_the_same_id(tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    registry.installed_dir.mkdir(parents=True)
    (registry.installed_dir / "mine.py").write_text('PLUGIN = {"id": "hello", "name": "Mine"}\n')
    installed = registry.install_source(HELLO, "hello.imjoy.html")
    assert registry.get("hello") == installed and installed.name == "Hello"
    assert not (registry.installed_dir / "mine.py").exists()
    assert len(list(registry.versions_dir.glob("hello-*.py"))) == 1  # kept


def test_install_rejects_a_bad_plugin_and_stores_nothing(tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    with pytest.raises(ManifestError, match=r"^bad\.py: line 1: SyntaxError"):
        registry.install_source("def (:\n", "bad.py")
    assert not registry.installed_dir.exists()


def test_install_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(None, [], tmp_path)
    registry.install_source(PINGER, "pinger.py")

    real_replace = os.replace

    def fail(src: str, dst: str) -> None:  # the version copy is written, the plugin file is not
        if Path(dst).name == "pinger.py":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        registry.install_source(PINGER + "# changed\n", "pinger.py")
    monkeypatch.undo()
    assert (registry.installed_dir / "pinger.py").read_text() == PINGER  # the old file is intact
    leftovers = [p.name for p in registry.installed_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert len(list(registry.versions_dir.iterdir())) == 2


# --- removing ---------------------------------------------------------------------------------------------


def test_remove_installed_plugin_and_refuse_builtins(registry: Registry) -> None:
    registry.scan()
    with pytest.raises(PermissionError, match="hello is not an installed plugin"):
        registry.remove("hello")
    installed = registry.install_source(
        HELLO.replace('"name": "Hello"', '"name": "Mine"'), "hello.imjoy.html"
    )
    assert registry.get("hello").name == "Mine"
    registry.remove("hello")
    assert not Path(str(installed.path)).exists()
    assert (registry.versions_dir / f"hello-{installed.sha256[:12]}.imjoy.html").exists()  # nothing lost
    assert registry.get("hello").name == "Hello"  # the built-in is back
    assert "hello" not in json.loads((registry.installed_dir / "index.json").read_text())
    with pytest.raises(KeyError):
        registry.remove("nope")


# --- fetching from URLs (a loopback server, never the internet) -------------------------------------------

ROUTES: dict[str, tuple[int, bytes]] = {
    "/plugins/gaussian.py": (200, GAUSSIAN.encode()),
    "/plugins/hello.imjoy.html": (200, HELLO.encode()),
    "/raw-python": (200, PINGER.encode()),
    "/raw-imjoy": (200, HELLO.encode()),
    "/big.py": (200, b"#" * 4000),
    "/latin1.py": (200, "PLUGIN = {'name': 'caf\xe9'}\n".encode("latin-1")),
    "/bad.imjoy.html": (200, (FIXTURES / "missing_name.imjoy.html").read_bytes()),
    "/gone.py": (404, b"not found"),
    "/error.py": (500, b"oops"),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/plugins/gaussian.py")
            self.end_headers()
            return
        if self.path == "/chunked.py":  # no Content-Length: the size is known only while reading
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(4):
                self.wfile.write(b"200\r\n" + b"#" * 0x200 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        status, body = ROUTES.get(self.path, (404, b"no such route"))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on a too large download is expected


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_fetch(server: str, registry: Registry) -> None:
    url, text = await registry.fetch(f"{server}/plugins/gaussian.py")
    assert (url, text) == (f"{server}/plugins/gaussian.py", GAUSSIAN)
    _, moved = await registry.fetch(f"{server}/moved")
    assert moved == GAUSSIAN


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/gone.py", "HTTP 404"),
        ("/error.py", "HTTP 500"),
        ("/latin1.py", "not UTF-8 text"),
        ("/big.py", r"larger than 1000 bytes \(4000\)"),
        ("/chunked.py", r"download stopped: larger than 1000 bytes"),
    ],
)
async def test_fetch_errors(
    server: str, registry: Registry, path: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        await registry.fetch(f"{server}{path}", max_bytes=1000)
    assert not isinstance(info.value, ManifestError)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # no "uncaught exception" logs


async def test_fetch_within_the_limit(server: str, registry: Registry) -> None:
    assert (await registry.fetch(f"{server}/chunked.py", max_bytes=2048))[1] == "#" * 2048
    assert (await registry.fetch(f"{server}/big.py", max_bytes=4000))[1] == "#" * 4000


async def test_fetch_refuses_other_schemes_and_reports_unreachable_hosts(registry: Registry) -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/a.py", "javascript:alert(1)", "no url"):
        with pytest.raises(ValueError, match="not an http"):
            await registry.fetch(url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: the connection is refused
        with pytest.raises(ValueError, match="could not fetch"):
            await registry.fetch(f"http://127.0.0.1:{port}/a.py", timeout=5)


async def test_preview_url_stores_nothing(server: str, registry: Registry) -> None:
    registry.scan()
    manifest = await registry.preview_url(f"{server}/plugins/gaussian.py")
    assert manifest.id == "gaussian" and manifest.source_url == f"{server}/plugins/gaussian.py"
    assert manifest.path is None
    assert not registry.installed_dir.exists()
    with pytest.raises(KeyError):
        registry.get("gaussian")


async def test_install_url(server: str, registry: Registry) -> None:
    manifest = await registry.install_url(f"{server}/plugins/gaussian.py")
    assert manifest.path == str(registry.installed_dir / "gaussian.py")
    assert registry.get("gaussian").source_url == f"{server}/plugins/gaussian.py"
    assert registry.source("gaussian") == GAUSSIAN


async def test_install_url_without_suffix_sniffs_the_format(server: str, tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    assert (await registry.install_url(f"{server}/raw-python")).format == "python"
    assert (await registry.install_url(f"{server}/raw-imjoy")).format == "imjoy-html"
    assert plugin_files(registry.installed_dir) == [
        ".versions",
        "hello.imjoy.html",
        "index.json",
        "raw-python.py",
    ]


async def test_install_url_of_a_malformed_plugin(server: str, tmp_path: Path) -> None:
    registry = Registry(None, [], tmp_path)
    with pytest.raises(ManifestError, match=r"^bad\.imjoy\.html: config\.name: required"):
        await registry.install_url(f"{server}/bad.imjoy.html")
    with pytest.raises(ManifestError):
        await registry.preview_url(f"{server}/bad.imjoy.html")
    assert not registry.installed_dir.exists()


# --- normalize_url (a pure function) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://github.com/owner/repo/blob/main/plugins/hello.imjoy.html",
            "https://raw.githubusercontent.com/owner/repo/main/plugins/hello.imjoy.html",
        ),
        (
            "https://github.com/owner/repo/blob/v1.2/a/b/gaussian.py?plain=1#L10",
            "https://raw.githubusercontent.com/owner/repo/v1.2/a/b/gaussian.py",
        ),
        (
            "https://github.com/owner/repo/raw/0123abc/x.py",
            "https://raw.githubusercontent.com/owner/repo/0123abc/x.py",
        ),
        ("https://github.com/owner/repo", "https://github.com/owner/repo"),
        ("https://gist.github.com/alice/abc123", "https://gist.githubusercontent.com/alice/abc123/raw"),
        (
            "https://gist.github.com/alice/abc123#file-hello-imjoy-html",
            "https://gist.githubusercontent.com/alice/abc123/raw/hello.imjoy.html",
        ),
        (
            "https://gist.github.com/alice/abc123#file-my-plugin-py",
            "https://gist.githubusercontent.com/alice/abc123/raw/my-plugin.py",
        ),
        ("  http://127.0.0.1:8888/plugins/a.py  ", "http://127.0.0.1:8888/plugins/a.py"),
        ("https://example.org/p.imjoy.html?x=1", "https://example.org/p.imjoy.html?x=1"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/a.py", "github.com/a/b", "", "http://"])
def test_normalize_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        normalize_url(url)


def test_source_of_a_deleted_file(registry: Registry) -> None:
    registry.scan()
    assert registry.builtin_dir is not None
    (registry.builtin_dir / "viewer.imjoy.html").unlink()
    with pytest.raises(KeyError):
        registry.source("viewer")
    assert "viewer" not in [m.id for m in registry.list()]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),
        ("::127.0.0.1", False),  # IPv4-compatible form of loopback
        ("64:ff9b::7f00:1", False),  # NAT64 form of loopback
        ("2002:7f00:1::", False),  # 6to4 form of loopback
    ],
)
def test_only_public_addresses_count_as_public(address: str, public: bool) -> None:
    from scopeflow.plugins.registry import is_public

    assert is_public(address) is public


def test_the_chosen_tag_is_kept_and_its_fields_read(tmp_path: Path) -> None:
    plugins = copy(["tagged_requirements.imjoy.html"], tmp_path / "mine")
    registry = Registry(None, [plugins], tmp_path / "data")
    registry.scan()
    (manifest,) = registry.list()
    assert manifest.tag == "CPU"
    with pytest.raises(ValueError, match="no tag 'TPU'"):
        registry.choose_tag(manifest.id, "TPU")
    gpu = registry.choose_tag(manifest.id, "GPU")
    assert gpu.tag == "GPU" and gpu.requirements == gpu.config["requirements"]["GPU"]
    again = Registry(None, [plugins], tmp_path / "data")  # a restarted hub: the choice is on disk
    again.scan()
    assert again.get(manifest.id).tag == "GPU"
    assert again.get(manifest.id).requirements != manifest.requirements


async def test_github_shorthand_is_looked_up_in_the_repository_manifest(
    file_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``owner/repo:Name@tag``, as ImJoy plugins list their dependencies: the repository's
    manifest.imjoy.json names the file (under its uri_root); the default branch is master, else main."""
    base, served = file_server
    monkeypatch.setenv("SCOPEFLOW_GITHUB_RAW", base)  # a mirror of raw.githubusercontent.com
    repo = served / "team" / "plugins" / "main"
    (repo / "repository").mkdir(parents=True)
    shutil.copy(FIXTURES / "tagged_requirements.imjoy.html", repo / "repository" / "denoise.imjoy.html")
    plugins = [
        {"name": "Other", "uri": "other.imjoy.html"},
        {"name": "Tagged Denoiser", "uri": "denoise.imjoy.html"},
    ]
    (repo / "manifest.imjoy.json").write_text(json.dumps({"uri_root": "/repository", "plugins": plugins}))
    registry = Registry(None, [], tmp_path / "data")
    wanted = "team/plugins:Tagged Denoiser@GPU"
    assert await registry.locate(wanted) == (f"{base}/team/plugins/main/repository/denoise.imjoy.html", "GPU")
    preview = await registry.preview_url(wanted)
    assert preview.tag == "GPU" and preview.source_url.endswith("/repository/denoise.imjoy.html")
    installed = await registry.install_url(wanted, preview.sha256)
    assert (installed.tag, installed.sha256) == ("GPU", preview.sha256)
    with pytest.raises(ValueError, match="lists no plugin called 'Nobody'"):
        await registry.preview_url("team/plugins:Nobody")
    with pytest.raises(ValueError, match="cannot read the plugin list of team/absent"):
        await registry.preview_url("team/absent:Tagged Denoiser")
    with pytest.raises(ValueError, match="404"):  # the branch asked for has no manifest
        await registry.preview_url("team/plugins@dev:Tagged Denoiser")


def test_shorthand_file_names_with_spaces_become_urls() -> None:
    manifest = '{"plugins": [{"name": "3D Histogram", "uri": "repository/3D Histogram.imjoy.html"}]}'
    wanted = parse_shorthand("team/plugins:3D Histogram")
    assert wanted is not None
    root = "https://raw.githubusercontent.com/team/plugins/master/"
    assert plugin_url(manifest, root, wanted) == root + "repository/3D%20Histogram.imjoy.html"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("oeway/ImJoy-Plugins:Image Window", ("oeway/ImJoy-Plugins", "Image Window", None, None)),
        ("a/b@v1.2:Tool@GPU", ("a/b", "Tool", "v1.2", "GPU")),
        ("https://example.org/a:b", None),
        ("Just A Name", None),
    ],
)
def test_shorthand_parts(text: str, parts: tuple[str, str, str | None, str | None] | None) -> None:
    found = parse_shorthand(text)
    assert (found and (found.repo, found.name, found.branch, found.tag)) == parts or (found, parts) == (
        None,
        None,
    )


def test_lookups_of_unknown_ids_rescan_only_when_a_file_changed(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.scan()
    scans = []
    real_scan = registry.scan
    monkeypatch.setattr(registry, "scan", lambda: scans.append(1) or real_scan())
    for _ in range(50):  # a client asking for names that are no plugin: a listing each, no scan
        with pytest.raises(KeyError):
            registry.get("no-such-plugin")
    assert scans == []
    (tmp_path / "builtin" / "pinger.py").write_text(PINGER)  # a new file: found at the next lookup
    assert registry.get("pinger").id == "pinger" and scans == [1]
    (tmp_path / "builtin" / "pinger.py").write_text(PINGER.replace("ping", "pong") + "\n")  # edited in place
    assert registry.refresh() and scans == [1, 1]
    assert not registry.refresh()
