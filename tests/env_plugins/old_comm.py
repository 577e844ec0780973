"""Asks for another version of a package the Jupyter kernel itself imports (comm): it cannot be swapped."""

from scopeflow import op

PLUGIN = {"id": "old-comm", "name": "Old Comm", "version": "0.1.0", "requirements": ["comm==0.2.2"]}


@op
def loaded() -> str:
    import comm

    return comm.__version__
