"""Who may call the hub: the token, on every request, and nothing else.

jupyter-server's identity provider turns a token seen in a URL into a login cookie that lasts 30 days. The
web app keeps the token for one tab's session and sends it with every request, so that cookie would only
outlive what the user meant (a closed tab, a forgotten token) and open every door to same-site pages.

The token reaches the provider in code (:func:`use_token`, called by ``scopeflow serve``), never through a
command line, a configuration file or the environment the hub's kernels inherit; it is compared in constant
time; and jupyter's login and logout pages are not mounted.
"""

from __future__ import annotations

import hmac
import sys
from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from traitlets import default

__all__ = ["TokenIdentityProvider", "same_secret", "use_token"]

_given: dict[str, Any] = {}  # {"token": str, "generated": bool} once use_token was called


def use_token(token: str, *, generated: bool = False) -> None:
    """The token of the hub about to start in this process (``generated``: chosen by the hub, so the user
    learns it only from the URL the hub prints)."""
    _given.update(token=token, generated=generated)


def same_secret(given: object, expected: str | None) -> bool:
    """``given == expected`` in time that does not depend on where they differ (False if either is empty
    or ``given`` is not a string)."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


class TokenIdentityProvider(IdentityProvider):
    """jupyter-server's token check, without login cookies: each request must carry the token itself."""

    @default("token")
    def _token_default(self) -> str:
        if "token" in _given:
            return str(_given["token"])
        return str(super()._token_default())

    @property
    def token_chosen_by_hub(self) -> bool:
        """The token was generated at start: the printed URL is the only place the user can learn it."""
        return bool(_given.get("generated")) if "token" in _given else bool(self.token_generated)

    def announced_token(self) -> str:
        """What the start-up message shows after ``?token=``: the token if the user has no other way to learn
        it, or if it goes to a terminal; a placeholder when the user gave it and the output goes to a file
        (a log a plugin kernel, running as the same user, could read)."""
        if self.token_chosen_by_hub or _isatty(sys.stdout):
            return str(self.token)
        return "..."

    async def get_user_token(self, handler: Any) -> Any:
        """jupyter-server's check (token in the URL or the Authorization header), in constant time."""
        if not same_secret(self.get_token(handler), self.token):
            return None
        return self.generate_anonymous_user(handler)  # no cookie to read a user from (get_user_cookie)

    def process_login_form(self, handler: Any) -> Any:
        """No login form is mounted (see get_handlers); were one reached, it compares in constant time."""
        if same_secret(handler.get_argument("password", default=""), self.token):
            return self.generate_anonymous_user(handler)
        return None

    def get_handlers(self) -> list[tuple[str, object]]:
        """No ``/login`` or ``/logout``: there is no session to log into or out of."""
        return []

    def set_login_cookie(self, handler: Any, user: Any) -> None:
        """Never set one."""

    def get_user_cookie(self, handler: Any) -> None:
        """Never accept one (a cookie set by an earlier version, or by another Jupyter on this port)."""
        return None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
