"""The base of every HTTP handler of the hub: its parts, JSON in and out, no secret in the log.

Handlers translate HTTP to calls on the hub's managers and nothing else (the jupyter-server manner: each
sub-package's ``handlers.py`` ends with ``default_handlers``, and :mod:`scopeflow.hub.app` mounts them).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tornado import web

__all__ = ["SECRET_PARAMS", "HubMixin"]

SECRET_PARAMS = re.compile(r"\b(token|reconnection_token|plugin_secret)=[^&\s]*")


class HubMixin:
    """Access to the hub's parts from a handler; secrets in URLs never reach the log."""

    settings: dict[str, Any]
    request: Any
    finish: Any
    set_status: Any

    @property
    def hub(self) -> Any:
        return self.settings["scopeflow_hub"]

    def _request_summary(self) -> str:
        uri = SECRET_PARAMS.sub(r"\1=[secret]", self.request.uri or "")
        return f"{self.request.method} {uri} ({self.request.remote_ip})"

    def finish_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(value))

    def body(self) -> Any:
        """The request's JSON body (400 if it is not JSON)."""
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as exc:
            raise web.HTTPError(400, f"the body is not JSON: {exc}") from None
