"""A scopeflow plugin that uses the ImJoy ``api`` without importing it, as ImJoy 0.1 plugins did."""

from scopeflow import op

PLUGIN = {"id": "global-api", "name": "Global api", "version": "0.1.0"}


@op
def greet(name: str = "you") -> str:
    """Greets, and logs through the api global."""
    api.log("greeting " + name).result(30)  # noqa: F821 (a global of every plugin module)
    return f"hello {name}, tag {api.TAG!r}"  # noqa: F821
