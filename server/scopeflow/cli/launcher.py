"""A hub of one's own for a command-line run: ``scopeflow serve`` on a free loopback port, random token (on a
pipe: never on a command line or in an environment)."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["LocalHub"]

TOKEN_VARIABLES = ("SCOPEFLOW_TOKEN", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE")  # as in scopeflow.cli.main


ANNOUNCED = re.compile(r"Open this URL in a browser:\s+(https?://[^\s?]+?)/?\?token=")


def announced_url(log: str) -> str | None:
    """The URL a hub printed once it listened (its port may differ from the one asked for, if that
    one was taken meanwhile); None until it has."""
    found = ANNOUNCED.search(log)
    return found.group(1) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalHub:
    """``with LocalHub(data_dir) as hub:`` — ``hub.url`` and ``hub.token`` while the block runs."""

    def __init__(
        self, data_dir: str | Path, extra_args: list[str] | None = None, timeout: float = 90
    ) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.extra_args = list(extra_args or [])
        self.timeout = timeout
        self.token = secrets.token_urlsafe(24)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open while the hub runs
            prefix="scopeflow-hub-", suffix=".log", delete=False
        )

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def __enter__(self) -> LocalHub:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "scopeflow.cli.main", "serve", "--no-browser", "--host", "127.0.0.1",
            "--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args,
        ]  # fmt: skip
        # a headless run that the cache answers starts no kernel at all; the spare comes with the first
        env = {"SCOPEFLOW_SPARE_KERNEL": "lazy", **os.environ}
        # the token on a pipe: every local user can read a command line, every process of this user (the
        # hub's kernels included) an environment
        for name in TOKEN_VARIABLES:
            env.pop(name, None)
        read_end = None
        if os.name == "posix":
            read_end, write_end = os.pipe()
            os.write(write_end, self.token.encode())
            os.close(write_end)
            command += ["--token-fd", str(read_end)]
        else:  # no descriptors to pass: the hub takes it out of the environment its kernels get
            env["SCOPEFLOW_TOKEN"] = self.token
        try:
            self.process = subprocess.Popen(
                command,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                pass_fds=() if read_end is None else (read_end,),
            )
        finally:
            if read_end is not None:
                os.close(read_end)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the hub exited with code {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            url = announced_url(self.log())
            if url is None:  # the token goes only to the address our hub announced
                time.sleep(0.2)
                continue
            self.url = url
            try:
                request = urllib.request.Request(
                    self.url + "/api/hub", headers={"Authorization": f"token {self.token}"}
                )
                with urllib.request.urlopen(request, timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the hub did not start within {self.timeout:.0f} s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
