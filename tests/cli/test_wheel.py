"""The wheel carries everything: built from the sources as a user's ``pip wheel`` builds it (setup.py builds
the web app with npm), installed outside the checkout, then ``scopeflow serve`` and ``scopeflow run`` from an
unrelated folder find the app, the built-in plugins with their weights, the samples and the gallery."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scopeflow.cli.launcher import announced_url, free_port

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "wheel-test-token"
# what a wheel is built from: the checkout's package and web app sources, nothing built (no web/dist, no
# node_modules: the build runs npm ci from the lock file, from npm's cache when it has the packages)
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "server", "web")
NOT_SOURCES = shutil.ignore_patterns(
    "node_modules", "dist", "static", "build", "__pycache__", "*.egg-info", ".*_cache"
)


@dataclass
class Installed:
    site: Path  # the wheel's files, installed with pip install --target
    cwd: Path  # an unrelated folder every command runs from
    env: dict[str, str]

    def python(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, *args]
        return subprocess.run(
            command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def pip(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if shutil.which("npm") is None:
        pytest.skip("building the wheel builds the web app: it needs Node.js and npm (bash scripts/setup)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=NOT_SOURCES)
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("SCOPEFLOW_SKIP_WEB", "PYTHONPATH")}
    # the venv's setuptools, offline; no dependencies (the venv has them)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "wheels"), str(src), cwd=tmp, env=env)
    wheels = list((tmp / "wheels").glob("scopeflow-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    pip("install", "--no-deps", "--target", str(site), str(wheels[0]), cwd=tmp, env=env)
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    run_env = {
        **env,
        "PYTHONPATH": str(site),  # in front of the venv's editable install of the checkout
        "JUPYTER_PLATFORM_DIRS": "1",
        "SCOPEFLOW_DATA_DIR": str(tmp / "home-data"),
    }
    for name in ("SCOPEFLOW_TOKEN", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE"):
        run_env.pop(name, None)
    return Installed(site, cwd, run_env)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"token {token}"} if token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


@contextlib.contextmanager
def serve(installed: Installed, name: str) -> Iterator[Served]:
    """``scopeflow serve`` of the installed copy, from the unrelated folder, token in $SCOPEFLOW_TOKEN."""
    log_path = installed.cwd.parent / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "scopeflow.cli.main", "serve", "--no-browser", "--port", str(free_port()),
             "--data-dir", str(installed.cwd.parent / f"{name}-data")],
            cwd=installed.cwd,
            env={**installed.env, "SCOPEFLOW_TOKEN": TOKEN},
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served("", process, log_path)
    try:
        deadline = time.monotonic() + 60
        while (announced := announced_url(served.log())) is None:
            assert process.poll() is None, f"the hub exited with {process.returncode}:\n{served.log()}"
            assert time.monotonic() < deadline, f"the hub did not start:\n{served.log()}"
            time.sleep(0.2)
        served.url = announced
        while True:  # listening once /api/hub answers
            with contextlib.suppress(OSError):
                if served.get("/api/hub", TOKEN)[0] == 200:
                    break
            assert time.monotonic() < deadline, f"the hub does not answer:\n{served.log()}"
            time.sleep(0.2)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_installed_wheel_serves_the_app_and_runs_the_gallery(installed):
    # the installed copy runs, not the checkout's editable one
    found = installed.python("-c", "import scopeflow; print(scopeflow.__file__)")
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(installed.site), found.stdout
    static = installed.site / "scopeflow" / "static"
    assert (static / "index.html").is_file() and (static / "window.html").is_file()
    builtin = installed.site / "scopeflow" / "builtin_plugins"
    assert (builtin / "nuclei_segmentation" / "weights.pt").is_file()  # weights too
    assert (builtin / "workflows" / "smooth-threshold-measure.json").is_file()
    assert (installed.site / "scopeflow" / "images" / "samples" / "nuclei-2d.tif").is_file()

    with serve(installed, "hub") as served:
        status, page = served.get("/")
        assert status == 200, page[:500]
        html = page.decode()
        assert "/src/main.tsx" not in html, "the unbuilt index.html"
        scripts = re.findall(r'src="(/assets/[^"]+\.js)"', html)
        assert scripts, html
        status, script = served.get(scripts[0])
        assert status == 200 and len(script) > 10_000  # the bundle, from the wheel's static/
        assert served.get("/window.html")[0] == 200

        status, body = served.get("/api/plugins", TOKEN)
        assert status == 200, body[:500]
        listed = {p["id"]: p for p in json.loads(body)["plugins"]}
        assert {"gaussian", "otsu-watershed", "measure", "nuclei-segmentation"} <= set(listed)
        assert all(listed[p]["builtin"] for p in ("gaussian", "nuclei-segmentation"))
        assert "not built" not in served.log()

    out = installed.cwd / "results"
    ran = installed.python(
        "-m", "scopeflow.cli.main", "run", "smooth-threshold-measure", "--output", "results", timeout=240
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert {p.name for p in out.iterdir()} >= {"smoothed.tif", "labels.tif", "nuclei.csv", "run.json"}
    header = (out / "nuclei.csv").read_text().splitlines()[0]
    assert header.startswith("label,area,")
    assert json.loads((out / "run.json").read_text())  # the run's record


def test_without_the_app_the_page_says_how_to_build_it(installed):
    """An install without the app (an editable one never built, a wheel built with SCOPEFLOW_SKIP_WEB=1):
    ``/`` says so and how to fix it, and the hub logged it once at start."""
    static = installed.site / "scopeflow" / "static"
    hidden = installed.site / "static-hidden"
    static.rename(hidden)
    try:
        with serve(installed, "hub-without-app") as served:
            status, page = served.get("/")
            assert status == 503
            text = page.decode()
            assert "web app is not built" in text
            assert "bash scripts/setup" in text and "npm ci &amp;&amp; npm run build" in text
            assert served.get("/api/plugins", TOKEN)[0] == 200  # the rest of the hub works
            served.get("/")
            assert served.log().count("web app is not built") == 1, served.log()
    finally:
        hidden.rename(static)
