"""The Contacts service application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import psycopg2
from flask import Flask
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from contacts_service import pg_deadline, repository
from contacts_service.extensions import db
from contacts_service.settings import Settings
from contacts_service.state import app_state, init_app_state
from contacts_service.views import register_blueprints
from shared.body import register_body_limit
from shared.compression import register_compression
from shared.config import ConfigError
from shared.errors import error_response, register_error_handlers
from shared.logging import configure_logging
from shared.memory import register_memory_trim
from shared.metrics import register_metrics
from shared.web import (
    configure_cors,
    register_health,
    register_openapi,
    register_security_headers,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """Build the app from `config` (Settings, or a mapping of CONTACTS_* variables; the process
    environment when None)."""
    settings = _settings(config)
    app = Flask(__name__)
    configure_app(app, settings)
    configure_logging(app, "contacts", settings.log_level)
    register_error_handlers(app)
    register_database_errors(app)
    init_database(app, settings)
    init_app_state(app, settings)
    register_blueprints(app)
    register_health(app, {"postgresql": check_database, "sso": check_sso})
    register_metrics(app, "contacts")
    register_openapi(
        app,
        title="Contact Sync Contacts service",
        description=(
            "Per-device address books (Acrobits Contacts JSON) with checksum sync, incremental"
            " fetch and Smart Contacts. Every /v1 request carries `Authorization: Bearer"
            " <token>` from the SSO service. Request bodies may be gzip-encoded; answers over"
            " 1 KiB are gzip-encoded for clients that accept it. Every error uses {error,"
            " message, details}."
        ),
        security_schemes={
            "bearer": {"type": "http", "scheme": "bearer"},
            "admin": {"type": "http", "scheme": "basic"},
        },
    )
    configure_cors(app, settings.cors_origins)
    register_security_headers(app)
    register_compression(app)
    register_memory_trim(app)
    register_unit_of_work(app)  # last, so its after_request runs first
    return app


def _settings(config: Settings | Mapping[str, str] | None) -> Settings:
    if isinstance(config, Settings):
        return config
    return Settings.from_env(os.environ if config is None else config)


def configure_app(app: Flask, settings: Settings) -> None:
    register_body_limit(app, settings.max_body_bytes)
    # Read by the contact schema (contacts_service/schemas.py: contact_limits).
    app.config["CONTACTS_MAX_ENTRIES_PER_CONTACT"] = settings.max_entries_per_contact
    app.config["CONTACTS_MAX_CONTACT_BYTES"] = settings.max_contact_bytes
    app.config["CONTACTS_MAX_CONTACTS_PER_DEVICE"] = settings.max_contacts_per_device
    app.json.sort_keys = False
    app.json.ensure_ascii = False


def init_database(app: Flask, settings: Settings) -> None:
    # The models register the tables on db.metadata, which migrations compare against.
    from contacts_service import models  # noqa: F401

    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_size,
        "pool_timeout": 10,
        "connect_args": {
            **pg_deadline.connect_args(
                settings.database_url,
                settings.db_statement_timeout_seconds,
                5,
                transaction_pooling=settings.db_transaction_pooling,
            ),
            "application_name": "contacts_service",
            # Documents are sent as UTF-8 bytes (repository.Utf8Text).
            "client_encoding": "utf8",
        },
    }
    pg_deadline.install(settings.db_statement_timeout_seconds, 5)
    repository.register_adapters()
    db.init_app(app)
    with app.app_context():
        pg_deadline.ping_after_idle(db.engine, settings.db_ping_after_idle_seconds)
        if settings.db_transaction_pooling:
            pg_deadline.statement_timeout_per_transaction(
                db.engine, settings.db_statement_timeout_seconds
            )


def register_database_errors(app: Flask) -> None:
    """A database that cannot be reached is a 503, never a 500."""

    def database_unavailable(exc: sa_exc.DBAPIError):
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
            exc.connection_invalidated
        ):
            log.warning("database unavailable: %s", pg_deadline.failure_reason(exc))
            db.session.rollback()
            return error_response(503, "unavailable", "The database is unavailable.")
        log.exception("database error")
        db.session.rollback()
        return error_response(500, "internal_error", "An internal error occurred.")

    app.register_error_handler(sa_exc.DBAPIError, database_unavailable)

    def driver_error(exc: psycopg2.Error):
        # Raised as psycopg2's own on the raw cursors some reads use (documents as bytes,
        # snapshots of their own): the same answers as the SQLAlchemy-wrapped ones above.
        db.session.rollback()
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            log.warning("database unavailable: %s", pg_deadline.failure_reason(exc))
            return error_response(503, "unavailable", "The database is unavailable.")
        log.exception("database error")
        return error_response(500, "internal_error", "An internal error occurred.")

    app.register_error_handler(psycopg2.Error, driver_error)

    def pool_exhausted(exc: sa_exc.TimeoutError):
        # Every pooled connection busy for pool_timeout: the database is unavailable to this
        # request, like a connection that cannot be made.
        log.warning("database connection pool exhausted")
        return error_response(503, "unavailable", "The database is unavailable.")

    app.register_error_handler(sa_exc.TimeoutError, pool_exhausted)


def register_unit_of_work(app: Flask) -> None:
    """One commit per request, here: a successful answer (< 400) commits what the request
    did; any error rolls everything back, so a rejected request changes nothing."""

    @app.after_request
    def _commit_or_rollback(response):
        if not db.session().in_transaction():
            return response
        if response.status_code >= 400:
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except sa_exc.SQLAlchemyError as exc:
            log.warning("commit failed: %s", exc.__class__.__name__)
            db.session.rollback()
            return error_response(503, "unavailable", "The database is unavailable.")
        return response


MIGRATION_DEADLINE_SECONDS = 3600.0


def init_migrations(app: Flask) -> None:
    """Flask-Migrate on `app` (imported here, not at start-up: a serving worker never needs it,
    and it costs ≈ 11 MiB per process)."""
    from flask_migrate import Migrate

    if "migrate" not in app.extensions:
        Migrate(app, db, directory=MIGRATIONS_DIR)


def apply_migrations(app: Flask) -> None:
    """Bring the database schema up to date (concurrent runs wait on an advisory lock)."""
    import flask_migrate

    init_migrations(app)

    settings = app_state(app).settings
    # A schema change on a big table may legitimately run for minutes.
    pg_deadline.install(MIGRATION_DEADLINE_SECONDS, 5)
    try:
        with app.app_context():
            problem = database_encoding_problem()
            if problem:
                raise ConfigError(problem)
            flask_migrate.upgrade(directory=MIGRATIONS_DIR)
    finally:
        pg_deadline.install(settings.db_statement_timeout_seconds, 5)


def database_encoding_problem() -> str | None:
    """Contacts hold any Unicode text (emoji, every script), which only a UTF8 database can
    store: in another encoding the first contact with a character outside it would fail its
    upload. Refused before anything is migrated or served."""
    encoding = db.session.execute(text("SHOW server_encoding")).scalar()
    db.session.rollback()
    if encoding != "UTF8":
        return (
            f"the database at CONTACTS_DATABASE_URL uses the {encoding} encoding; contacts"
            " need UTF8 (CREATE DATABASE ... ENCODING 'UTF8')"
        )
    return None


def check_database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def check_sso() -> None:
    app_state().sso.healthy()
