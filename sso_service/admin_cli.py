"""`python -m sso_service accounts revoke --cloud-id X --username Y`: the admin route's action
without HTTP, for an operator on the host (same Redis, same audit line, client `cli:<user>`).

Prints `{"revoked": n}` and exits 0; exits 1 for an account that never logged in (or Redis
down), 2 for invalid arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.cli import add_account_arguments

PROG = "sso-server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    revoke = actions.add_parser("revoke", help="make every token of one account inactive")
    add_account_arguments(revoke)


def run(args: argparse.Namespace) -> int:
    # Imported here: the command line parser (also of `serve`) must stay light.
    import redis

    from shared.admin import audit_logger, cli_account, cli_client, write_audit
    from shared.config import ConfigError
    from sso_service.admin import AccountAdmin
    from sso_service.app import create_app
    from sso_service.state import app_state

    account = cli_account(PROG, args)
    if account is None:
        return 2
    try:
        app = create_app()
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    audit = audit_logger("sso_service")
    who = {"client": cli_client(), "action": "accounts.revoke", **account}
    try:
        sso = app_state(app)
        admin = AccountAdmin(
            sso.redis, sso.settings.redis_min_replicas_ack, sso.settings.redis_wait_timeout_ms
        )
        revoked = admin.revoke(account["cloud_id"], account["username"])
    except redis.RedisError as exc:
        write_audit(audit, result="unavailable", **who)
        print(f"{PROG}: Redis at SSO_REDIS_URL failed ({exc.__class__.__name__})", file=sys.stderr)
        return 1
    if revoked is None:
        write_audit(audit, result="not_found", **who)
        print(f"{PROG}: no such account", file=sys.stderr)
        return 1
    write_audit(audit, result="ok", **who)
    print(json.dumps({"revoked": revoked}))
    return 0
