"""``scopeflow envs list|prune``: the plugin environments of a data dir, and their disk use kept bounded."""

from __future__ import annotations

import argparse
from pathlib import Path

from scopeflow.plugins.environments import Environments

__all__ = ["add_parser", "main"]


def add_parser(commands: argparse._SubParsersAction, data_dir: str) -> None:
    envs = commands.add_parser(
        "envs",
        help="list or prune the plugin environments",
        description="Each Python plugin's requirements are installed into an environment of its own, under "
        "DATA_DIR/envs, shared by plugins with the same requirements.",
    )
    envs.add_argument("action", choices=["list", "prune"])
    envs.add_argument("--data-dir", default=data_dir, help="the hub's data dir (default as for serve)")
    envs.add_argument(
        "--keep-gib", type=float, default=None, help="prune: keep the most recently used ones up to this size"
    )
    envs.add_argument(
        "--all", action="store_true", help="prune: remove every environment no running plugin uses"
    )


def main(args: argparse.Namespace) -> int:
    envs = Environments(Path(args.data_dir).expanduser() / "envs")
    if args.action == "list":
        found = envs.listing()
        for info in found:
            packages = ", ".join(info.get("installed") or []) or "nothing beyond the hub"
            used = "  in use by a running plugin" if info["in_use"] else ""
            print(f"{info['key']}  {info['bytes'] / 2**20:8.1f} MiB  last used {info['last_used']}{used}")
            print(f"    asks for: {', '.join(info.get('requirements') or [])}")
            print(f"    holds:    {packages}")
        total = sum(info["bytes"] for info in found)
        print(f"{len(found)} environment(s), {total / 2**20:.1f} MiB in {envs.root}")
        return 0
    keep = None if args.keep_gib is None else int(args.keep_gib * 2**30)  # None: the hub's default budget
    removed = envs.prune(keep_bytes=keep, everything=args.all)
    print(f"removed {len(removed)} environment(s)" + (f": {', '.join(removed)}" if removed else ""))
    return 0
