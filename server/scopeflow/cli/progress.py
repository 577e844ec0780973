"""Progress of a workflow run on the terminal (stderr).

On a terminal: one bar redrawn in place (nodes finished out of all, the node running and its progress).
Otherwise (a log file, a pipe): one line per change of a node's state, nothing redrawn.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]

FINISHED = ("done", "cached", "error", "cancelled")


class Progress:
    def __init__(self, nodes: list[str], stream: TextIO | None = None, prefix: str = "") -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.nodes = list(nodes)
        self.prefix = prefix
        self.states: dict[str, str] = {}
        self.progress: dict[str, float | None] = {}
        self.started = time.monotonic()
        self.began: dict[str, float] = {}  # when each node was first seen running
        self._drawn = False

    def event(self, event: dict[str, Any]) -> None:
        """Take one runner event (``type`` node or run)."""
        if not isinstance(event, dict) or event.get("type") != "node":
            return
        node, state = str(event.get("node")), str(event.get("state"))
        if node not in self.nodes:
            self.nodes.append(node)
        changed = self.states.get(node) != state
        if state == "running":
            self.began.setdefault(node, time.monotonic())
        self.states[node] = state
        self.progress[node] = event.get("progress")
        if self.tty:
            self.draw()
        elif changed and state != "queued":
            self._line(self._describe(node, state, event))

    def _describe(self, node: str, state: str, event: dict[str, Any]) -> str:
        text = f"{self.prefix}{node}: {state}"
        if state == "done" and node in self.began:  # the node's own time, not its wait for its inputs
            text += f" ({time.monotonic() - self.began[node]:.2f} s)"
        if state == "error" and event.get("error"):
            text += f": {str(event['error']).strip().splitlines()[-1]}"
        return text

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def draw(self) -> None:
        total = max(len(self.nodes), 1)
        finished = sum(1 for n in self.nodes if self.states.get(n) in FINISHED)
        running = [n for n in self.nodes if self.states.get(n) == "running"]
        fraction = finished / total
        for node in running:
            part = self.progress.get(node)
            fraction += (float(part) if isinstance(part, int | float) else 0.0) / total
        width = 24
        filled = min(width, round(fraction * width))
        bar = "#" * filled + "-" * (width - filled)
        now = ", ".join(
            f"{n} {int(100 * float(p))}%" if isinstance(p := self.progress.get(n), int | float) else n
            for n in running
        )
        errors = sum(1 for n in self.nodes if self.states.get(n) == "error")
        text = f"{self.prefix}[{bar}] {finished}/{total} nodes"
        text += f", {errors} failed" if errors else ""
        text += f"  {now}" if now else ""
        text += f"  {time.monotonic() - self.started:.1f} s"
        columns = shutil.get_terminal_size((80, 20)).columns
        self.stream.write("\r" + text[: columns - 1].ljust(columns - 1))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line (on a terminal) so that what follows starts on a new one."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
