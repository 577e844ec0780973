"""Bootstrap of a plugin kernel: connect to the hub, load the plugin, export its service.

The engine sends one execute request to a fresh Jupyter kernel:
``await scopeflow.plugins.bootstrap.start_plugin({...})``. That connects back to the hub's ``/ws`` as client
id = plugin id, makes ``from imjoy import api`` work (and ``api`` a global of the plugin, as ImJoy 0.1
plugins expect), runs the plugin source, calls ``setup()`` for ImJoy plugins, and only then announces the
plugin's ``default`` service: a plugin is ready when its setup is done. The connection keeps running on the
kernel's event loop after the request returns.

Before the engine shuts a plugin's kernel down it may run :data:`STOP_CELL` there (an execute request,
with a timeout): that calls the exported object's ``exit()``, as ImJoy does when it stops a plugin.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

from scopeflow import sdk
from scopeflow.plugins.kernel_api import PluginApi, tagged
from scopeflow.plugins.manifest import ManifestError, parse_plugin, read_attachments
from scopeflow.plugins.pacing import paced
from scopeflow.rpc import direct
from scopeflow.rpc.client import connect

__all__ = ["STOP_CELL", "load_module", "start_plugin", "stop_plugin"]

STOP_CELL = "from scopeflow.plugins.bootstrap import stop_plugin as _scopeflow_stop\nawait _scopeflow_stop()"
EXIT_TIMEOUT = 10.0
_running: list[PluginApi] = []  # the api of the plugin this kernel runs


def install_imjoy_shim(api: PluginApi) -> None:
    """Make ``from imjoy import api`` and ``from imjoy_rpc import api`` resolve to this kernel's api."""
    shim = types.ModuleType("imjoy")
    shim.api = api  # type: ignore[attr-defined]
    sys.modules["imjoy"] = shim
    try:
        import imjoy_rpc

        imjoy_rpc._rpc_context.api = api
    except Exception:  # imjoy_rpc absent or changed: the imjoy shim is what ImJoy plugins use
        pass
    sdk.api.target = api


def load_module(name: str, source: str, filename: str, api: Any = None) -> types.ModuleType:
    """Run a plugin's Python source as a fresh module (with ``api`` as a global, if given)."""
    module = types.ModuleType(name)
    module.__file__ = filename
    if api is not None:
        module.api = api  # type: ignore[attr-defined]
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def missing_requirements(requirements: list[str]) -> list[str]:
    """Requirements whose import name is not installed in this kernel (checked, never installed)."""
    missing = []
    for requirement in requirements:
        name = requirement.split(":", 1)[-1]
        name = re.split(r"[<>=!~\[ ;]", name, maxsplit=1)[0].strip()
        if not name or "://" in requirement or requirement.startswith(("conda:", "cmd:", "repo:")):
            continue  # URLs, repositories and commands: the hub's environments handle them
        module = {"scikit-image": "skimage", "opencv-python": "cv2", "pillow": "PIL", "pyyaml": "yaml"}.get(
            name.lower(), name.replace("-", "_")
        )
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # not a module name at all
            found = False
        if not found:
            missing.append(requirement)
    return missing


def op_service(module: types.ModuleType) -> dict[str, Any]:
    """The service of a scopeflow Python plugin: one function per ``@op``."""
    service: dict[str, Any] = {}
    for name, value in vars(module).items():
        if callable(value) and hasattr(value, "__scopeflow_op__") and not name.startswith("_"):
            function = tagged(value)
            if not inspect.iscoroutinefunction(value):  # in a worker thread, or on the loop once quick
                function = paced(function, bool(value.__scopeflow_op__.get("long_running")))
            service[name] = function
    if not service:
        raise ValueError("the plugin declares no @op function")
    return service


def imjoy_extras(spec: dict[str, Any]) -> dict[str, Any]:
    """What an ImJoy plugin's api needs from its whole file: the tag, the attachments and the defaults of
    its ``ui`` form. From ``spec["file_source"]`` (the file's text) when the engine sends it, else from the
    file at ``spec["filename"]``; empty when neither is readable (e.g. a kernel on another host)."""
    filename = str(spec.get("filename") or "")
    text = spec.get("file_source")
    if text is None and filename.lower().endswith(".html"):
        try:
            text = Path(filename).read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            text = None
    if not isinstance(text, str):
        return {"tag": spec.get("tag") or ""}
    try:
        manifest = parse_plugin(text, Path(filename).name or "plugin.imjoy.html")
    except ManifestError as exc:
        print(f"warning: could not read the plugin's config: {exc}", file=sys.stderr)
        return {"tag": spec.get("tag") or ""}
    return {
        "tag": spec.get("tag") or manifest.tag,
        "attachments": read_attachments(text, Path(filename).name or "plugin.imjoy.html"),
        "ui_defaults": {field.id: field.default for field in manifest.ui_fields},
    }


async def stop_plugin() -> None:
    """The plugin is being stopped: call its exported ``exit()`` (at most once, within EXIT_TIMEOUT)."""
    for api in _running:
        try:
            await asyncio.wait_for(api.call_exit(), EXIT_TIMEOUT)
        except Exception as exc:  # the kernel is shut down anyway
            print(f"warning: the plugin's exit() failed: {type(exc).__name__}: {exc}", file=sys.stderr)


async def start_plugin(spec: dict[str, Any]) -> None:
    """Connect, load and export the plugin described by ``spec`` (sent by the engine)."""
    loop = asyncio.get_running_loop()
    plugin_id = spec["plugin_id"]
    missing = missing_requirements(spec.get("requirements") or [])
    if missing:
        print(f"warning: requirements not installed in this kernel: {', '.join(missing)}", file=sys.stderr)
    server = await connect(
        spec["server_url"],
        token=None,  # a kernel connects with its launch's secret, never with the hub's token
        client_id=plugin_id,
        name=spec.get("name") or plugin_id,
        method_timeout=spec.get("method_timeout", 600),
        query={"plugin_secret": spec["secret"]},
        reconnect=False,
    )
    if direct.enabled() and direct.loopback(spec["server_url"]):  # callers on this machine may link directly
        workspace = str(server.config.get("workspace") or "default")
        server.rpc.direct_url = await server.links.listen(spec["secret"], f"{workspace}/{plugin_id}")
    extras = imjoy_extras(spec) if spec["format"] == "imjoy-html" else {}
    api = PluginApi(server, loop, defer_notify=True, **extras)
    _running[:] = [api]
    install_imjoy_shim(api)
    module_name = "scopeflow_plugin_" + re.sub(r"\W", "_", plugin_id)
    if spec["format"] == "imjoy-html":
        load_module(module_name, spec["source"], spec["filename"], api)
        await api.settle()
        if api.exported is None:
            raise RuntimeError("the plugin never called api.export(...)")
        setup = getattr(api.exported, "setup", None)
        if callable(setup):
            result = setup()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
    else:
        module = load_module(module_name, spec["source"], spec["filename"], api)
        service = op_service(module)
        service.update(
            {
                "id": "default",
                "name": spec.get("name") or plugin_id,
                "type": "scopeflow-plugin",
                "config": {"require_context": True},  # see kernel_api.tagged; sync ops: see pacing
            }
        )
        await server.rpc.register_service(service, overwrite=True, notify=False)
    await api.announce()
