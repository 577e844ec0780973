"""The run's progress on stderr: a bar on a terminal, one line per node state otherwise."""

from __future__ import annotations

import io

from scopeflow.cli.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def node(name: str, state: str, **extra: object) -> dict:
    return {"type": "node", "node": name, "state": state, **extra}


def test_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = Progress(["a", "b"], stream=stream)
    for event in (
        node("a", "queued"),
        node("a", "running", progress=0.1),
        node("a", "running", progress=0.5),
        node("a", "done", seconds=1.25),
        node("b", "cached", seconds=0.0),
        {"type": "run", "state": "done"},
    ):
        bar.event(event)
    bar.close()
    assert stream.getvalue().splitlines() == ["a: running", "a: done (0.00 s)", "b: cached"]
    assert "\r" not in stream.getvalue()


def test_an_error_line_names_the_reason():
    stream = io.StringIO()
    Progress(["a"], stream=stream).event(node("a", "error", error="Traceback...\nValueError: bad image"))
    assert stream.getvalue() == "a: error: ValueError: bad image\n"


def test_a_bar_on_a_terminal():
    stream = Terminal()
    bar = Progress(["a", "b"], stream=stream)
    bar.event(node("a", "done"))
    bar.event(node("b", "running", progress=0.5))
    text = stream.getvalue()
    assert text.count("\r") == 2 and "\n" not in text
    assert "[##################------] 1/2 nodes  b 50%" in text.split("\r")[-1]
    bar.close()
    assert stream.getvalue().endswith("\n")
