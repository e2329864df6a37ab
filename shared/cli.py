"""The command line both services (and their single-file binaries) share.

<prog> serve [--bind HOST:PORT] [--workers N] [--certfile F --keyfile F]
<prog> check-config        validate settings and reach dependencies; exit 1 on problems
<prog> --version
<prog> migrate             (Contacts only: passed in as an extra command)
<prog> accounts ...        operator actions on one account (extra command with arguments)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import metadata

from shared.serve import add_serve_arguments, run_gunicorn

# (help, run) or (help, run(args), add_arguments(parser)); see run_cli.
ExtraCommand = (
    tuple[str, Callable[[], int]]
    | tuple[str, Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None]]
)


def _version() -> str:
    try:
        return metadata.version("contact-sync")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def run_cli(
    prog: str,
    factory: str,
    default_bind: str,
    check_config: Callable[[], list[str]],
    before_serve: Callable[[], None] | None = None,
    extra_commands: dict[str, ExtraCommand] | None = None,
    argv: list[str] | None = None,
    default_threads: int = 4,
    preload: tuple[str, ...] = (),
) -> int:
    """Parse argv and run the chosen sub-command; returns the exit status.

    check_config returns a list of human-readable problems (empty when all is well).
    before_serve runs in the master process before gunicorn starts (e.g. migrations).
    extra_commands maps a sub-command to (help, run) — run() takes no arguments — or to
    (help, run, add_arguments): add_arguments(parser) declares the sub-command's own arguments
    and run(args) gets the parsed namespace. preload: modules `serve` imports in the master
    before forking the workers (shared/serve.py).
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--version", action="version", version=f"{prog} {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(
        commands.add_parser("serve", help="run under gunicorn"), default_bind, default_threads
    )
    commands.add_parser("check-config", help="validate settings and reach dependencies")
    for name, (help_text, _, *add_arguments) in (extra_commands or {}).items():
        command = commands.add_parser(name, help=help_text)
        for add in add_arguments:
            add(command)
    args = parser.parse_args(argv)

    if args.command == "check-config":
        problems = check_config()
        for problem in problems:
            print(f"{prog}: {problem}", file=sys.stderr)
        if not problems:
            print(f"{prog}: configuration OK")
        return 1 if problems else 0
    if args.command == "serve":
        if before_serve:
            before_serve()
        run_gunicorn(factory, args, preload)
        return 0
    _, run, *add_arguments = extra_commands[args.command]
    return run(args) if add_arguments else run()


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    """`--cloud-id` and `--username`: the account an `accounts` sub-command acts on."""
    parser.add_argument("--cloud-id", required=True, help="the account's Cloud ID")
    parser.add_argument("--username", required=True, help="the account's SIP username")
