"""scopeflow: deep learning for microscopy in the browser.

Plugin authors need only this: ``from scopeflow import op, Image, Table, api``. Notebooks and scripts use
``scopeflow.connect_sync()`` (or ``await scopeflow.connect()``): see :mod:`scopeflow.rpc.notebook`.
"""

from typing import Any

__version__ = "0.1.0"

from scopeflow.sdk import Image, Table, api, op

__all__ = ["Image", "Table", "__version__", "api", "connect", "connect_sync", "op"]


def __getattr__(name: str) -> Any:
    """``connect`` and ``connect_sync``, imported on first use (plugin kernels never load the client)."""
    if name in ("connect", "connect_sync"):
        from scopeflow.rpc import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'scopeflow' has no attribute {name!r}")


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Entry point jupyter-server uses to find the hub (imported lazily: kernels never load it)."""
    from scopeflow.hub.app import Hub

    return [{"module": "scopeflow.hub.app", "app": Hub}]
