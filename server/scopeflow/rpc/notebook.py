"""The hub from a notebook or a script: ``scopeflow.connect_sync()`` (and ``await scopeflow.connect()``).

    import scopeflow
    hub = scopeflow.connect_sync()            # SCOPEFLOW_URL and SCOPEFLOW_TOKEN, or url=..., token=...
    seg = hub.get_plugin("Nuclei segmentation")
    help(seg.segment)                          # the op's signature and docs, from the plugin's manifest
    labels = seg.segment(image, diameter=20)   # a progress bar while it runs; shown inline in Jupyter
    outputs = hub.run_workflow("denoise-segment-measure", {"image": image})

Op calls block until the op returns (they run on an event loop of their own in a background thread, so they
work inside Jupyter's running loop too). Progress the plugin reports (``api.showProgress``) draws a tqdm bar,
its messages are printed; a failure raises :class:`PluginError` holding the plugin's traceback. Images come
back as :class:`ImageResult` (a numpy array that Jupyter shows as a picture) and tables as
:class:`TableResult` (a dict of columns that Jupyter shows as a table).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = ["Hub", "ImageResult", "PluginError", "TableResult", "connect", "connect_sync"]

T = TypeVar("T")


class PluginError(RuntimeError):
    """An op or a workflow failed; the message is the plugin's, followed by its traceback."""


class ImageResult(np.ndarray):
    """A numpy array that Jupyter shows as a picture (2D, or the middle plane of a stack)."""

    axes: str | None = None

    def _repr_png_(self) -> bytes | None:
        from PIL import Image as PILImage

        data = np.asarray(self)
        while data.ndim > 2:  # the middle plane of each leading axis
            data = data[data.shape[0] // 2]
        if data.ndim != 2 or data.size == 0:
            return None
        data = data.astype(np.float64)
        low, high = np.percentile(data, [0.5, 99.5]) if data.size > 1 else (0.0, 1.0)
        scaled = np.clip((data - low) / max(high - low, 1e-12), 0, 1) * 255
        buffer = io.BytesIO()
        PILImage.fromarray(scaled.astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()


class TableResult(dict):
    """A dict of equal-length columns that Jupyter shows as a table (the first 50 rows)."""

    def _repr_html_(self) -> str:
        from html import escape

        columns = list(self)
        rows = len(next(iter(self.values()), []))
        head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(_cell(self[c][r]))}</td>" for c in columns) + "</tr>"
            for r in range(min(rows, 50))
        )
        more = f"<p>{rows} rows</p>" if rows > 50 else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _shown(value: Any, kind: str | None = None, axes: str | None = None) -> Any:
    """A result as the notebook shows it: arrays as :class:`ImageResult`, column dicts as tables."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        shown = np.asarray(value).view(ImageResult)
        shown.axes = axes
        return shown
    if isinstance(value, dict) and (kind == "table" or _columns(value)):
        return TableResult(value)
    return value


def _columns(value: dict[str, Any]) -> bool:
    lengths = {len(v) for v in value.values() if isinstance(v, list)}
    return bool(value) and len(lengths) == 1 and all(isinstance(v, list) for v in value.values())


def _settings(url: str | None, token: str | None) -> tuple[str, str]:
    url = (url or os.environ.get("SCOPEFLOW_URL") or "").rstrip("/")
    token = token or os.environ.get("SCOPEFLOW_TOKEN") or ""
    if not url:
        raise ValueError("give the hub's address: connect_sync(url=...) or the SCOPEFLOW_URL variable")
    return url, token


def _remote_error(exc: BaseException) -> PluginError:
    """The plugin's error, its message first and its traceback after."""
    text = str(exc).removeprefix("RemoteError:").strip()
    lines = text.splitlines()
    if lines and lines[0].startswith("Traceback"):
        last = next((line for line in reversed(lines) if line.strip()), "")
        text = f"{last.strip()}\n\n{text}"
    return PluginError(text or type(exc).__name__)


class _Loop:
    """An asyncio loop in a daemon thread: the sync client's calls run there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="scopeflow-client", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _Progress:
    """The app's side of a notebook: progress as tqdm bars, messages printed (UI calls of its own calls)."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def dispatch(self, caller: str, name: str, args: list[Any]) -> Any:
        if name == "showProgress" and args:
            value = float(args[0]["p"] if isinstance(args[0], dict) else args[0])
            percent = value * 100 if value <= 1 else value
            bar = self.bars.get(caller)
            if bar is None:
                from tqdm.auto import tqdm

                bar = self.bars[caller] = tqdm(total=100, desc=caller, unit="%", leave=False)
            bar.n = min(round(percent, 1), 100)
            bar.refresh()
        elif name in ("showMessage", "showStatus", "alert", "error", "showSnackbar") and args:
            print(
                f"[{caller}] {args[0] if not isinstance(args[0], dict) else args[0].get('content', args[0])}"
            )
        elif name == "confirm":
            return False  # nobody to ask
        return None

    def done(self, caller: str) -> None:
        bar = self.bars.pop(caller, None)
        if bar is not None:
            bar.close()


class Op:
    """A plugin's op as a blocking Python function with the op's signature and documentation."""

    def __init__(self, plugin: Plugin, spec: dict[str, Any]) -> None:
        self._plugin, self._spec = plugin, spec
        self.__name__ = spec["name"]
        parameters = []
        for port in spec.get("inputs") or []:
            default = inspect.Parameter.empty if port.get("required") else port.get("default")
            parameters.append(
                inspect.Parameter(port["name"], inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
            )
        self.__signature__ = inspect.Signature(parameters)
        lines = [spec.get("title") or spec["name"], "", spec.get("description") or ""]
        for port in spec.get("inputs") or []:
            kind = port.get("kind") if port.get("kind") != "value" else port.get("schema", {}).get("type")
            axes = f", axes {port['axes']}" if port.get("axes") else ""
            lines.append(
                f"  {port['name']} ({kind or 'any'}{axes}): {port.get('description') or ''}".rstrip()
            )
        self.__doc__ = "\n".join(lines).strip()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self.__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        return self._plugin._call(self._spec, list(bound.arguments.values()))

    def __repr__(self) -> str:
        return f"<op {self._plugin.name}.{self.__name__}{self.__signature__}>"


class Plugin:
    """A plugin of the hub: its ops as attributes (tab completion lists them)."""

    def __init__(self, hub: Hub, manifest: dict[str, Any], remote: Any) -> None:
        self._hub, self._remote = hub, remote
        self.name, self.id = manifest["name"], manifest["id"]
        self.__doc__ = manifest.get("docs") or manifest.get("description") or ""
        self._ops = {spec["name"]: Op(self, spec) for spec in manifest.get("ops") or []}

    def __getattr__(self, name: str) -> Any:
        ops = self.__dict__.get("_ops", {})
        if name in ops:
            return ops[name]
        raise AttributeError(f"{self.__dict__.get('name', 'the plugin')} has no op {name!r}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._ops))

    def __repr__(self) -> str:
        return f"<plugin {self.name!r}: {', '.join(self._ops)}>"

    def _call(self, spec: dict[str, Any], args: list[Any]) -> Any:
        method = self._remote[spec["name"]]

        async def call() -> Any:  # made and awaited on the client's loop (imjoy-rpc's futures live there)
            return await method(*args)

        try:
            result = self._hub._loop.run(call())
        except Exception as exc:
            raise _remote_error(exc) from None
        finally:
            self._hub._progress.done(self.id)
        outputs = spec.get("outputs") or []
        if len(outputs) == 1:
            return _shown(result, outputs[0].get("kind"), outputs[0].get("axes"))
        return result


class Hub:
    """A connection to a hub, with blocking calls (see the module's documentation)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self._token = url, token
        self._loop = _Loop()
        self._progress = _Progress()
        try:
            self._server = self._loop.run(self._connect())
        except BaseException:
            self._loop.close()
            raise

    async def _connect(self) -> Any:
        from scopeflow.rpc.client import connect as connect_async

        server = await connect_async(self.url, token=self._token, method_timeout=7 * 24 * 3600)
        service = {"id": "imjoy-api", "dispatch": self._progress.dispatch, "config": {"own_calls_only": True}}
        await server.register_service(service)
        return server

    def _get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self._token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def plugins(self) -> list[str]:
        """The names of the hub's plugins."""
        return sorted(p["name"] for p in self._get("/api/plugins")["plugins"])

    def get_plugin(self, name: str) -> Plugin:
        """The plugin called ``name`` (or with that id); its kernel starts if it is not running."""
        listed = self._get("/api/plugins")["plugins"]
        manifest = next((p for p in listed if name in (p["name"], p["id"])), None)
        if manifest is None:
            raise KeyError(f"no plugin called {name!r}; the hub has: {', '.join(p['name'] for p in listed)}")
        try:
            remote = self._loop.run(self._server.get_plugin(manifest["id"]))
        except Exception as exc:
            raise _remote_error(exc) from None
        return Plugin(self, manifest, remote)

    def run_workflow(self, workflow: Any, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a workflow (a document, a JSON file, a saved workflow's name or a gallery name) with these
        inputs; returns its outputs by name (images: :class:`ImageResult`, tables: :class:`TableResult`)."""
        doc = self._document(workflow)
        return self._loop.run(self._run(doc, dict(inputs or {})))

    async def _run(self, doc: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        service = await self._server.get_service("workflows")
        try:
            record = dict(await service.run(doc, inputs, None, None))
        except Exception as exc:
            raise _remote_error(exc) from None
        if record.get("state") != "done":
            failed = [
                f"{node}: {info.get('traceback') or info.get('error')}"
                for node, info in (record.get("nodes") or {}).items()
                if info.get("state") == "error"
            ]
            raise PluginError(f"the workflow ended {record.get('state')}\n" + "\n".join(failed))
        outputs = {}
        for name, spec in (record.get("outputs") or {}).items():
            value = await service.run_output(record["id"], name)
            outputs[name] = _shown(value, (spec.get("summary") or {}).get("kind"))
        return outputs

    def _document(self, workflow: Any) -> dict[str, Any]:
        if isinstance(workflow, dict):
            return workflow
        text = str(workflow)
        if text.endswith(".json") and Path(text).is_file():
            loaded: dict[str, Any] = json.loads(Path(text).read_text(encoding="utf-8"))
            return loaded
        quoted = urllib.parse.quote(text, safe="")
        for path in (f"/api/workflows/{quoted}", f"/api/gallery/{quoted}"):
            try:
                found: dict[str, Any] = self._get(path)
                return found
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
        raise KeyError(f"no workflow {text!r}: not a file, a saved workflow or a gallery workflow")

    def disconnect(self) -> None:
        try:
            self._loop.run(self._server.disconnect())
        finally:
            self._loop.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


def connect_sync(url: str | None = None, token: str | None = None) -> Hub:
    """A blocking connection to the hub at ``url`` (default ``$SCOPEFLOW_URL``) with ``token`` (default
    ``$SCOPEFLOW_TOKEN``)."""
    return Hub(*_settings(url, token))


async def connect(url: str | None = None, token: str | None = None, **options: Any) -> Any:
    """The async connection (imjoy-rpc's interface: ``await server.get_plugin(name)`` ...), with the same
    defaults as :func:`connect_sync`."""
    from scopeflow.rpc.client import connect as connect_async

    address, key = _settings(url, token)
    return await connect_async(address, token=key, **options)
