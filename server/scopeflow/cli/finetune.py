"""``scopeflow finetune IMAGE LABELS [IMAGE LABELS ...] --name N``: fine-tune nuclei-segmentation on
annotated images, on a hub (one started for the command, with the data dir's plugins, unless ``--hub``).

The new version (plugin ``nuclei-segmentation-N``) lands in the hub's data dir like any installed plugin:
``scopeflow serve`` with the same data dir lists it, and workflows pin it by its sha256. Progress and the
training's messages are printed; Ctrl-C cancels the training (no version is made). Exit code: 0 done,
1 failed or cancelled, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from scopeflow._http import redact
from scopeflow.images import formats as data

__all__ = ["add_parser", "main"]

PLUGIN = "nuclei-segmentation"


def add_parser(commands: argparse._SubParsersAction, data_dir: str) -> argparse.ArgumentParser:
    command = commands.add_parser(
        "finetune",
        help="fine-tune nuclei-segmentation on annotated images: a new plugin version",
        description="Fine-tune the nuclei-segmentation network on images and their label images (0 "
        "unlabelled, 1..n one object each). The result is a new plugin version, nuclei-segmentation-NAME, "
        "in the hub's data dir. Exit code: 0 done, 1 failed or cancelled, 2 bad arguments.",
    )
    command.add_argument("files", nargs="+", metavar="IMAGE LABELS", help="pairs of image and label files")
    command.add_argument("--name", required=True, help="the new version's name (lower-case, digits, '-')")
    command.add_argument("--minutes", type=float, default=2.0, help="time limit (default 2)")
    command.add_argument("--max-steps", type=int, default=2000, help="step limit (default 2000)")
    command.add_argument(
        "--background", action="store_true", help="unlabelled pixels are background (default: near labels)"
    )
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--json", type=Path, default=None, help="also write the summary to this file")
    command.add_argument(
        "--data-dir", default=data_dir, help="the started hub's data dir, where the version goes"
    )
    command.add_argument("--hub", default=None, metavar="URL", help="use this running hub, do not start one")
    return command


def read_pairs(files: list[str]) -> tuple[list[Any], list[Any], list[str]]:
    """Images, label images and names from IMAGE LABELS pairs (ValueError: odd count, unreadable file)."""
    if len(files) % 2:
        raise ValueError(f"give files in pairs IMAGE LABELS; got {len(files)} files")
    arrays = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"{name}: no such file")
        try:
            arrays.append(data.read_image(path.read_bytes(), name=path.name)[0])
        except data.ImageError as exc:
            raise ValueError(str(exc)) from None
    return arrays[0::2], arrays[1::2], [Path(f).name for f in files[0::2]]


async def finetune_on(
    url: str, token: str, args: argparse.Namespace, pairs: tuple[list[Any], list[Any], list[str]], out: TextIO
) -> dict[str, Any]:
    from scopeflow.rpc.client import connect

    server = await connect(url, token=token, reconnect=False, method_timeout=7 * 24 * 3600)

    def shown(caller: str, name: str, values: list[Any]) -> None:
        if name == "showMessage" and values:
            print(f"[{caller}] {values[0]}", file=out, flush=True)
        elif name == "showProgress" and values and isinstance(values[0], int | float):
            print(f"\r[{caller}] {values[0]:.0f} %", end="", file=out, flush=True)

    await server.register_service({"id": "imjoy-api", "dispatch": shown, "config": {"own_calls_only": True}})
    loop = asyncio.get_running_loop()
    try:
        plugin = await server.get_plugin(PLUGIN)
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows or off the main thread
            loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(plugin.cancel_finetune()))
        images, labels, names = pairs
        summary: dict[str, Any] = await plugin.finetune(
            images,
            labels,
            name=args.name,
            minutes=args.minutes,
            unlabelled_is_background=args.background,
            max_steps=args.max_steps,
            image_names=",".join(n.replace(",", " ") for n in names),
            seed=args.seed,
        )
        return summary
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        print("", file=out)
        await server.disconnect()


def report(summary: dict[str, Any], out: TextIO) -> None:
    version = summary["version"]
    before, after = summary["before"]["validation_f1"], summary["after"]["validation_f1"]
    print(f"new version: {version['id']} {version['version']}", file=out)
    print(f"  plugin sha256 {version['sha256']} (workflows pin this)", file=out)
    print(f"  weights sha256 {version['weights_sha256']}", file=out)
    print(
        f"  validation F1@0.5 {before:.3f} → {after:.3f} on {summary['validation_objects']} held-out "
        f"objects ({summary['training_objects']} trained on)",
        file=out,
    )
    print(
        f"  {summary['steps']} steps in {summary['seconds']:.0f} s, best at step {summary['best_step']}; "
        f"stopped by {summary['stopped']}",
        file=out,
    )
    if summary.get("overtraining"):
        print(f"  warning: {summary['overtraining']}", file=out)


def main(
    args: argparse.Namespace, token: str | None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    try:
        pairs = read_pairs(args.files)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 2
    try:
        if args.hub:
            token = token or os.environ.get("SCOPEFLOW_TOKEN") or ""
            summary = asyncio.run(finetune_on(args.hub.rstrip("/"), token, args, pairs, out))
        else:
            from scopeflow.cli.launcher import LocalHub

            with LocalHub(args.data_dir) as hub:
                summary = asyncio.run(finetune_on(hub.url, hub.token, args, pairs, out))
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    except Exception as exc:  # a remote error: the plugin refused the input, or the run was cancelled
        print(f"error: {redact(str(exc)).strip().splitlines()[-1]}", file=err)
        return 1
    report(summary, out)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0
