"""`python -m sso_service serve|check-config|accounts` (also the `sso-server` binary)."""

from __future__ import annotations

import sys

from shared.cli import run_cli


def main(argv: list[str] | None = None) -> int:
    from sso_service import admin_cli, check_config

    return run_cli(
        "sso-server",
        "sso_service:create_app",
        "127.0.0.1:8001",
        check_config,
        extra_commands={
            "accounts": (
                "operator actions on one account (revoke)",
                admin_cli.run,
                admin_cli.add_arguments,
            )
        },
        argv=argv,
        # Logins wait on the provider (SSO_MAX_CONCURRENT_LOGINS of them per worker at most);
        # the threads above that stay free for introspection.
        default_threads=32,
        preload=("sso_service.app",),
    )


if __name__ == "__main__":
    sys.exit(main())
