"""``scopeflow verify PLUGIN``: run a plugin's declared test cases headless, as *Verify* in the app does.

PLUGIN is a plugin id or name, or a plugin file (its folder is then given to the hub as a plugins folder).
The hub is started for the check unless ``--hub URL`` names a running one. Exit code: 0 every case passed,
1 a case failed (or the plugin declares none), 2 the plugin or the hub could not be reached.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from scopeflow.plugins.manifest import ManifestError, is_plugin_file, parse_plugin


def request_report(url: str, token: str, plugin: str, timeout: float = 3600) -> dict[str, Any]:
    """The hub's verification report of ``plugin`` (KeyError: no such plugin)."""
    request = urllib.request.Request(
        f"{url}/api/plugins/{urllib.parse.quote(plugin, safe='')}/verify",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            report: dict[str, Any] = json.loads(response.read())
            return report
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            message = json.loads(body).get("message") or body.decode(errors="replace")
        except ValueError:
            message = body.decode(errors="replace")
        if error.code == 404:
            raise KeyError(message) from None
        raise RuntimeError(f"the hub answered {error.code}: {message}") from None


def print_report(report: dict[str, Any], out: TextIO) -> None:
    """One line per case: ✓/✗, name, measure, largest difference against the tolerance, seconds."""
    head = f"{report['name']} {report['version']} (sha256 {report['sha256'][:12]}…)"
    print(head, file=out)
    if report.get("error"):
        print(f"  {report['error']}", file=out)
    for case in report["cases"]:
        mark = "✓" if case["passed"] else "✗"
        line = f"  {mark} {case['name']} ({case['op']}, {case.get('seconds', 0):.1f} s)"
        if "measure" in case:
            difference = case["difference"]
            shown = "—" if difference is None else f"{difference:.4g}"
            line += f": {case['measure']} = {shown}, tolerance {case['tolerance']:.4g}"
        for port, values in (case.get("details") or {}).items():
            line += "; " + ", ".join(f"{port} {k} {v}" for k, v in values.items())
        print(line, file=out)
        if case.get("error"):
            last = [row for row in case["error"].strip().splitlines() if row.strip()][-3:]
            print("\n".join("      " + row for row in last), file=out)
    passed = sum(1 for case in report["cases"] if case["passed"])
    verdict = "verified" if report["passed"] else "FAILED"
    print(f"{verdict}: {passed} of {len(report['cases'])} case(s) passed", file=out)


def main(
    plugin: str,
    hub: str | None,
    token: str | None,
    data_dir: str,
    as_json: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    extra: list[str] = []
    path = Path(plugin)
    if is_plugin_file(path) and path.is_file():  # a file: its folder is a plugins folder of the hub
        try:
            plugin = parse_plugin(path.read_bytes(), path.name).id
        except ManifestError as exc:
            print(f"scopeflow verify: {exc}", file=sys.stderr)
            return 2
        if hub is not None:
            print("scopeflow verify: a plugin file goes without --hub (or give its id)", file=sys.stderr)
            return 2
        extra = ["--plugins-dir", str(path.resolve().parent)]
    try:
        if hub is not None:
            report = request_report(hub.rstrip("/"), token or "", plugin)
        else:
            from scopeflow.cli.launcher import LocalHub

            with LocalHub(data_dir, extra) as local:
                report = request_report(local.url, local.token, plugin)
    except KeyError as exc:
        print(f"scopeflow verify: {exc.args[0]}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"scopeflow verify: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(report, indent=1), file=out)
    else:
        print_report(report, out)
    return 0 if report["passed"] else 1
