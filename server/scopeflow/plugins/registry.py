"""The plugin registry: plugin files in directories → :class:`~scopeflow.plugins.manifest.PluginManifest`.

Plugins come from three places, read in this order: the built-in directory, extra directories given by the
user, and the data directory's ``plugins/`` where plugins installed from a URL or from source live. A file
whose id was already seen replaces the earlier one (recorded in :attr:`Registry.shadowed`), so an installed
plugin overrides a built-in of the same id. Installing writes files atomically and keeps every version it
ever wrote under ``plugins/.versions/`` by content hash; ``plugins/index.json`` remembers where each installed
plugin came from. Fetching and installing never run plugin code.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.netutil import DefaultExecutorResolver

from scopeflow._util import sha256_hex, utc_stamp, write_atomic
from scopeflow.plugins.manifest import ManifestError, PluginManifest, is_plugin_file, parse_plugin
from scopeflow.plugins.shorthand import parse_shorthand, plugin_url

__all__ = ["Registry", "normalize_url"]

SUFFIXES = (".imjoy.html", ".html", ".py")


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """A global address, and for IPv6 one that does not carry a non-global IPv4 address inside
    (IPv4-compatible ``::a.b.c.d``, mapped, 6to4 or NAT64 forms of 127.0.0.1 and friends)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        packed = int(ip)
        inner = [ip.ipv4_mapped, ip.sixtofour]
        if packed >> 32 == 0 or ip in NAT64:  # ::a.b.c.d, 64:ff9b::a.b.c.d
            inner.append(ipaddress.IPv4Address(packed & 0xFFFFFFFF))
        return all(v4 is None or v4.is_global for v4 in inner)
    return True


class PublicResolver(DefaultExecutorResolver):
    """Resolves only to public addresses: a fetch nobody confirmed must not reach into the local network."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        found = await super().resolve(host, port, family)
        public = [entry for entry in found if is_public(entry[1][0])]
        if not public:
            raise OSError(f"{host} is a loopback, private or link-local address: confirm to fetch it")
        return public


class PluginChanged(ValueError):
    """A plugin's file is not the one the user previewed and trusted."""


class Registry:
    """Plugin manifests by id, read from plugin directories; installs plugins into ``data_dir/plugins``."""

    def __init__(self, builtin_dir: Path | None, extra_dirs: Sequence[Path], data_dir: Path) -> None:
        self.builtin_dir = builtin_dir
        self.extra_dirs = list(extra_dirs)
        self.installed_dir = Path(data_dir) / "plugins"
        self.versions_dir = self.installed_dir / ".versions"
        self.index_path = self.installed_dir / "index.json"
        self.tags_path = self.installed_dir / "tags.json"  # plugin id → the ImJoy tag the user chose
        self.shadowed: list[dict[str, str]] = []  # {"id", "path" (hidden file), "by" (the file that won)}
        self._plugins: dict[str, PluginManifest] = {}
        self._names: dict[str, str] = {}  # a plugin's config name, exactly as written → its id
        self._errors: list[dict[str, str]] = []
        self._scanned: tuple[tuple[str, int, int], ...] | None = None  # what the last scan saw

    @property
    def errors(self) -> list[dict[str, str]]:
        """Files of the last scan that failed to parse: ``{"path": ..., "error": ...}``."""
        return list(self._errors)

    def _dirs(self) -> list[Path]:
        return [Path(d) for d in [self.builtin_dir, *self.extra_dirs, self.installed_dir] if d is not None]

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        """Every plugin file's path, mtime and size, and those of the index and the chosen tags: cheap (no
        file is read), and different whenever a scan could find something else."""
        found = []
        for directory in self._dirs():
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.name.lower().endswith(SUFFIXES) or entry.name.endswith(".json"):
                            info = entry.stat()
                            found.append((entry.path, info.st_mtime_ns, info.st_size))
            except OSError:
                found.append((str(directory), -1, -1))
        return tuple(sorted(found))

    def refresh(self) -> bool:
        """Scan again if a plugin file, the index or the tags changed since the last scan (True if so)."""
        if self._stamp() == self._scanned:
            return False
        self.scan()
        return True

    def scan(self) -> None:
        """(Re)read every plugin directory; a broken file is recorded in :attr:`errors` and skipped."""
        stamp = self._stamp()
        plugins: dict[str, PluginManifest] = {}
        errors: list[dict[str, str]] = []
        shadowed: list[dict[str, str]] = []
        index, chosen = self._read_index(), self._read_tags()
        dirs = [self.builtin_dir, *self.extra_dirs, self.installed_dir]
        for directory in [Path(d) for d in dirs if d is not None and Path(d).is_dir()]:
            installed = directory.resolve() == self.installed_dir.resolve()
            for file in sorted(directory.iterdir()):
                if not is_plugin_file(file):
                    continue
                try:
                    data = file.read_bytes()
                    manifest = parse_plugin(data, file.name, path=str(file))
                    tag = chosen.get(manifest.id)
                    if isinstance(tag, str) and tag != manifest.tag and tag in manifest.tags:
                        manifest = parse_plugin(data, file.name, path=str(file), tag=tag)
                except (ManifestError, OSError) as exc:
                    errors.append({"path": str(file), "error": str(exc)})
                    continue
                entry = index.get(manifest.id, {}) if installed else {}
                if entry.get("filename") == file.name and entry.get("source_url"):
                    manifest = manifest.model_copy(update={"source_url": entry["source_url"]})
                if manifest.id in plugins:
                    shadowed.append(
                        {"id": manifest.id, "path": str(plugins[manifest.id].path), "by": str(file)}
                    )
                plugins[manifest.id] = manifest
        names = self._refuse_shared_names(plugins, errors)
        self._plugins, self._names, self._errors, self.shadowed = plugins, names, errors, shadowed
        self._scanned = stamp

    @staticmethod
    def _refuse_shared_names(
        plugins: dict[str, PluginManifest], errors: list[dict[str, str]]
    ) -> dict[str, str]:
        """Name → id. Plugins are reached by their name, as in ImJoy: a plugin whose name another one (with
        another id) already has is refused, with a message naming both files; the first one found stays."""
        names: dict[str, str] = {}
        for plugin_id in list(plugins):
            manifest = plugins[plugin_id]
            first = names.get(manifest.name)
            if first is None:
                names[manifest.name] = plugin_id
                continue
            del plugins[plugin_id]
            errors.append(
                {
                    "path": str(manifest.path),
                    "error": f"the plugin name {manifest.name!r} is already taken by {plugins[first].path}: "
                    "plugins are reached by their name, so rename one of them",
                }
            )
        return names

    def list(self) -> list[PluginManifest]:
        """All plugins, sorted by id."""
        return [self._plugins[plugin_id] for plugin_id in sorted(self._plugins)]

    def known(self, plugin_id: str) -> PluginManifest | None:
        """The plugin's manifest as of the last scan, or None (never rescans: cheap for every lookup)."""
        return self._plugins.get(plugin_id)

    def resolve(self, name: str) -> PluginManifest | None:
        """The plugin called ``name`` in its config (exactly as written, as in ImJoy), or whose id it is; as
        of the last scan."""
        plugin_id = name if name in self._plugins else self._names.get(name)
        return self._plugins.get(plugin_id) if plugin_id is not None else None

    def get(self, plugin_id: str) -> PluginManifest:
        """The plugin's manifest, by id or name; if unknown, rescans when a file changed since the last scan
        (a lookup of an unknown id costs a directory listing, not a scan), then raises :class:`KeyError`."""
        found = self.resolve(plugin_id)
        if found is None and self.refresh():
            found = self.resolve(plugin_id)
        if found is None:
            raise KeyError(plugin_id)
        return found

    def source(self, plugin_id: str) -> str:
        """The plugin file's text; if the file changed since the last scan, rescans to match."""
        manifest = self.get(plugin_id)
        try:
            data = Path(str(manifest.path)).read_bytes()
        except OSError:  # deleted since the last scan
            self.scan()
            raise KeyError(plugin_id) from None
        if hashlib.sha256(data).hexdigest() != manifest.sha256:
            self.scan()
        return data.decode("utf-8").removeprefix("\ufeff")

    def install_source(
        self,
        source: str | bytes,
        filename: str,
        source_url: str | None = None,
        origin: dict[str, Any] | None = None,
    ) -> PluginManifest:
        """Parse (:class:`ManifestError` if invalid), store as ``plugins/<id><suffix>``, return the manifest.

        The file is written atomically; the previous file of that id and this one are kept in
        ``plugins/.versions/<id>-<sha256[:12]><suffix>``. ``origin`` (e.g. a file the hub wrote for the
        user, :mod:`scopeflow.plugins.versions`) is recorded in the index."""
        manifest = parse_plugin(source, filename, source_url=source_url)
        data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
        suffix = ".py" if manifest.format == "python" else ".imjoy.html"
        target = self.installed_dir / f"{manifest.id}{suffix}"
        self.installed_dir.mkdir(parents=True, exist_ok=True)
        self.scan()
        same_id = [Path(s["path"]) for s in self.shadowed if s["id"] == manifest.id]
        same_id += [Path(str(m.path)) for m in self._plugins.values() if m.id == manifest.id]
        for old in same_id:  # installed files of this id: keep a copy, then replace them
            if old.parent.resolve() == self.installed_dir.resolve() and old.is_file():
                self._keep_version(manifest.id, old.read_bytes(), _suffix(old.name))
                if old.name != target.name:
                    old.unlink()
        self._keep_version(manifest.id, data, suffix)
        write_atomic(target, data)
        index = self._read_index()
        index[manifest.id] = {
            "filename": target.name,
            "source_url": source_url,
            "sha256": manifest.sha256,
            "installed": utc_stamp(),
        } | ({"origin": origin} if origin else {})
        self._write_index(index)
        self.scan()
        return self.get(manifest.id)

    async def fetch(
        self, url: str, *, max_bytes: int = 5_000_000, timeout: float = 20, public_only: bool = False
    ) -> tuple[str, str]:
        """Download a plugin file: ``(normalized url, text)``; :class:`ValueError` says what went wrong."""
        final, data = await self.fetch_bytes(
            url, max_bytes=max_bytes, timeout=timeout, public_only=public_only
        )
        try:
            return final, data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{final}: not UTF-8 text") from None

    async def fetch_bytes(
        self, url: str, *, max_bytes: int = 5_000_000, timeout: float = 20, public_only: bool = False
    ) -> tuple[str, bytes]:
        """Download a file: ``(normalized url, bytes)``; :class:`ValueError` says what went wrong.

        ``public_only`` refuses hosts that resolve to loopback, private or link-local addresses, redirects
        included (for fetches no user asked for, e.g. previewing a link someone sent)."""
        final = normalize_url(url)
        chunks: list[bytes] = []
        headers: dict[str, str] = {}

        def header(line: str) -> None:  # the final response's header lines (not those of redirects)
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip().lower()

        request = HTTPRequest(
            final,
            connect_timeout=timeout,
            request_timeout=timeout,
            follow_redirects=True,
            max_redirects=5,
            decompress_response=False,  # so that max_body_size counts the bytes of the file
            header_callback=header,
            streaming_callback=chunks.append,
            headers={"User-Agent": "scopeflow", "Accept": "text/plain, text/html, */*"},
        )
        # A client of its own: the body limit is a client setting. Past it tornado drops the connection.
        options: dict[str, Any] = {"resolver": PublicResolver()} if public_only else {}
        client = AsyncHTTPClient(force_instance=True, max_body_size=max_bytes, **options)
        try:
            await client.fetch(request)
        except HTTPClientError as exc:
            length = headers.get("content-length", "")
            if exc.code == 599 and length.isdigit() and int(length) > max_bytes:
                raise ValueError(f"{final}: larger than {max_bytes} bytes ({length})") from None
            if exc.code == 599 and "chunked" in headers.get("transfer-encoding", ""):
                raise ValueError(f"{final}: download stopped: larger than {max_bytes} bytes?") from None
            if exc.code == 599:  # no HTTP response: timeout, refused or closed connection
                raise ValueError(f"could not fetch {final}: {exc.message}") from None
            raise ValueError(
                f"could not fetch {final}: HTTP {exc.code} {exc.message or ''}".rstrip()
            ) from None
        except OSError as exc:
            raise ValueError(f"could not fetch {final}: {exc.strerror or exc}") from None
        finally:
            client.close()
        return final, b"".join(chunks)

    async def locate(self, url: str, public_only: bool = False) -> tuple[str, str | None]:
        """``(URL of the plugin file, ImJoy tag or None)`` for a URL or ImJoy's ``owner/repo:Name[@tag]``
        (looked up in the repository's ``manifest.imjoy.json``: fetched, never run)."""
        short = parse_shorthand(url)
        if short is None:
            return url, None
        problems = []
        for root in short.roots():
            try:
                _, text = await self.fetch(root + "manifest.imjoy.json", public_only=public_only)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            return plugin_url(text, root, short), short.tag
        raise ValueError(f"{url}: cannot read the plugin list of {short.repo}: {problems[-1]}")

    async def preview_url(
        self, url: str, public_only: bool = False, tag: str | None = None
    ) -> PluginManifest:
        """Fetch and parse a plugin without storing anything (its fields keyed by tag read for ``tag``)."""
        url, short_tag = await self.locate(url, public_only)
        final, text = await self.fetch(url, public_only=public_only)
        return parse_plugin(text, _filename(final, text), source_url=final, tag=tag or short_tag)

    async def install_url(
        self, url: str, sha256: str | None = None, public_only: bool = False
    ) -> PluginManifest:
        """Fetch a plugin and install it (see :meth:`install_source`).

        With ``sha256`` (what the user saw in a preview), a file that changed since is refused with
        :class:`PluginChanged`: what gets installed is exactly what was trusted."""
        url, short_tag = await self.locate(url, public_only)
        final, text = await self.fetch(url, public_only=public_only)
        if sha256 is not None:
            found = hashlib.sha256(text.encode("utf-8")).hexdigest()
            if found != sha256:
                raise PluginChanged(
                    f"{url} changed since it was previewed (sha256 {found[:12]}…, previewed {sha256[:12]}…): "
                    "preview it again before installing"
                )
        manifest = self.install_source(text, _filename(final, text), source_url=final)
        if short_tag is not None and short_tag in manifest.tags and short_tag != manifest.tag:
            manifest = self.choose_tag(manifest.id, short_tag)
        return manifest

    def remove(self, plugin_id: str) -> None:
        """Delete an installed plugin (a copy stays in ``.versions``); others: :class:`PermissionError`."""
        path = Path(str(self.get(plugin_id).path))
        if path.parent.resolve() != self.installed_dir.resolve():
            raise PermissionError(
                f"{plugin_id} is not an installed plugin ({path}); only those can be removed"
            )
        self._keep_version(plugin_id, path.read_bytes(), _suffix(path.name))
        path.unlink()
        index = self._read_index()
        if index.pop(plugin_id, None) is not None:
            self._write_index(index)
        self.scan()

    def _keep_version(self, plugin_id: str, data: bytes, suffix: str) -> None:
        copy = self.versions_dir / f"{plugin_id}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"
        if not copy.exists():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(copy, data)

    def is_builtin(self, manifest: PluginManifest) -> bool:
        """Whether this plugin is one of the built-ins (a file of the built-in directory, not a copy)."""
        if self.builtin_dir is None or not manifest.path:
            return False
        return Path(manifest.path).resolve().parent == Path(self.builtin_dir).resolve()

    def restore(self, plugin_id: str, sha256: str) -> bool:
        """Put back the kept copy of ``plugin_id`` whose source has this sha256 (every version installed here
        was trusted once); False if none is kept. A file only at a URL is never installed from here: that
        goes through the preview-and-trust dialog like any other install."""
        for copy in sorted(self.versions_dir.glob(f"{plugin_id}-{sha256[:12]}*")):
            data = copy.read_bytes()
            if sha256_hex(data) != sha256:
                continue
            suffix = copy.name[len(f"{plugin_id}-{sha256[:12]}") :]
            try:
                if parse_plugin(data, f"{plugin_id}{suffix}").id != plugin_id:  # a copy of another plugin
                    continue
            except ManifestError:
                continue
            index = self._read_index().get(plugin_id, {})
            self.install_source(data, f"{plugin_id}{suffix}", source_url=index.get("source_url"))
            return True
        return False

    def choose_tag(self, plugin_id: str, tag: str) -> PluginManifest:
        """Use ``tag`` (one of the plugin's ``tags``) for its fields keyed by tag, from now on: its
        requirements, dependencies, ``ui`` and ``api.TAG``. :class:`ValueError` if it has no such tag."""
        manifest = self.get(plugin_id)
        if tag not in manifest.tags:
            offered = ", ".join(manifest.tags) or "none"
            raise ValueError(f"{manifest.name} has no tag {tag!r} (its tags: {offered})")
        chosen = self._read_tags()
        chosen[manifest.id] = tag
        self.installed_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.tags_path, json.dumps(chosen, indent=1, sort_keys=True).encode("utf-8"))
        self.scan()
        return self.get(manifest.id)

    def _read_tags(self) -> dict[str, Any]:
        return self._read_json(self.tags_path)

    def _read_index(self) -> dict[str, dict[str, Any]]:
        return self._read_json(self.index_path)

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _write_index(self, index: dict[str, dict[str, Any]]) -> None:
        write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True).encode("utf-8"))


def _suffix(filename: str) -> str:
    return next((s for s in SUFFIXES if filename.lower().endswith(s)), "")


def _filename(url: str, text: str) -> str:
    """The file name in a URL's path; without a plugin suffix, guessed from the content."""
    name = unquote(PurePosixPath(urlsplit(url).path).name) or "plugin"
    if name.lower().endswith(SUFFIXES):
        return name
    return f"{name}.imjoy.html" if "<config" in text else f"{name}.py"


def normalize_url(url: str) -> str:
    """The URL of a plugin file's raw content: GitHub ``blob`` pages and gists become raw URLs.

    Other http(s) URLs are returned unchanged; anything else raises :class:`ValueError`."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.lower()
    segments = [s for s in parts.path.split("/") if s]
    if host in ("github.com", "www.github.com") and len(segments) >= 5 and segments[2] in ("blob", "raw"):
        owner, repo, _, *rest = segments
        return f"https://raw.githubusercontent.com/{owner}/{repo}/{'/'.join(rest)}"
    if host == "gist.github.com" and len(segments) == 2:
        user, gist = segments
        raw = f"https://gist.githubusercontent.com/{user}/{gist}/raw"
        if not parts.fragment.startswith("file-"):
            return raw
        # the anchor is the file name with "." turned into "-": file-hello-imjoy-html → hello.imjoy.html
        anchor = parts.fragment.removeprefix("file-")
        known = re.match(r"^(.+?)-(imjoy-html|py|html|js|json|md|txt)$", anchor)
        stem, ext = known.groups() if known else anchor.rpartition("-")[::2]
        return f"{raw}/{stem}.{ext.replace('-', '.')}" if stem else f"{raw}/{anchor}"
    return url
