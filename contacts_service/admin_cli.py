"""`python -m contacts_service accounts erase|export --cloud-id X --username Y`: the admin
routes' actions without HTTP, for an operator on the host (same database, same audit line,
client `cli:<user>`).

    accounts erase  --cloud-id X --username Y         prints {"devices": n, "contacts": m}
    accounts export --cloud-id X --username Y [--device-id D] [--format json|vcard]
                                                      prints the export (vcard needs --device-id)

Exit 0 on success; 1 for an unknown account or device (or the database down); 2 for invalid
arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.cli import add_account_arguments

PROG = "contacts-server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    erase = actions.add_parser("erase", help="delete everything of one account")
    add_account_arguments(erase)
    export = actions.add_parser("export", help="print one account's devices and contacts")
    add_account_arguments(export)
    export.add_argument("--format", choices=["json", "vcard"], default="json")
    export.add_argument("--device-id", help="only this device (required with --format vcard)")


def run(args: argparse.Namespace) -> int:
    # Imported here: the command line parser (also of `serve`) must stay light.
    from contacts_service.schemas import device_id_problem
    from shared.admin import cli_account
    from shared.config import ConfigError

    account = cli_account(PROG, args)
    if account is None:
        return 2
    device_id = getattr(args, "device_id", None)
    if args.action == "export":
        if args.format == "vcard" and device_id is None:
            print(f"{PROG}: --device-id is required with --format vcard", file=sys.stderr)
            return 2
        if device_id is not None and device_id_problem(device_id):
            print(f"{PROG}: --device-id: {device_id_problem(device_id)}", file=sys.stderr)
            return 2
    try:
        from contacts_service.app import create_app

        app = create_app()
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    with app.app_context():
        return _act(args, account, device_id)


def _act(args: argparse.Namespace, account: dict, device_id: str | None) -> int:
    import psycopg2
    from sqlalchemy import exc as sa_exc

    from contacts_service import admin
    from contacts_service.extensions import db
    from contacts_service.state import app_state
    from shared.admin import audit_logger, cli_client, write_audit

    audit = audit_logger("contacts_service")
    who = {"client": cli_client(), "action": f"accounts.{args.action}", **account}
    cloud_id, username = account["cloud_id"], account["username"]
    try:
        if args.action == "erase":
            output = json.dumps(admin.erase(cloud_id, username))
            db.session.commit()
        elif args.format == "vcard":
            output = admin.export_vcard(cloud_id, username, device_id)
        else:
            # Written as it is read (an account can be gigabytes); the audit line follows it.
            export = admin.JsonExport.open(
                cloud_id, username, device_id, app_state().settings.db_statement_timeout_seconds
            )
            for piece in export:
                sys.stdout.buffer.write(piece)
            sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
            output = ""
    except admin.NoSuchAccount:
        return _fail(audit, who, "not_found", "no such account")
    except admin.NoSuchDevice:
        return _fail(audit, who, "not_found", "no such device for this account")
    except (sa_exc.SQLAlchemyError, psycopg2.Error) as exc:
        return _fail(audit, who, "unavailable", f"the database failed ({exc.__class__.__name__})")
    finally:
        db.session.rollback()
        db.engine.dispose()
    write_audit(audit, result="ok", **who)
    if output:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
    return 0


def _fail(audit, who: dict, result: str, message: str) -> int:
    from shared.admin import write_audit

    write_audit(audit, result=result, **who)
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1
