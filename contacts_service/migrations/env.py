"""Alembic environment: migrate the Flask app's database, one migrator at a time."""

from __future__ import annotations

import logging

from alembic import context
from flask import current_app
from sqlalchemy import text

log = logging.getLogger("alembic.env")

# Several gunicorn masters (or a deploy and a `migrate`) may start at once; the first migrates,
# the others wait on this transaction-scoped lock and then find nothing to do.
_MIGRATION_LOCK = 7_243_001

config = context.config
target_db = current_app.extensions["migrate"].db


def run_migrations_offline() -> None:
    context.configure(
        url=target_db.engine.url.render_as_string(hide_password=False),
        target_metadata=target_db.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")

    with target_db.engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_db.metadata,
            process_revision_directives=skip_empty,
            compare_type=True,
        )
        with context.begin_transaction():
            # Schema changes on big tables may run long: the request-path statement_timeout
            # does not apply to them (the client-side deadline is statement_timeout + slack,
            # so this only matters for the server-side cancel).
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
