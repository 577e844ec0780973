"""Build hooks: a wheel of scopeflow carries its web app, built, as ``scopeflow/static/``.

Everything else about the package is in pyproject.toml; setuptools runs this file for its commands only.

- ``build_py`` (what ``pip wheel .``, ``pip install .`` and ``python -m build`` run) builds the web app with
  Node.js and npm, which are needed at build time only: ``npm ci`` in web/ from its lock file (skipped when
  web/node_modules is newer than the lock file, as in scripts/setup), then Vite's build straight into the
  build folder's ``scopeflow/static/``. It runs ``vite build`` only, not ``npm run build``: the type check
  (scripts/test) reads tests/, which an sdist does not carry.
- Without npm the build stops and says what to install; ``SCOPEFLOW_SKIP_WEB=1`` builds a wheel without
  the app (the hub then says at ``/`` that it is missing).
- Editable installs (``pip install -e .``, scripts/setup) never run npm: the hub serves web/dist of the
  checkout, which scripts/setup builds.
- ``sdist`` adds the web app's sources (not node_modules, not dist), so a wheel can be built from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import SetupError

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
SKIP_VARIABLE = "SCOPEFLOW_SKIP_WEB"
WEB_SOURCES = ("package.json", "package-lock.json", "index.html", "tsconfig.json", "vite.config.ts")
WEB_SOURCE_DIRS = ("src", "public", "scripts")

NO_NPM = (
    "building scopeflow's wheel builds its web app, which needs Node.js (20.19+ or 22.12+, for Vite) and "
    "npm at build time only: install them (e.g. `apt-get install nodejs npm`, `brew install node`, or from "
    f"https://nodejs.org) and build again; or set {SKIP_VARIABLE}=1 to build a wheel without the web app "
    "(its hub then serves no app at /)"
)


def find_npm() -> str:
    """The npm command, or a SetupError that says what to do."""
    npm = shutil.which("npm")
    if npm is None:
        raise SetupError(NO_NPM)
    return npm


def skip_web() -> bool:
    return os.environ.get(SKIP_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def run(command: list[str], cwd: Path) -> None:
    print(f"scopeflow web app: npm {' '.join(command[1:])}", flush=True)
    result = subprocess.run(command, cwd=cwd)
    if result.returncode != 0:
        raise SetupError(
            f"building scopeflow's web app failed: `{' '.join(command)}` in {cwd} exited with "
            f"{result.returncode} (its output is above; `pip wheel -v` shows it). Set {SKIP_VARIABLE}=1 to "
            "build a wheel without the web app."
        )


def build_web_app(out: Path) -> None:
    """``npm ci`` (unless web/node_modules is up to date) and Vite's build of web/ into ``out``."""
    if not (WEB / "package.json").is_file():
        raise SetupError(
            f"scopeflow's web app sources (web/package.json) are missing from {ROOT}: build the wheel from a "
            f"checkout or an sdist of scopeflow, or set {SKIP_VARIABLE}=1 to build one without the web app"
        )
    npm = find_npm()
    installed = WEB / "node_modules" / ".package-lock.json"  # npm's own record of what it installed
    lock = WEB / "package-lock.json"
    if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
        run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], WEB)
    if out.exists():
        shutil.rmtree(out)  # no file of an earlier build stays behind
    out.parent.mkdir(parents=True, exist_ok=True)
    vite = ["vite", "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "warn"]
    run([npm, "exec", "--no", "--", *vite], WEB)
    index = out / "index.html"
    if not index.is_file() or "/src/main.tsx" in index.read_text(encoding="utf-8"):
        raise SetupError(f"building scopeflow's web app left no built index.html in {out}")


class BuildPy(build_py):
    """setuptools' build_py, then the built web app into ``<build_lib>/scopeflow/static``."""

    def run(self) -> None:
        if self.editable_mode:  # the checkout's web/dist serves an editable install (scripts/setup builds it)
            super().run()
            return
        static = Path(self.build_lib).resolve() / "scopeflow" / "static"
        if static.exists():
            shutil.rmtree(static)  # no earlier build's app in this wheel, even when this one skips the app
        super().run()
        if skip_web():
            print(f"scopeflow: {SKIP_VARIABLE} is set: this build carries no web app", flush=True)
            return
        build_web_app(static)


class Sdist(sdist):
    """setuptools' sdist, plus the web app's sources (a wheel built from the sdist builds the app)."""

    def make_distribution(self) -> None:  # setuptools' sdist gets its file list from egg_info: add here
        for name in WEB_SOURCES:
            if (WEB / name).is_file():
                self.filelist.append(f"web/{name}")
        for folder in WEB_SOURCE_DIRS:
            for path in sorted((WEB / folder).rglob("*")):
                if path.is_file() and "node_modules" not in path.parts:
                    self.filelist.append(path.relative_to(ROOT).as_posix())
        self.filelist.sort()
        self.filelist.remove_duplicates()
        super().make_distribution()


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import it for its helpers
    setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
