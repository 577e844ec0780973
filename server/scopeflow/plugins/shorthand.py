"""ImJoy's short plugin URI, ``owner/repo:Plugin Name`` (also ``owner/repo@branch:Name``, ``...:Name@tag``):
a plugin listed by name in the ``manifest.imjoy.json`` at the root of a GitHub repository.

Only parsing and looking up live here; the registry fetches the repository's manifest (never running
anything) and then the plugin file like any URL. ``SCOPEFLOW_GITHUB_RAW`` points the lookups at a mirror of
raw.githubusercontent.com (a GitHub Enterprise host, a proxy).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, urljoin

__all__ = ["Shorthand", "parse_shorthand", "plugin_url"]

_SHORTHAND = re.compile(
    r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<branch>[\w./-]+))?:(?P<name>[^@:]+?)(?:@(?P<tag>[\w.-]+))?$"
)


@dataclass(frozen=True)
class Shorthand:
    repo: str  # owner/name
    name: str  # the plugin's name in the repository's manifest
    branch: str | None  # None: the default branch (master, else main)
    tag: str | None  # the ImJoy tag to install, if given

    def roots(self) -> list[str]:
        """Where the repository's files are, for each branch to try."""
        base = os.environ.get("SCOPEFLOW_GITHUB_RAW", "https://raw.githubusercontent.com").rstrip("/")
        return [f"{base}/{self.repo}/{b}/" for b in ([self.branch] if self.branch else ["master", "main"])]


def parse_shorthand(text: str) -> Shorthand | None:
    """The parts of ``owner/repo:Name``; None for a URL or a plain name."""
    text = text.strip()
    if "://" in text:
        return None
    found = _SHORTHAND.match(text)
    if found is None:
        return None
    return Shorthand(found["repo"], found["name"].strip(), found["branch"], found["tag"])


def plugin_url(manifest_text: str, root: str, wanted: Shorthand) -> str:
    """The URL of ``wanted``'s file, from the repository's ``manifest.imjoy.json`` (found at ``root``).

    Each entry of its ``plugins`` has a ``name`` and a ``uri``: a path in the repository (under the manifest's
    ``uri_root`` when it has one) or a URL. :class:`ValueError` says what is wrong."""
    where = f"{wanted.repo}'s manifest.imjoy.json"
    try:
        manifest = json.loads(manifest_text)
    except ValueError:
        raise ValueError(f"{where} is not JSON") from None
    plugins = manifest.get("plugins") if isinstance(manifest, dict) else None
    if not isinstance(plugins, list):
        raise ValueError(f"{where} has no list of plugins")
    entry = next((p for p in plugins if isinstance(p, dict) and p.get("name") == wanted.name), None)
    if entry is None:
        raise ValueError(f"{where} lists no plugin called {wanted.name!r}")
    uri = entry.get("uri")
    uri = uri if isinstance(uri, str) and uri.strip() else f"{wanted.name}.imjoy.html"
    if re.match(r"^https?://", uri, re.I):
        return uri
    uri_root = manifest.get("uri_root")
    uri_root = uri_root.strip() if isinstance(uri_root, str) else ""
    if re.match(r"^https?://", uri_root, re.I):
        return urljoin(uri_root.rstrip("/") + "/", uri.lstrip("/"))
    base = urljoin(root, quote(uri_root.strip("/")) + "/" if uri_root.strip("/") else "")
    found = urljoin(base, quote(uri.lstrip("/")))  # real manifests name files with spaces in them
    if not found.startswith(root):
        raise ValueError(f"{where}: {uri_root}/{uri} leaves the repository")
    return found
