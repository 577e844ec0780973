"""Start and stop a throwaway hub for a benchmark (free loopback port, temporary data dir)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from scopeflow.cli.launcher import announced_url

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM, Linux), in MB; 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class BenchHub:
    def __init__(self, env: dict[str, str] | None = None, config: dict[str, Any] | None = None) -> None:
        self.env = env or {}
        self.config = config or {}  # traitlets configuration, e.g. {"Hub": {"web_dir": ...}}
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="scopeflow-bench-")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchHub:
        log = open(Path(self._tmp.name) / "hub.log", "wb")
        if self.config:
            config_dir = Path(self._tmp.name) / "config"
            config_dir.mkdir()
            (config_dir / "jupyter_server_config.json").write_text(json.dumps(self.config))
            self.env["JUPYTER_CONFIG_DIR"] = str(config_dir)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scopeflow.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--no-browser",
                "--data-dir",
                self._tmp.name,
                "--plugins-dir",
                str(BENCH / "plugins"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, "SCOPEFLOW_TOKEN": self.token},  # never on a command line
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            url = announced_url((Path(self._tmp.name) / "hub.log").read_text(errors="replace"))
            if url is None:  # the port it really took, and the token goes nowhere else
                time.sleep(0.2)
                continue
            self.url = url
            try:
                req = urllib.request.Request(
                    self.url + "/api/hub", headers={"Authorization": f"token {self.token}"}
                )
                with urllib.request.urlopen(req, timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the hub did not start")

    def get(self, path: str) -> bytes:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=60) as res:
            return bytes(res.read())

    def peak_rss_mb(self) -> float:
        """The hub process's peak resident memory (Linux), in MB."""
        return peak_rss_mb(self.process.pid) if self.process else 0.0

    def __exit__(self, *exc: object) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(20)
        self._tmp.cleanup()
