"""The hub's start leaves out jsonschema's optional IRI checker (``rfc3987_syntax`` builds 39 Lark grammars
at import: about a second of every start). These tests hold the upstream behaviour that relies on: if
jupyter-events stops pulling the module in, or jsonschema stops treating it as optional, they fail, and the
line in ``scopeflow.cli.main`` should go. The fix belongs upstream, in rfc3987-syntax 1.1.0 (build the
grammars on first use: https://github.com/willynilly/rfc3987-syntax/issues), which jsonschema 4.26 imports
while it imports its format checkers."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = """
import sys, time
{block}
started = time.perf_counter()
import jupyter_events.logger, jsonschema
elapsed = time.perf_counter() - started
module = sys.modules.get("rfc3987_syntax")
checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
print(module is not None, "iri" in checker.checkers, round(elapsed, 3))
"""


def probe(block: str) -> tuple[bool, bool, float]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(block=block)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded, iri, seconds = done.stdout.split()
    return loaded == "True", iri == "True", float(seconds)


def test_jupyter_events_still_pulls_in_the_grammar_builder() -> None:
    loaded, iri, _ = probe("")
    assert loaded and iri, "upstream no longer imports rfc3987_syntax: drop the block in scopeflow.cli.main"


def test_blocking_it_loses_only_the_iri_formats_and_the_wait() -> None:
    loaded, iri, blocked = probe('sys.modules.setdefault("rfc3987_syntax", None)')
    assert not loaded and not iri  # jsonschema treats it as optional: no error, no IRI checker
    _, _, plain = probe("")
    assert blocked < plain, (blocked, plain)
