"""Kernel bootstrap pieces that need no kernel: script extraction, requirement checks, op services."""

from __future__ import annotations

import pytest

from scopeflow import op
from scopeflow.plugins.bootstrap import load_module, missing_requirements, op_service
from scopeflow.plugins.manifest import ManifestError, python_code


def test_python_code_keeps_the_file_line_numbers():
    source = '<config lang="json">{}</config>\n<script lang="python">\nx = 1 < 2\nraise ValueError\n</script>'
    code = python_code(source, "p.imjoy.html")
    assert code.splitlines()[3] == "raise ValueError"  # line 4 of the file
    assert python_code("y = 2\n", "p.py") == "y = 2\n"
    with pytest.raises(ManifestError, match="no <script"):
        python_code('<script lang="javascript">1</script>', "w.imjoy.html")


def test_missing_requirements_are_named_not_installed():
    assert missing_requirements(["numpy", "pip:msgpack>=1", "conda:whatever"]) == []
    assert missing_requirements(["surely-not-installed-pkg==1.0"]) == ["surely-not-installed-pkg==1.0"]


async def test_op_service_exports_only_ops():
    module = load_module(
        "t_ops",
        "from scopeflow import op\n@op\ndef a(x: int) -> int:\n    return x + 1\ndef helper():\n    pass\n",
        "t_ops.py",
    )
    service = op_service(module)
    assert set(service) == {"a"} and await service["a"](1) == 2  # a sync op: a thread's future at first
    empty = load_module("t_empty", "x = 1\n", "t_empty.py")
    with pytest.raises(ValueError, match="no @op"):
        op_service(empty)


def test_op_decorator_keeps_the_function():
    @op(title="Twice", inputs={"v": {"minimum": 0}})
    def twice(v: int) -> int:
        return 2 * v

    assert twice(4) == 8
    assert twice.__scopeflow_op__["title"] == "Twice"
