"""The ``scopeflow`` command: ``serve`` starts the hub, ``run`` runs a workflow, ``envs`` lists or prunes the
plugin environments."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from scopeflow import __version__

# where a token may come from besides --token and --token-fd; none of them is left for the hub's kernels
TOKEN_VARIABLES = ("SCOPEFLOW_TOKEN", "JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE")
ON_COMMAND_LINE = (
    "scopeflow: warning: --token on a command line is visible to every user of this machine (ps, /proc); "
    "give it in $SCOPEFLOW_TOKEN or on --token-fd instead"
)


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
    # no token: every local user can read a command line (it goes in code, see main and auth.use_token)
    argv.extend(f"--Hub.plugins_dirs={os.path.abspath(p)}" for p in args.plugins_dir)
    if args.cache_gib is not None:
        argv.append(f"--Hub.cache_bytes={int(args.cache_gib * 2**30)}")
    if args.start_timeout is not None:
        argv.append(f"--Hub.plugin_start_timeout={args.start_timeout}")
    if args.gateway_url:
        argv.append(f"--GatewayClient.url={args.gateway_url}")
    elif not os.environ.get("JUPYTER_GATEWAY_URL"):  # with a gateway, jupyter-server picks its own
        argv.append("--ServerApp.kernel_manager_class=scopeflow.plugins.engine.HubKernelManager")
    if args.hub_url:
        argv.append(f"--Hub.hub_url={args.hub_url}")
    if args.log_level:
        argv.append(f"--log-level={args.log_level}")
    return argv


def add_token_options(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--token",
        default=None,
        help=f"{what}; visible to every local user: prefer the variable or --token-fd",
    )
    command.add_argument(
        "--token-fd",
        type=int,
        default=None,
        metavar="FD",
        help="read the token from this open file descriptor (e.g. 3 with `3<file`), not from a command line",
    )


def given_token(
    args: argparse.Namespace, variables: tuple[str, ...] = TOKEN_VARIABLES
) -> tuple[str | None, str]:
    """The token and where it came from: "fd", "argv", "env" (``variables``, in order; JUPYTER_TOKEN_FILE
    names a file) or "none"."""
    if args.token_fd is not None:
        with os.fdopen(args.token_fd, "rb") as given:
            return given.read().decode("utf-8").strip(), "fd"
    if args.token is not None:
        return args.token, "argv"
    for name in variables:
        if name in os.environ:
            if name != "JUPYTER_TOKEN_FILE":
                return os.environ[name], "env"
            with open(os.environ[name], encoding="utf-8") as file:
                return file.read().strip(), "env"
    return None, "none"


def without_token(argv: list[str]) -> list[str]:
    """``argv`` without its ``--token T`` / ``--token=T``."""
    out: list[str] = []
    values = iter(argv)
    for arg in values:
        if arg == "--":
            out += [arg, *values]
            break
        if arg == "--token":
            next(values, None)
        elif not arg.startswith("--token="):
            out.append(arg)
    return out


def exec_without_token(token: str) -> None:
    """Start this command again in this process (same pid, same stdio) with the token on a pipe, not on its
    command line or in its environment: every process of the user (a plugin kernel) can read both in /proc
    for as long as the process lives, and clearing os.environ does not change /proc/PID/environ.
    Does not return (POSIX); returns without doing anything where that cannot be done."""
    data = token.encode("utf-8")
    if os.name != "posix" or len(data) > 16384:  # a pipe holds 64 KiB; a token is far smaller
        return
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]  # -X, -W, -I ... as now
    command = [*without_token(sys.argv[1:]), "--token-fd", str(read_end)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *flags, "-m", "scopeflow.cli.main", *command], env)


def take_token(
    args: argparse.Namespace, argv: list[str] | None, variables: tuple[str, ...] = TOKEN_VARIABLES
) -> str | None:
    """The command's token, taken off the process: off its command line and environment block (by starting
    the command again, when it runs from a real command line: ``argv`` None), and out of ``os.environ``,
    which the hub's kernels inherit."""
    token, source = given_token(args, variables)
    if source == "argv" and token:
        print(ON_COMMAND_LINE, file=sys.stderr)
    if argv is None and token and source in ("argv", "env"):
        exec_without_token(token)
    for name in TOKEN_VARIABLES:
        os.environ.pop(name, None)
    return token


def data_dir() -> str:
    """The data dir when none is given: $SCOPEFLOW_DATA_DIR, else ~/.scopeflow."""
    return os.environ.get("SCOPEFLOW_DATA_DIR") or os.path.expanduser("~/.scopeflow")


def add_data_dir(command: argparse.ArgumentParser, text: str) -> None:
    command.add_argument("--data-dir", default=data_dir(), help=text)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="scopeflow", description="Deep learning for microscopy in the browser."
    )
    root.add_argument("--version", action="version", version=f"scopeflow {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the hub and the web app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=9527, help="port (default 9527)")
    add_token_options(serve, "access token (default: $SCOPEFLOW_TOKEN, else generated)")
    add_data_dir(serve, "all state: installed plugins, workflows, cache (default ~/.scopeflow)")
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
        "--start-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a plugin's kernel may take to become ready, after its requirements are installed "
        "(default 120)",
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
    add_data_dir(run, "the started hub's data dir, where the cache lives (default as for serve)")
    run.add_argument("--strict", action="store_true", help="refuse to run when a pinned plugin changed")
    run.add_argument(
        "--no-cache", action="store_true", help="compute every node again (results still go to the cache)"
    )
    run.add_argument("--format", default="tiff", choices=["tiff", "png"], help="image files (default tiff)")
    run.add_argument("--hub", default=None, metavar="URL", help="use this running hub, do not start one")
    run.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run a batch on Dask: local[:N] (a local cluster of N workers, default 2) or a scheduler "
        "address (tcp://HOST:8786); each worker runs a hub of its own (pip install 'scopeflow[dask]')",
    )
    run.add_argument(
        "--no-shared-storage",
        action="store_true",
        help="--dask workers do not see this machine's folders: send each item's bytes with its task and "
        "get the result files back (default: workers read and write the folders by path)",
    )
    add_token_options(run, "the --hub's token (default: $SCOPEFLOW_TOKEN)")
    from scopeflow.cli import envs

    envs.add_parser(commands, data_dir())
    from scopeflow.cli import finetune

    tuning = finetune.add_parser(commands, data_dir())
    add_token_options(tuning, "the --hub's token (default: $SCOPEFLOW_TOKEN)")
    export = commands.add_parser(
        "export-model",
        help="write a built-in network as a bioimage.io model package (format 0.5)",
        description="Write a built-in plugin's trained network as a bioimage.io model package: weights as a "
        "PyTorch state dict and TorchScript, the architecture's source, test tensors from a real sample, "
        "documentation, cover, licence and citations. `bioimageio test OUT.zip` checks it.",
    )
    export.add_argument("plugin", metavar="PLUGIN", help="nuclei-segmentation")
    export.add_argument("target", metavar="OUT.zip", help="the package to write")
    install = commands.add_parser(
        "install-model",
        help="install a bioimage.io model package (.zip, folder or URL) as a plugin",
        description="Check and preview a bioimage.io model package (format 0.5), then install it as a plugin "
        "in the data dir once you answer yes. Exit code: 0 installed, 1 declined, 2 refused.",
    )
    install.add_argument("package", metavar="PACKAGE", help="a .zip, an unpacked package folder, or a URL")
    install.add_argument("--yes", action="store_true", help="install without asking (after the preview)")
    add_data_dir(install, "the data dir of the hub that is to run it (default as for serve)")
    verify = commands.add_parser(
        "verify",
        help="run a plugin's declared test cases and compare with the expected outputs",
        description="Run the test cases a plugin declares (`tests`) in its kernel, as Verify in the app "
        "does. Exit code: 0 all passed, 1 a case failed or none is declared, 2 no such plugin or no hub.",
    )
    verify.add_argument("plugin", metavar="PLUGIN", help="a plugin id or name, or a plugin file")
    verify.add_argument("--hub", default=None, metavar="URL", help="use this running hub, do not start one")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    add_data_dir(verify, "the started hub's data dir (default as for serve)")
    add_token_options(verify, "the --hub's token (default: $SCOPEFLOW_TOKEN)")
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        # jsonschema (through jupyter-events) imports its optional IRI format checker, which builds 39
        # grammars at import: about a second of every hub start, for a format nothing here checks
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
        token = take_token(args, argv)  # first: it may start this command again, without the token
        import secrets

        from scopeflow._http import redact_logs
        from scopeflow.hub import auth
        from scopeflow.hub.app import Hub

        generated = token is None
        if token is None:
            token = secrets.token_urlsafe(32)
        auth.use_token(token, generated=generated)  # in code: not in argv, a config file or the environment
        redact_logs(token)
        os.makedirs(os.path.join(args.data_dir, "files"), exist_ok=True)
        # jupyter's runtime files (kernel connection files, cookie secret) live with the rest of the state
        os.environ.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(os.path.abspath(args.data_dir), "runtime"))
        # the folder of plugins' files (the io plugin reads and writes there, and nowhere else by default)
        os.environ["SCOPEFLOW_FILES_DIR"] = os.path.join(os.path.abspath(args.data_dir), "files")
        Hub.launch_instance(argv=serve_argv(args))
    elif args.command == "run":
        from pathlib import Path

        from scopeflow._http import redact_logs
        from scopeflow.cli.batch import Options
        from scopeflow.cli.batch import main as run_workflow

        # the token of --hub (a hub started for the run gets one of its own, on a pipe)
        token = take_token(args, argv if args.hub else [], ("SCOPEFLOW_TOKEN",))
        if token:
            redact_logs(token)
        options = Options(
            workflow=args.workflow,
            inputs=args.input,
            output=Path(args.output),
            data_dir=args.data_dir,
            strict=args.strict,
            hub=args.hub,
            token=token,
            image_format=args.format,
            cache=not args.no_cache,
            dask=args.dask,
            shared_storage=not args.no_shared_storage,
        )
        sys.exit(run_workflow(options))
    elif args.command == "finetune":
        from scopeflow.cli import finetune

        sys.exit(finetune.main(args, take_token(args, argv if args.hub else [], ("SCOPEFLOW_TOKEN",))))
    elif args.command == "export-model":
        from pathlib import Path

        from scopeflow.cli import export_model

        sys.exit(export_model.main(args.plugin, Path(args.target)))
    elif args.command == "install-model":
        from scopeflow.cli import install_model

        sys.exit(install_model.main(args.package, args.data_dir, args.yes))
    elif args.command == "verify":
        from scopeflow.cli import verify as verify_plugin

        token = take_token(args, argv if args.hub else [], ("SCOPEFLOW_TOKEN",))
        sys.exit(verify_plugin.main(args.plugin, args.hub, token, args.data_dir, args.json))
    elif args.command == "envs":
        from scopeflow.cli import envs

        sys.exit(envs.main(args))
    else:  # pragma: no cover - argparse rejects unknown commands
        sys.exit(2)


if __name__ == "__main__":
    main()
