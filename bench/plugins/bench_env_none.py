"""A plugin whose requirements the hub already has: it needs no environment of its own."""

from scopeflow import op

PLUGIN = {"id": "env-none", "name": "Env none", "version": "0.1.0", "requirements": ["numpy", "scipy"]}


@op
def ping() -> str:
    return "pong"
