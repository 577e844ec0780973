"""Pins a newer tabulate than the other test plugin, and asks for a second package with ``pip:``."""

from scopeflow import op

PLUGIN = {
    "id": "new-tables",
    "name": "New Tables",
    "version": "0.1.0",
    "requirements": ["pip: tabulate==0.9.0 termcolor"],
}


@op
def versions() -> dict:
    import importlib.metadata

    return {name: importlib.metadata.version(name) for name in ("tabulate", "termcolor")}
