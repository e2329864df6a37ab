"""The command line both services (and their single-file binaries) share.

<prog> serve [--bind HOST:PORT] [--workers N] [--certfile F --keyfile F]
<prog> check-config        validate settings and reach dependencies; exit 1 on problems
<prog> --version
<prog> migrate             (Contacts only: passed in as an extra command)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import metadata

from shared.serve import add_serve_arguments, run_gunicorn


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
    extra_commands: dict[str, tuple[str, Callable[[], int]]] | None = None,
    argv: list[str] | None = None,
    default_threads: int = 4,
) -> int:
    """Parse argv and run the chosen sub-command; returns the exit status.

    check_config returns a list of human-readable problems (empty when all is well).
    before_serve runs in the master process before gunicorn starts (e.g. migrations).
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--version", action="version", version=f"{prog} {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(
        commands.add_parser("serve", help="run under gunicorn"), default_bind, default_threads
    )
    commands.add_parser("check-config", help="validate settings and reach dependencies")
    for name, (help_text, _) in (extra_commands or {}).items():
        commands.add_parser(name, help=help_text)
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
        run_gunicorn(factory, args)
        return 0
    return extra_commands[args.command][1]()
