"""Deadlines for every PostgreSQL round trip, so a hung server costs a request seconds, not
forever.

`statement_timeout` (a startup parameter, or set at the start of every transaction behind a
transaction pooler) lets a healthy server cancel a runaway statement itself, and
`connect_timeout` bounds a new connection. Neither helps when the server, or the path to it,
hangs: the kernel keeps acknowledging TCP, so keep-alives see nothing, and libpq then waits on
the socket without limit — a SIGSTOPped postmaster, a frozen VM, a full disk. A psycopg2 wait
callback runs every round trip through poll() with a deadline instead; when it passes,
psycopg2 marks the connection broken (SQLAlchemy then discards it) and the request answers 503.
"""

from __future__ import annotations

import select
import time
import urllib.parse

import psycopg2
from psycopg2 import extensions
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from shared.sockets import readable_now

# Beyond the server's own statement_timeout, so a healthy server's clean cancel wins.
_SLACK_SECONDS = 2.0


def connect_args(
    database_url: str,
    statement_timeout_seconds: float,
    connect_timeout_seconds: int,
    *,
    transaction_pooling: bool,
) -> dict:
    """libpq options for each new connection.

    Straight to PostgreSQL, statement_timeout is a startup parameter: it costs nothing per
    transaction. It is added to the `options` the URL may carry (a search_path, a provider's
    endpoint id), which a connect argument of the same name would otherwise replace. Behind
    PgBouncer in transaction pooling a client connection is not a server session, so PgBouncer
    refuses that startup parameter (or, with it in ignore_startup_parameters, drops it
    silently); there it is set per transaction instead (statement_timeout_per_transaction),
    and check-config tells which case a deployment is in.
    """
    arguments = {"connect_timeout": connect_timeout_seconds}
    if not transaction_pooling:
        timeout = f"-c statement_timeout={int(statement_timeout_seconds * 1000)}"
        arguments["options"] = " ".join(filter(None, (url_options(database_url), timeout)))
    return arguments


def url_options(database_url: str) -> str | None:
    """The libpq `options` parameter of a postgresql:// URL, if it has one."""
    query = urllib.parse.urlsplit(database_url).query
    found = urllib.parse.parse_qs(query).get("options")
    return found[-1] if found else None


def statement_timeout_per_transaction(engine: Engine, statement_timeout_seconds: float) -> None:
    """`SET LOCAL statement_timeout` as the first statement of every transaction on `engine`.

    For transaction pooling only: a session-level setting would stay on the server connection
    PgBouncer hands to the next client, and would be missing from whichever server connection
    this client's next transaction gets; SET LOCAL lives and dies with the transaction. One
    small round trip per transaction.
    """
    statement = f"SET LOCAL statement_timeout = {int(statement_timeout_seconds * 1000)}"

    @event.listens_for(engine, "begin")
    def _set_statement_timeout(connection) -> None:
        connection.exec_driver_sql(statement)


def _has_input(dbapi_connection) -> bool:
    """Whether anything arrived on an idle connection since its last answer, without waiting.

    PostgreSQL sends nothing unasked to an idle session of ours (no LISTEN on pooled
    connections), except when it ends it: a restart, pg_terminate_backend or an idle timeout
    sends a FATAL message and closes; a killed PgBouncer's socket is closed by the kernel.
    Either makes the socket readable (the message, the FIN or a reset). A connection psycopg2
    already knows is closed has no socket to ask: it counts as having input (the ping then
    fails and the pool replaces it)."""
    return bool(dbapi_connection.closed) or readable_now(dbapi_connection.fileno())


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection with a round trip only when it sat idle over `idle_seconds`
    or something arrived on it while it was idle.

    SQLAlchemy's pool_pre_ping pings on every checkout: one more round trip per request, ≈ a
    sixth of an authenticated GET /v1/devices. A connection checked in moments ago with
    nothing waiting on its socket is very likely alive, and costs one poll() to check; one
    that sat idle (a quiet night, a server or network path that vanished without a word) or
    has input (the server or PgBouncer ended it: a restart, a terminated backend) is pinged.
    A failed ping makes the pool replace the connection before the request uses it. What is
    left: a server that vanished without closing its connections within `idle_seconds` of a
    connection's last use fails that connection's next request with a 503 (the pool then
    discards every connection older than the failure), instead of nobody noticing.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None:
            return  # new
        if time.monotonic() - checked_in_at <= idle_seconds and not _has_input(dbapi_connection):
            return  # in use moments ago, and nothing has come from the server since
        try:
            engine.dialect.do_ping(dbapi_connection)
        except psycopg2.Error as exc:
            record.info.pop("checked_in_at", None)
            # The pool retries the checkout with a new connection.
            raise sa_exc.DisconnectionError("pooled connection is dead") from exc


# What a failure to reach or use PostgreSQL was, for logs and operators: (words in the driver's
# message, what is reported). The message itself is never repeated: libpq quotes the host, user
# and database it was given, and with an unescaped "@" or a quote in CONTACTS_DATABASE_URL's
# password part of the password is what it quotes. Matched in this order, lowercased.
_FAILURES = (
    (("did not answer within",), "no answer within the deadline"),
    (("unsupported startup parameter",), "a startup parameter was refused"),
    (("connection refused",), "connection refused"),
    (("could not translate host name",), "host name not found"),
    (("no route to host", "network is unreachable"), "host unreachable"),
    (("timeout expired", "timed out"), "connection timed out"),
    (("authentication failed", "no pg_hba.conf entry"), "authentication refused"),
    (("does not exist",), "database or role does not exist"),
    (("terminating connection",), "the server ended the connection"),
    (("starting up", "shutting down", "recovery mode"), "the server is starting or stopping"),
    (("too many clients", "connection slots", "no more connections"), "too many connections"),
    (("statement timeout",), "statement timeout"),
    (("server login has been failing", "cannot connect to server"), "the pooler cannot reach it"),
    (
        (
            "closed the connection",
            "connection already closed",
            "could not receive data",
            "could not send data",
            "eof detected",
            "connection reset",
        ),
        "connection lost",
    ),
    (("ssl",), "TLS failure"),
)


def failure_reason(error: BaseException) -> str:
    """What went wrong talking to PostgreSQL, in fixed words, with the SQLSTATE when the server
    sent one; nothing quoted from the error (see _FAILURES)."""
    driver_error = getattr(error, "orig", None) or error
    text = str(driver_error).lower()
    reason = next(
        (said for words, said in _FAILURES if any(word in text for word in words)),
        f"unrecognised {driver_error.__class__.__name__}",
    )
    code = getattr(driver_error, "pgcode", None)
    return f"{reason} (SQLSTATE {code})" if code else reason


def install(statement_timeout_seconds: float, connect_timeout_seconds: float) -> None:
    """Route every psycopg2 wait in this process through a poll() with a deadline."""
    query_deadline = statement_timeout_seconds + _SLACK_SECONDS

    def wait(conn) -> None:
        connecting = conn.status == extensions.STATUS_SETUP
        budget = connect_timeout_seconds if connecting else query_deadline
        deadline = time.monotonic() + budget
        poller = select.poll()
        registered = None
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                events = select.POLLIN
            elif state == extensions.POLL_WRITE:
                events = select.POLLOUT
            else:  # pragma: no cover - psycopg2 documents no other state
                raise psycopg2.OperationalError(f"unexpected poll state {state}")
            if registered != events:
                if registered is not None:
                    poller.unregister(conn.fileno())
                poller.register(conn.fileno(), events)
                registered = events
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                # psycopg2 marks a connection whose wait callback failed as broken
                # (conn.closed == 2), so SQLAlchemy discards it rather than pooling it again.
                raise psycopg2.OperationalError(f"PostgreSQL did not answer within {budget:g} s")

    extensions.set_wait_callback(wait)
