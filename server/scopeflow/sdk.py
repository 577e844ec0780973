"""What plugin code imports: ``from scopeflow import op, Image, Table, api``.

``op`` marks a function as an operation of the plugin; the hub reads the declaration statically (see
:mod:`scopeflow.plugins.manifest`), and the plugin kernel exports every marked function. ``Image`` and
``Table`` are type markers for ports (``Image["yx"]`` names the axes). ``api`` is the ImJoy ``api`` object of
the plugin's kernel (``api.log``, ``api.showMessage``, ``api.showProgress``, ``api.getPlugin``, ...);
inside a kernel ``from imjoy import api`` gives the same object, so ImJoy plugins run unmodified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Image", "Table", "api", "op"]

F = TypeVar("F", bound=Callable[..., Any])

# Whom an op call is for, so that what the plugin shows while it runs reaches them: the hub tags each call
# it makes for a workflow node with ``<run>/<node>`` (this keyword, stripped before the op sees it); a call
# from a client (a tab of the web app, a script) is tagged ``client:<its id>`` from imjoy-rpc's context.
# UI calls made while the op runs carry the tag back (``call=``): progress reaches that run alone, and
# messages, prompts and windows go to the tab that asked, not to the newest tab.
CALL_KEYWORD = "_scopeflow_call"
UI_CALLS = (
    "showMessage",
    "showProgress",
    "showStatus",
    "error",
    "alert",
    "confirm",
    "prompt",
    "showDialog",
    "createWindow",
    "showSnackbar",
)


class Image:
    """Type marker for an n-dimensional image port; ``Image["yx"]`` also names its axes."""

    axes: str | None = None

    def __class_getitem__(cls, axes: str) -> type[Image]:
        return type(f"Image[{axes!r}]", (cls,), {"axes": axes})


class Table:
    """Type marker for a table port: a dict of equal-length columns, or a list of row dicts."""


def op(
    fn: F | None = None,
    *,
    title: str | None = None,
    description: str | None = None,
    inputs: dict[str, dict[str, Any]] | None = None,
    outputs: list[str] | dict[str, Any] | None = None,
    long_running: bool = False,
) -> Any:
    """Declare a plugin operation: ``@op`` or ``@op(title=..., inputs={"sigma": {"minimum": 0}})``.

    A sync op runs in a worker thread, or on the kernel's event loop once it has shown it is quick
    (:mod:`scopeflow.plugins.pacing`); ``long_running=True`` keeps it in threads whatever it shows."""

    def mark(function: F) -> F:
        function.__scopeflow_op__ = {  # type: ignore[attr-defined]
            "title": title,
            "description": description,
            "inputs": inputs or {},
            "outputs": outputs,
            "long_running": long_running,
        }
        return function

    return mark(fn) if fn is not None else mark


class _ApiProxy:
    """``scopeflow.api``: the current kernel's api (:class:`scopeflow.plugins.kernel_api.PluginApi`), once
    the kernel has connected."""

    target: Any = None

    def __getattr__(self, name: str) -> Any:
        if self.target is None:
            raise RuntimeError("scopeflow.api is only available inside a plugin kernel connected to a hub")
        return getattr(self.target, name)


api = _ApiProxy()
