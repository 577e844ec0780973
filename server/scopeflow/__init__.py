"""scopeflow: deep learning for microscopy in the browser.

Plugin authors need only this: ``from scopeflow import op, Image, Table, api``.
"""

__version__ = "0.1.0"

from scopeflow.sdk import Image, Table, api, op

__all__ = ["Image", "Table", "__version__", "api", "op"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Entry point jupyter-server uses to find the hub (imported lazily: kernels never load it)."""
    from scopeflow.hub.app import Hub

    return [{"module": "scopeflow.hub.app", "app": Hub}]
