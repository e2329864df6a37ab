"""`python -m contacts_service serve|migrate|check-config|accounts` (also the `contacts-server`
binary)."""

from __future__ import annotations

import multiprocessing
import sys

from contacts_service import admin_cli
from shared.cli import run_cli
from shared.config import ConfigError


def _migrate() -> int:
    _apply_migrations()
    print("contacts-server: database schema is up to date")
    return 0


def _apply_migrations() -> None:
    """Migrate, or exit 2 with one line saying why (a settings problem, a database that cannot
    be reached): not the driver's message and traceback, which may quote part of the URL's
    password."""
    import psycopg2
    from sqlalchemy import exc as sa_exc

    from contacts_service.app import apply_migrations, create_app
    from contacts_service.pg_deadline import failure_reason

    try:
        apply_migrations(create_app())
    except ConfigError as exc:
        print(f"contacts-server: {exc}", file=sys.stderr)
        sys.exit(2)
    except (psycopg2.OperationalError, sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        print(f"contacts-server: {_UNREACHABLE}: {failure_reason(exc)}", file=sys.stderr)
        sys.exit(2)


_UNREACHABLE = "PostgreSQL at CONTACTS_DATABASE_URL is not reachable"


def _before_serve() -> None:
    """Migrate in a forked child: importing the app here, in the gunicorn master, would create
    the Prometheus metrics before `serve` switches them to multiprocess mode."""
    from contacts_service.settings import Settings

    Settings.from_env()  # a ConfigError is reported here, not from inside the child
    child = multiprocessing.get_context("fork").Process(target=_apply_migrations)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit("contacts-server: database migration failed")


def check_config() -> list[str]:
    """Problems with the settings or the dependencies they point at; empty when all is well."""
    import psycopg2

    from contacts_service import pg_deadline
    from contacts_service.settings import Settings
    from contacts_service.sso_client import SsoClient, SsoUnavailable

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return [str(exc)]
    problems = []
    try:
        problems += _database_problems(settings)
    except psycopg2.Error as exc:
        problems.append(f"{_UNREACHABLE}: {pg_deadline.failure_reason(exc)}")
    sso = SsoClient(
        settings.sso_url,
        settings.sso_client_id,
        settings.sso_client_secret,
        timeout=settings.sso_timeout_seconds,
        ca_bundle=settings.sso_ca_bundle,
    )
    try:
        sso.healthy()
    except SsoUnavailable as exc:
        problems.append(f"SSO at CONTACTS_SSO_URL failed an introspection with our client: {exc}")
    return problems


_POOLING_HINT = "; behind PgBouncer in transaction pooling set CONTACTS_DB_TRANSACTION_POOLING=true"


def _database_problems(settings) -> list[str]:
    """Connect as the service does and check that its statement_timeout is in effect.

    Without CONTACTS_DB_TRANSACTION_POOLING the timeout is a startup parameter, which
    PgBouncer in transaction pooling refuses (the connection fails) or, listed in its
    ignore_startup_parameters, drops without a word: both are told here.
    """
    import psycopg2

    from contacts_service import pg_deadline

    options = pg_deadline.connect_args(
        settings.database_url,
        settings.db_statement_timeout_seconds,
        5,
        transaction_pooling=settings.db_transaction_pooling,
    )
    try:
        connection = psycopg2.connect(settings.database_url, **options)
    except psycopg2.Error as exc:
        if "options" in str(exc) and not settings.db_transaction_pooling:
            return [f"{_UNREACHABLE}: {pg_deadline.failure_reason(exc)}{_POOLING_HINT}"]
        raise
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_encoding")
            (encoding,) = cursor.fetchone()
        if encoding != "UTF8":
            return [
                f"the database at CONTACTS_DATABASE_URL uses the {encoding} encoding; contacts"
                " need UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
            ]
        if settings.db_transaction_pooling:
            return []
        with connection.cursor() as cursor:
            # In milliseconds, whatever unit the server would display.
            cursor.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
            (in_effect,) = cursor.fetchone()
        expected = int(settings.db_statement_timeout_seconds * 1000)
        if in_effect != str(expected):
            return [
                f"statement_timeout is {in_effect} ms on CONTACTS_DATABASE_URL, not {expected}:"
                " a pooler dropped the startup parameter" + _POOLING_HINT
            ]
        return []
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    try:
        return run_cli(
            prog="contacts-server",
            factory="contacts_service:create_app",
            default_bind="127.0.0.1:8002",
            check_config=check_config,
            before_serve=_before_serve,
            # Change-notification streams hold a thread each for hours: 1,100 threads (made on
            # demand) keep 1,000 streams and 100 ordinary requests per worker. Measured against
            # gevent in docs/contacts.md ("Change notifications"): gthread kept ordinary
            # requests and deliveries fast beside a CPU-bound upload, where one gevent worker
            # stalled for seconds.
            default_threads=1100,
            extra_commands={
                "migrate": ("apply pending database migrations", _migrate),
                "accounts": (
                    "operator actions on one account (erase, export)",
                    admin_cli.run,
                    admin_cli.add_arguments,
                ),
            },
            argv=argv,
            preload=("contacts_service.app",),
        )
    except ConfigError as exc:
        print(f"contacts-server: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
