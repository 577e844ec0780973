"""The base of every HTTP handler of the hub: its parts, JSON in and out, no secret in the log.

Handlers translate HTTP to calls on the hub's managers and nothing else (the jupyter-server manner: each
sub-package's ``handlers.py`` ends with ``default_handlers``, and :mod:`scopeflow.hub.app` mounts them).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from tornado import web

from scopeflow._util import disk_full

__all__ = ["SECRET_PARAMS", "HubMixin", "redact", "redact_logs", "safe_error_pages"]

SECRET_PARAMS = re.compile(r"\b(token|reconnection_token|plugin_secret)=[^&\s'\"]*")
AUTH_HEADER = re.compile(r"\b((?:token|bearer)\s+)[^\s'\",}]+", re.IGNORECASE)
_secrets: set[str] = set()  # literal values never to be logged (the hub's token)


def redact(text: str) -> str:
    """``text`` with every ``token=``, ``plugin_secret=`` ... value and every known secret replaced."""
    text = SECRET_PARAMS.sub(r"\1=[secret]", text)
    text = AUTH_HEADER.sub(r"\1[secret]", text)
    for secret in _secrets:
        text = text.replace(secret, "[secret]")
    return text


def redact_logs(*secrets: str) -> None:
    """From now on, no log record of this process holds a secret: its message, arguments and traceback are
    redacted as the record is made, whichever logger (jupyter's request log, tornado's "Uncaught exception"
    with the request's repr, ours) and whichever handler writes it. Idempotent."""
    _secrets.update(s for s in secrets if len(s) >= 4)  # a 1-3 character "secret" would redact everything
    make = logging.getLogRecordFactory()
    if getattr(make, "scopeflow_redacts", False):
        return

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made = make(*args, **kwargs)
        try:
            message = made.getMessage()
        except Exception:  # a broken format string: let the handler report it as it would
            return made
        clean = redact(message)
        if clean != message or made.args:
            made.msg, made.args = clean, ()
        if made.exc_info and not made.exc_text:
            made.exc_text = redact(logging.Formatter().formatException(made.exc_info))
        if made.stack_info:
            made.stack_info = redact(made.stack_info)
        return made

    record.scopeflow_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(record)


# jupyter-server's page.html puts the token into every HTML page of a token-authenticated request (error pages
# included: ``/nope?token=...`` answered a 404 holding it) and links jupyter's own static files. These replace
# page.html and error.html (404.html extends them): the status and a redacted message, nothing else.
SAFE_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{% block title %}scopeflow{% endblock %}</title>
{% block stylesheet %}{% endblock %}{% block meta %}{% endblock %}</head>
<body {% block params %}{% endblock %}>{% block site %}{% endblock %}{% block script %}{% endblock %}</body>
</html>
"""
SAFE_ERROR = """{% extends "page.html" %}
{% block title %}{{status_code}} {{status_message | scopeflow_redact}}{% endblock %}
{% block site %}
<h1>{% block h1_error %}{{status_code}} : {{status_message | scopeflow_redact}}{% endblock h1_error %}</h1>
{% block error_detail %}{% if message %}<pre>{{message | scopeflow_redact}}</pre>{% endif %}{% endblock %}
{% endblock %}
"""


def safe_error_pages(web_app: Any) -> None:
    """Make jupyter-server's HTML pages (errors, 404s) of ``web_app`` hold no token (see SAFE_PAGE)."""
    from jinja2 import ChoiceLoader, DictLoader

    env = web_app.settings["jinja2_env"]
    env.filters["scopeflow_redact"] = lambda value: redact(str(value))
    env.loader = ChoiceLoader([DictLoader({"page.html": SAFE_PAGE, "error.html": SAFE_ERROR}), env.loader])
    if env.cache is not None:
        env.cache.clear()


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
        uri = redact(self.request.uri or "")
        return f"{self.request.method} {uri} ({self.request.remote_ip})"

    def finish_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(value))

    def _handle_request_exception(self, e: BaseException) -> None:
        """A full disk is a 507 that says so (and nothing half-written is kept: writes are atomic)."""
        full = disk_full(e)
        if full is None:
            super()._handle_request_exception(e)  # type: ignore[misc]
            return
        try:  # raised, so that the error page (which reads sys.exc_info) shows this message
            raise web.HTTPError(507, str(full).replace("%", "%%")) from e
        except web.HTTPError as error:
            super()._handle_request_exception(error)  # type: ignore[misc]

    def body(self) -> Any:
        """The request's JSON body (400 if it is not JSON)."""
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as exc:
            raise web.HTTPError(400, f"the body is not JSON: {exc}") from None
        except RecursionError:
            raise web.HTTPError(400, "the body is JSON nested too deeply") from None
