"""Who may call the hub: the token, on every request, and nothing else.

jupyter-server's identity provider turns a token seen in a URL into a login cookie that lasts 30 days. The
web app keeps the token for one tab's session and sends it with every request, so that cookie would only
outlive what the user meant (a closed tab, a forgotten token) and open every door to same-site pages.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider


class TokenIdentityProvider(IdentityProvider):
    """jupyter-server's token check, without login cookies: each request must carry the token itself."""

    def set_login_cookie(self, handler: Any, user: Any) -> None:
        """Never set one."""

    def get_user_cookie(self, handler: Any) -> None:
        """Never accept one (a cookie set by an earlier version, or by another Jupyter on this port)."""
        return None
