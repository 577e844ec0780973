"""Property-based fuzzing of what parses untrusted input: plugin files, workflow documents, RPC frames.

Whatever the input, each parser either accepts it or raises its own clear error type, quickly; nothing
else escapes (no RecursionError, TypeError, KeyError ...). Bounded so that CI runs it in seconds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scopeflow.hub.router import FrameError, read_main
from scopeflow.plugins.manifest import ManifestError, parse_plugin
from scopeflow.plugins.registry import Registry
from scopeflow.workflows.document import validate

pytestmark = pytest.mark.unit

EXAMPLES = int(os.environ.get("SCOPEFLOW_FUZZ_EXAMPLES", "150"))  # more, to hunt locally
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
PACKABLE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
HEADER = st.fixed_dictionaries(
    {"type": PACKABLE | st.just("method"), "to": PACKABLE | st.just("a/b")}
).flatmap(
    lambda main: st.dictionaries(st.text(max_size=8), PACKABLE, max_size=4).map(
        lambda extra: {**extra, **main}
    )
)
CONFIG_KEYS = ["name", "type", "version", "requirements", "tags", "ui", "mode", "id", "api_version", "inputs"]


@FUZZ
@given(
    config=st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON, max_size=8),
    script=st.text(max_size=200),
    lang=st.sampled_from(["json", "yaml"]),
)
def test_imjoy_files_parse_or_say_why(config: dict, script: str, lang: str) -> None:
    body = json.dumps(config)
    text = f'<config lang="{lang}">\n{body}\n</config>\n<script lang="python">\n{script}\n</script>\n'
    started = time.monotonic()
    try:
        manifest = parse_plugin(text.encode(), "fuzz.imjoy.html")
    except ManifestError as exc:
        assert "fuzz.imjoy.html" in str(exc)
    else:
        assert manifest.name and manifest.id
    assert time.monotonic() - started < 2


@FUZZ
@given(source=st.text(max_size=400))
def test_python_files_parse_or_say_why(source: str) -> None:
    try:
        parse_plugin(source.encode(), "fuzz.py")
    except ManifestError as exc:
        assert "fuzz.py" in str(exc)


@FUZZ
@given(
    data=st.binary(max_size=300)
    | PACKABLE.map(lambda v: msgpack.packb(v, use_bin_type=True))
    | st.tuples(HEADER, PACKABLE).map(lambda hv: msgpack.packb(hv[0]) + msgpack.packb(hv[1]))
)
def test_rpc_frames_route_or_are_refused(data: bytes) -> None:
    try:
        main, start = read_main(data)
    except FrameError:
        return
    assert isinstance(main["to"], str) and isinstance(main["type"], str) and 0 < start <= len(data)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    plugins = Path(__file__).parent / "workflow_plugins"
    found = Registry(None, [plugins], tmp_path_factory.mktemp("fuzz") / "data")
    found.scan()
    return found


NODE = st.fixed_dictionaries(
    {"id": JSON | st.text(max_size=8), "plugin": JSON | st.just("wf-ops"), "op": JSON | st.just("make")},
    optional={"params": JSON},
)


@FUZZ
@given(
    doc=st.fixed_dictionaries(
        {"format": st.just("scopeflow.workflow") | JSON, "version": st.just(1) | JSON},
        optional={
            "nodes": st.lists(NODE, max_size=4) | JSON,
            "edges": JSON,
            "inputs": JSON,
            "outputs": JSON,
            "plugins": JSON,
        },
    )
    | JSON
)
def test_workflow_documents_check_or_say_why(registry: Registry, doc: object) -> None:
    result = validate(doc, registry)
    assert isinstance(result["ok"], bool) and isinstance(result["errors"], list)
    if not result["ok"]:
        assert all(isinstance(e["message"], str) and e["message"] for e in result["errors"])
