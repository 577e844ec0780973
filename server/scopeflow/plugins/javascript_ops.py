"""The ops of an ImJoy JavaScript plugin, read from its script without running it (best effort), and the
title an op gets from its name."""

from __future__ import annotations

import json
import re
from typing import Any

from scopeflow.plugins.ports import Hint, make_port

__all__ = ["javascript_ops", "op_title"]


def op_title(name: str) -> str:
    """``find_nuclei`` → ``Find nuclei``."""
    words = name.replace("_", " ").strip() or name
    return words[:1].upper() + words[1:]


_JS_EXPORT = re.compile(r"api\.export\(\s{0,80}new\s{1,80}([A-Za-z_$][\w$]{0,200})")
_JS_METHOD = re.compile(
    r"^[ \t]{0,200}(?:async\s{1,80})?([A-Za-z_$][\w$]{0,200})\s{0,80}\(([^(){};]{0,1000})\)\s{0,80}\{", re.M
)
_JS_NOT_OPS = {"constructor", "setup", "if", "for", "while", "switch", "catch", "function", "with", "return"}


def javascript_ops(code: str) -> list[dict[str, Any]]:
    """Best effort: methods of the class exported by ``api.export(new X())``; braces in strings confuse it."""
    exported = _JS_EXPORT.search(code)
    name = re.escape(exported.group(1)) if exported else ""
    cls = exported and re.search(rf"\bclass\s{{1,80}}{name}\b[^{{]{{0,1000}}\{{", code)
    ops: list[dict[str, Any]] = []
    depth, pos = 0, cls.end() if cls else len(code)
    for method in _JS_METHOD.finditer(code, pos):
        depth += code.count("{", pos, method.start()) - code.count("}", pos, method.start())
        pos, op_name, params = method.start(), method.group(1), method.group(2)
        if depth < 0:  # past the end of the class
            break
        if depth == 0 and op_name not in _JS_NOT_OPS and op_name.isidentifier() and op_name[0] != "_":
            names = [p.partition("=") for p in params.split(",")] if not re.search(r"[{\[]", params) else []
            inputs = [
                make_port(p.strip(), Hint(), _js_literal(value), not eq)
                for p, eq, value in names
                if p.strip().isidentifier()
            ]
            result = make_port("result", Hint(), None, True)
            ops.append({"name": op_name, "title": op_title(op_name), "inputs": inputs, "outputs": [result]})
    return ops


def _js_literal(text: str) -> Any:
    try:
        return json.loads(text.strip().replace("'", '"')) if text.strip() else None
    except ValueError:
        return None
