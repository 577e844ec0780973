"""The ``scopeflow`` command: ``serve`` starts the hub, ``run`` runs a workflow, ``envs`` lists or prunes the
plugin environments."""

from __future__ import annotations

import argparse
import os
import sys

from scopeflow import __version__


def serve_argv(args: argparse.Namespace) -> list[str]:
    """Translate our options into jupyter-server configuration."""
    argv = [
        f"--ServerApp.ip={args.host}",
        f"--ServerApp.port={args.port}",
        f"--ServerApp.open_browser={not args.no_browser}",
        "--ServerApp.allow_root=True",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.identity_provider_class=scopeflow.hub.auth.TokenIdentityProvider",
        "--KernelManager.autorestart=False",
        f"--Hub.data_dir={args.data_dir}",
        f"--Hub.allow_remote_access={args.allow_remote_access}",
        # jupyter's contents API and the kernels' working directory: a folder of its own in the data dir
        f"--ServerApp.root_dir={os.path.join(os.path.abspath(args.data_dir), 'files')}",
    ]
    token = args.token if args.token is not None else os.environ.get("SCOPEFLOW_TOKEN")
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    argv.extend(f"--Hub.plugins_dirs={os.path.abspath(p)}" for p in args.plugins_dir)
    if args.cache_gib is not None:
        argv.append(f"--Hub.cache_bytes={int(args.cache_gib * 2**30)}")
    if args.gateway_url:
        argv.append(f"--GatewayClient.url={args.gateway_url}")
    elif not os.environ.get("JUPYTER_GATEWAY_URL"):  # with a gateway, jupyter-server picks its own
        argv.append("--ServerApp.kernel_manager_class=scopeflow.plugins.engine.HubKernelManager")
    if args.hub_url:
        argv.append(f"--Hub.hub_url={args.hub_url}")
    if args.log_level:
        argv.append(f"--log-level={args.log_level}")
    return argv


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="scopeflow", description="Deep learning for microscopy in the browser."
    )
    root.add_argument("--version", action="version", version=f"scopeflow {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the hub and the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9527, help="port (default 9527)")
    serve.add_argument(
        "--token", default=None, help="access token (default: $SCOPEFLOW_TOKEN, else generated)"
    )
    serve.add_argument(
        "--data-dir",
        default=os.environ.get("SCOPEFLOW_DATA_DIR") or os.path.expanduser("~/.scopeflow"),
        help="all state: installed plugins, workflows, cache (default ~/.scopeflow)",
    )
    serve.add_argument(
        "--plugins-dir", action="append", default=[], metavar="DIR", help="extra plugin files (repeatable)"
    )
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser")
    serve.add_argument(
        "--allow-remote-access",
        action="store_true",
        help="allow --host beyond loopback (whoever reaches it with the token can run code)",
    )
    serve.add_argument(
        "--cache-gib",
        type=float,
        default=None,
        metavar="GIB",
        help="size budget of the workflow result cache, in GiB (default 2)",
    )
    serve.add_argument(
        "--gateway-url", default=None, help="run plugin kernels on a Jupyter Kernel/Enterprise Gateway"
    )
    serve.add_argument(
        "--hub-url", default=None, help="URL kernels use to reach the hub (for gateway kernels)"
    )
    serve.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARN", "ERROR"])
    run = commands.add_parser(
        "run",
        help="run a workflow headless (once, or over a folder of files)",
        description="Run a workflow on a hub (started for the run unless --hub is given) and write its "
        "outputs with their provenance. Exit code: 0 done, 1 a run or a batch item failed, 2 refused.",
    )
    run.add_argument("workflow", metavar="WORKFLOW", help="a workflow JSON file or a gallery name")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an image file, 'folder/*.tif' (a batch: one run per file), sample:ID, or JSON (repeatable)",
    )
    run.add_argument("--output", required=True, metavar="DIR", help="folder for the results")
    run.add_argument(
        "--data-dir",
        default=os.environ.get("SCOPEFLOW_DATA_DIR") or os.path.expanduser("~/.scopeflow"),
        help="the started hub's data dir, where the cache lives (default as for serve)",
    )
    run.add_argument("--strict", action="store_true", help="refuse to run when a pinned plugin changed")
    run.add_argument(
        "--no-cache", action="store_true", help="compute every node again (results still go to the cache)"
    )
    run.add_argument("--format", default="tiff", choices=["tiff", "png"], help="image files (default tiff)")
    run.add_argument("--hub", default=None, metavar="URL", help="use this running hub, do not start one")
    run.add_argument("--token", default=None, help="the --hub's token (default: $SCOPEFLOW_TOKEN)")
    from scopeflow.cli import envs

    envs.add_parser(commands, os.environ.get("SCOPEFLOW_DATA_DIR") or os.path.expanduser("~/.scopeflow"))
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        # jsonschema (through jupyter-events) imports its optional IRI format checker, which builds 39
        # grammars at import: about a second of every hub start, for a format nothing here checks
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
        from scopeflow.hub.app import Hub

        os.makedirs(os.path.join(args.data_dir, "files"), exist_ok=True)
        # jupyter's runtime files (kernel connection files, cookie secret) live with the rest of the state
        os.environ.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(os.path.abspath(args.data_dir), "runtime"))
        Hub.launch_instance(argv=serve_argv(args))
    elif args.command == "run":
        from pathlib import Path

        from scopeflow.cli.batch import Options
        from scopeflow.cli.batch import main as run_workflow

        options = Options(
            workflow=args.workflow,
            inputs=args.input,
            output=Path(args.output),
            data_dir=args.data_dir,
            strict=args.strict,
            hub=args.hub,
            token=args.token,
            image_format=args.format,
            cache=not args.no_cache,
        )
        sys.exit(run_workflow(options))
    elif args.command == "envs":
        from scopeflow.cli import envs

        sys.exit(envs.main(args))
    else:  # pragma: no cover - argparse rejects unknown commands
        sys.exit(2)


if __name__ == "__main__":
    main()
