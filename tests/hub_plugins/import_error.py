"""Test plugin whose module fails while loading."""

from scopeflow import op

PLUGIN = {"id": "import-error", "name": "Import error", "version": "0.0.1"}

import this_module_does_not_exist  # noqa: E402,F401


@op
def never() -> None:
    return None
