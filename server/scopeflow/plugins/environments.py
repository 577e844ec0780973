"""Plugin environments: the packages a Python plugin's ``requirements`` ask for, installed with uv.

An environment is a *layer* over the hub's own environment, kept under ``DATA_DIR/envs/<key>/``: a folder of
the packages the plugin needs and the hub lacks (or has at another version), which the plugin's kernel puts
in front of its ``sys.path``. So

- the hub's own environment never changes, and plugins pinning conflicting versions run side by side, each
  kernel with its own layer;
- torch and the rest of the heavy stack are never downloaded again: the resolver is held to the hub's
  versions (a constraint on every package the plugin does not pin itself), and what the hub already has is
  left out of the layer;
- a plugin whose requirements the hub already satisfies needs no layer and starts as fast as any other
  (the engine's spare kernel serves it);
- plugins with the same requirement set share one layer: the key hashes the normalised set, the Python
  version and the hub's own package versions (a changed hub makes new layers).

The resolved versions (``uv pip compile``) are recorded in ``env.json`` beside the layer, shown with the
plugin and pinned in workflow documents. ``conda:`` and ``cmd:`` requirements are refused with a message;
``repo:`` ones are cloned with git into the layer and put on the path, as ImJoy's engine did.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from scopeflow._util import canonical_json, sha256_hex, utc_stamp, write_atomic

__all__ = ["Environments", "Layer", "RequirementError", "plan"]

log = logging.getLogger("scopeflow.plugins.environments")

STEP_TIMEOUT = 600  # seconds one uv or git step may take before it is stopped
LEASE = ".in-use-by-"  # a file in a layer's folder, named after the process whose kernels use it
LineSink = Callable[[str], None]


# what uv says when it cannot reach an index: no network, no DNS, a proxy that refuses
_UNREACHABLE = re.compile(
    r"tcp connect error|dns error|failed to lookup address|Connection refused|Network is unreachable|"
    r"tunnel error|operation timed out|client error \(Connect\)",
    re.I,
)


class RequirementError(ValueError):
    """A requirement that cannot be installed here; the message names it and says what to do instead."""


@dataclass
class Plan:
    """What a plugin's requirements ask for, normalised: pip specifications and git repositories."""

    pip: list[str] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.pip and not self.repos


@dataclass
class Layer:
    """A built environment: folders to put in front of ``sys.path`` and the resolved package versions."""

    key: str
    path: Path
    paths: list[str]
    packages: dict[str, str]  # every package of the resolution (the hub's included) → version
    installed: list[str]  # the packages in the layer itself
    modules: list[str]  # top-level import names the layer provides


def plan(requirements: Sequence[str]) -> Plan:
    """Normalise ImJoy-style requirements: ``numpy``, ``scipy>=1.10``, ``pip: a b==1``, ``git+https://...``,
    ``repo: https://...``; ``conda:`` and ``cmd:`` are refused (:class:`RequirementError`)."""
    result = Plan()
    for raw in requirements:
        text = str(raw).strip()
        if not text:
            continue
        prefix, sep, rest = text.partition(":")
        kind = prefix.strip().lower() if sep and not text.lower().startswith(("http", "git+")) else ""
        if kind == "pip":
            result.pip.extend(_pip_specs(rest, text))
        elif kind == "repo":
            url = rest.strip().split()[0] if rest.strip() else ""
            if not url.startswith(("https://", "http://", "git@", "file://")):
                raise RequirementError(f"{text!r}: a repo: requirement needs a git URL")
            result.repos.append(url)
        elif kind == "conda":
            raise RequirementError(
                f"{text!r}: conda packages are not installed here; ask for the pip package of the same name "
                "(most have one), or start the hub in a conda environment that has it"
            )
        elif kind == "cmd":
            raise RequirementError(
                f"{text!r}: shell commands are never run to prepare a plugin; install what it needs into the "
                "hub's environment by hand, or ask for a pip package instead"
            )
        elif kind and kind not in ("http", "https"):
            raise RequirementError(
                f"{text!r}: unknown requirement kind {kind!r} (use pip:, repo: or a pip spec)"
            )
        else:
            result.pip.extend(_pip_specs(text, text))
    result.pip = sorted(set(result.pip))
    result.repos = sorted(set(result.repos))
    return result


def _pip_specs(text: str, original: str) -> list[str]:
    specs = []
    for part in text.split():
        if part.startswith("-"):
            raise RequirementError(f"{original!r}: pip options ({part}) are not accepted in requirements")
        if part.startswith(("git+", "http://", "https://")):
            specs.append(part)
            continue
        try:
            specs.append(str(Requirement(part)))
        except InvalidRequirement as exc:
            raise RequirementError(f"{original!r} is not a pip requirement: {exc}") from None
    return specs


def hub_has(spec: str, versions: dict[str, str]) -> bool:
    """Whether the hub's own environment (``versions``: see :func:`hub_versions`) satisfies one pip
    specification."""
    if spec.startswith(("git+", "http://", "https://")):
        return False
    requirement = Requirement(spec)
    if requirement.marker is not None and not requirement.marker.evaluate():
        return True  # not for this platform or Python
    if requirement.url:
        return False
    installed = versions.get(canonicalize_name(requirement.name))
    return installed is not None and requirement.specifier.contains(installed, prereleases=True)


def hub_versions() -> dict[str, str]:
    """The hub's installed distributions: canonical name → version."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist.version
    return found


def _public(version: str) -> str:
    try:
        return Version(version).public
    except InvalidVersion:
        return version


class Environments:
    """Builds, reuses, lists and prunes the layers under ``root``."""

    def __init__(self, root: Path, budget_bytes: int = 20 * 1024**3) -> None:
        self.root = Path(root)
        self.budget_bytes = budget_bytes
        self._locks: dict[str, asyncio.Lock] = {}
        self._hub: dict[str, str] | None = None
        self._index: list[str] | None = None
        self._holders: dict[str, set[str]] = {}  # layer key → plugins whose kernels use it: never pruned

    # -- keys and lookups ---------------------------------------------------------------------------------
    @property
    def hub(self) -> dict[str, str]:
        if self._hub is None:
            self._hub = hub_versions()
        return self._hub

    def key(self, wanted: Plan) -> str:
        python = f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}"
        return sha256_hex(canonical_json([wanted.pip, wanted.repos, python, sorted(self.hub.items())]))[:20]

    def needs_layer(self, requirements: Sequence[str]) -> Plan | None:
        """The plan of a plugin that needs a layer, or None when the hub satisfies every requirement."""
        wanted = plan(requirements)
        if wanted.repos or not all(hub_has(spec, self.hub) for spec in wanted.pip):
            return wanted
        return None

    def resolved_by_hub(self, requirements: Sequence[str]) -> dict[str, str]:
        """For a plugin the hub satisfies: its requirements' packages and the hub's versions of them."""
        found: dict[str, str] = {}
        for spec in plan(requirements).pip:
            name = canonicalize_name(Requirement(spec).name)
            if name in self.hub:
                found[name] = self.hub[name]
        return found

    def find(self, key: str) -> Layer | None:
        record = self.root / key / "env.json"
        try:
            info = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        layer = Layer(
            key, self.root / key, info["paths"], info["packages"], info["installed"], info["modules"]
        )
        with contextlib.suppress(OSError):
            os.utime(record)  # last used, for pruning
        return layer

    # -- building ---------------------------------------------------------------------------------------
    async def prepare(self, requirements: Sequence[str], on_line: LineSink | None = None) -> Layer | None:
        """The layer for these requirements, built the first time (None: the hub has them all).

        Raises :class:`RequirementError` naming the requirement when it cannot be installed."""
        wanted = self.needs_layer(requirements)
        if wanted is None:
            return None
        key = self.key(wanted)
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self.find(key)
            if found is not None:
                return found
            started = time.monotonic()
            layer = await self._build(key, wanted, on_line or (lambda line: None))
            log.info("environment %s built in %.1f s: %s", key, time.monotonic() - started, layer.installed)
        self.prune()
        return layer

    async def _build(self, key: str, wanted: Plan, on_line: LineSink) -> Layer:
        final = self.root / key
        work = self.root / f".{key}.{os.getpid()}.part"
        shutil.rmtree(work, ignore_errors=True)
        (work / "site").mkdir(parents=True)
        try:
            resolved: dict[str, str] = {}
            install: list[str] = []
            if wanted.pip:
                resolved, install = await self._resolve(wanted, work, on_line)
            if install:
                on_line(f"installing {len(install)} package(s): {', '.join(install)}")
                await self._uv(
                    ["pip", "install", "--target", str(work / "site"), "--no-deps", *install],
                    on_line,
                    wanted,
                )
            for url in wanted.repos:
                name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1]) or "repo"
                on_line(f"cloning {url}")
                await _run(["git", "clone", "--depth", "1", url, str(work / "repos" / name)], on_line, url)
            paths = [str(final / "site")] + [
                str(final / "repos" / p.name) for p in sorted((work / "repos").glob("*"))
            ]
            info = {
                "key": key,
                "requirements": wanted.pip + [f"repo:{u}" for u in wanted.repos],
                "packages": resolved,
                "installed": install,
                "modules": sorted(_top_level(work / "site")),
                "paths": paths,
                "python": sys.version.split()[0],
                "created": utc_stamp(),
            }
            write_atomic(work / "env.json", json.dumps(info, indent=1))
            if final.exists():  # another hub on the same data dir built it meanwhile
                shutil.rmtree(work, ignore_errors=True)
            else:
                os.replace(work, final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        found = self.find(key)
        assert found is not None
        return found

    async def _resolve(self, wanted: Plan, work: Path, on_line: LineSink) -> tuple[dict[str, str], list[str]]:
        """Resolve with uv, held to the hub's versions of every package the plugin does not pin itself;
        returns every resolved package's version and what the layer must hold."""
        pinned = [
            spec
            for spec in wanted.pip
            if not spec.startswith(("git+", "http")) and not hub_has(spec, self.hub)
        ]
        free = {canonicalize_name(Requirement(s).name) for s in pinned}  # the plugin asks for another version
        (work / "requirements.in").write_text("\n".join(wanted.pip) + "\n", encoding="utf-8")
        held = [
            f"{n}=={_public(v)}" for n, v in sorted(self.hub.items()) if n not in free and n != "scopeflow"
        ]
        (work / "hub.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
        lines: list[str] = []

        def keep(line: str) -> None:
            lines.append(line)
            on_line(line)

        on_line(f"resolving {' '.join(wanted.pip)}")
        args = ["pip", "compile", str(work / "requirements.in"), "--constraint", str(work / "hub.txt")]
        args += ["--no-header", "--no-annotate", "--output-file", str(work / "resolved.txt")]
        await self._uv(args, keep, wanted)
        resolved: dict[str, str] = {}
        install: list[str] = []
        for line in (work / "resolved.txt").read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            if " @ " in line:  # a git or URL requirement: always the layer's
                url_name = canonicalize_name(line.split(" @ ", 1)[0].split("[", 1)[0])
                resolved[url_name] = line.split(" @ ", 1)[1]
                install.append(line)
                continue
            raw, _, version = line.partition("==")
            name = canonicalize_name(raw.split("[", 1)[0].strip())
            version = version.split(";", 1)[0].strip()
            resolved[name] = version
            if _public(self.hub.get(name, "")) != _public(version):  # the hub lacks it, or has another one
                install.append(f"{name}=={version}")
        return resolved, install

    async def _uv(self, args: list[str], on_line: LineSink, wanted: Plan) -> None:
        from uv import find_uv_bin

        command = [
            find_uv_bin(),
            *args,
            "--python",
            sys.executable,
            "--color",
            "never",
            *self.index_options(),
        ]
        env = {**os.environ, "UV_HTTP_TIMEOUT": os.environ.get("UV_HTTP_TIMEOUT", "30")}
        env.pop("VIRTUAL_ENV", None)
        what = " ".join(wanted.pip + wanted.repos)
        try:
            await _run(command, on_line, what, env=env)
        except RequirementError as exc:
            if not _UNREACHABLE.search(str(exc)):
                raise
            # no network: what uv's cache holds (an earlier install on this machine) still installs
            on_line("the package index cannot be reached: trying with what is cached on this computer")
            try:
                await _run([*command, "--offline"], on_line, what, env=env)
            except RequirementError:
                raise RequirementError(
                    f"could not install {what}: the package index cannot be reached (is this computer "
                    "offline?) and the packages are not in the cache of earlier installs. Connect to the "
                    f"network, or install them into the hub's environment.\n{str(exc).split(chr(10), 1)[-1]}"
                ) from None

    def index_options(self) -> list[str]:
        """pip's index configuration (index, extra indexes, find-links, constraints) as uv options: uv does
        not read pip's configuration, and the hub's environment was installed with it."""
        if self._index is None:
            self._index = _pip_index_options()
        return list(self._index)

    # -- who uses a layer ---------------------------------------------------------------------------------
    def hold(self, key: str, holder: str) -> None:
        """``holder`` (a plugin) runs a kernel on this layer: it is not pruned, by this process or another
        one sharing the data dir (a lease file names this process), until :meth:`release`."""
        self.release(holder)
        holders = self._holders.setdefault(key, set())
        if not holders:
            with contextlib.suppress(OSError):
                (self.root / key / f"{LEASE}{os.getpid()}").touch()
        holders.add(holder)

    def release(self, holder: str) -> None:
        """``holder``'s kernel is gone: the layer it used may be pruned again once nobody else uses it."""
        for key, holders in list(self._holders.items()):
            if holder in holders:
                holders.discard(holder)
                if not holders:
                    del self._holders[key]
                    with contextlib.suppress(OSError):
                        (self.root / key / f"{LEASE}{os.getpid()}").unlink()

    def in_use(self, key: str) -> bool:
        """Whether a kernel of this hub, or of another live process on this data dir, runs on the layer."""
        if self._holders.get(key):
            return True
        for lease in (self.root / key).glob(f"{LEASE}*"):
            pid = lease.name.removeprefix(LEASE)
            if pid.isdigit() and _alive(int(pid)):
                return True
        return False

    # -- listing and pruning ----------------------------------------------------------------------------
    def listing(self) -> list[dict[str, Any]]:
        found = []
        for record in sorted(self.root.glob("*/env.json")):
            try:
                info = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            info["bytes"] = _size(record.parent)
            info["last_used"] = utc_stamp(record.stat().st_mtime)
            info["in_use"] = self.in_use(record.parent.name)
            found.append(info)
        return found

    def prune(self, keep_bytes: int | None = None, everything: bool = False) -> list[str]:
        """Remove the least recently used layers until the rest fit in ``keep_bytes`` (default: the budget);
        ``everything`` removes every layer no running kernel uses. Returns the removed keys."""
        budget = 0 if everything else (self.budget_bytes if keep_bytes is None else keep_bytes)
        layers = sorted(self.root.glob("*/env.json"), key=lambda r: r.stat().st_mtime, reverse=True)
        total, removed = 0, []
        for record in layers:
            size = _size(record.parent)
            if total + size <= budget or self.in_use(record.parent.name):
                total += size
                continue
            shutil.rmtree(record.parent, ignore_errors=True)
            removed.append(record.parent.name)
        return removed


async def _run(command: list[str], on_line: LineSink, what: str, env: dict[str, str] | None = None) -> None:
    """Run one installer step, its output line by line to ``on_line``; killed when cancelled or too slow."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a group of its own: stopping it stops its helpers too (git-remote-http)
        )
    except OSError as exc:
        raise RequirementError(f"{what}: could not run {command[0]}: {exc}") from None
    tail: list[str] = []
    assert process.stdout is not None
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            async for raw in process.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    tail = [*tail[-30:], line]
                    on_line(line)
            code = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the step and every helper it started
        await process.wait()
        if isinstance(sys.exc_info()[1], TimeoutError):
            raise RequirementError(
                f"{what}: the installer took over {STEP_TIMEOUT} s and was stopped"
            ) from None
        raise
    if code != 0:
        message = "\n".join(line for line in tail if line.strip()) or f"exit status {code}"
        raise RequirementError(f"could not install {what}:\n{message}")


def _pip_index_options() -> list[str]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    config: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, _, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        config.setdefault(key, value.strip().strip("'\""))
    options: list[str] = []
    for key, flag in (
        ("index-url", "--index-url"),
        ("extra-index-url", "--extra-index-url"),
        ("find-links", "--find-links"),
        ("constraint", "--constraint"),
    ):
        for value in config.get(key, "").split():
            local = (
                value.removeprefix("file://") if value.startswith("file://") or "://" not in value else None
            )
            if local is not None and not Path(local).exists():
                continue  # pip skips a missing local index with a warning; uv would fail
            options += [flag, value]
    if "--extra-index-url" in options:
        options += ["--index-strategy", "unsafe-best-match"]  # as pip does: the best version of any index
    return options


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _top_level(site: Path) -> set[str]:
    names = set()
    for entry in site.iterdir() if site.is_dir() else ():
        if entry.name.endswith((".dist-info", ".egg-info", ".pth")) or entry.name.startswith((".", "__")):
            continue
        if entry.name == "bin":  # console scripts
            continue
        if entry.is_dir() or entry.suffix in (".py", ".so"):
            names.add(entry.name.split(".", 1)[0])
    return names


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total
