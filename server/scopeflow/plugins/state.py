"""The runtime state of one plugin: its kernel, launch generation, status, logs and environment."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Plugin", "PluginCrashed"]


class PluginCrashed(RuntimeError):
    """A plugin's kernel failed to start, or died."""


@dataclass
class Plugin:
    """Runtime state of one plugin: ``stopped`` → ``starting`` → ``ready`` | ``crashed``.

    Every launch and every stop takes a new ``generation``; events that belong to an older one (a late
    disconnect, a start-up that finished after a stop) are ignored. ``lock`` orders launches and stops.
    """

    id: str
    state: str = "stopped"
    kernel_id: str | None = None
    error: str | None = None
    logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    started_at: float | None = None
    installing: bool = False  # its requirements are being installed (the start-up timeout waits)
    installed_at: float | None = None  # when installing ended, in this launch
    startup_seconds: float | None = None
    generation: int = 0
    secret: str | None = None  # the current launch's kernel connects with it
    connected: bool = False  # the current launch's kernel holds the plugin's route
    ready: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | None = None
    client: Any = None
    reader: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    shutdowns: set[asyncio.Future[None]] = field(default_factory=set)  # its kernels being shut down
    sha256: str | None = None  # of the plugin file the current launch runs
    environment: dict[str, Any] | None = None  # its layer's key, resolved versions and installed packages

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "kernel_id": self.kernel_id,
            "error": self.error,
            "startup_seconds": self.startup_seconds,
            "environment": self.environment,
        }
