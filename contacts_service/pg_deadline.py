"""Deadlines for every PostgreSQL round trip, so a hung server costs a request seconds, not
forever.

`statement_timeout` (set at the start of every transaction) lets a healthy server cancel a
runaway statement itself, and `connect_timeout` bounds a new connection. Neither helps when the
server, or the path to it, hangs: the kernel keeps acknowledging TCP, so keep-alives see
nothing, and libpq then waits on the socket without limit — a SIGSTOPped postmaster, a frozen
VM, a full disk. A psycopg2 wait callback runs every round trip through poll() with a deadline
instead; when it passes, psycopg2 marks the connection broken (SQLAlchemy then discards it) and
the request answers 503.
"""

from __future__ import annotations

import select
import time

import psycopg2
from psycopg2 import extensions
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Beyond the server's own statement_timeout, so a healthy server's clean cancel wins.
_SLACK_SECONDS = 2.0


def connect_args(statement_timeout_seconds: float, connect_timeout_seconds: int) -> dict:
    """libpq options for each new connection.

    No `options=-c statement_timeout=...`: behind PgBouncer in transaction pooling a client
    connection is not a server session, so PgBouncer refuses that startup parameter (or, with
    it in ignore_startup_parameters, drops it silently); see statement_timeout_per_transaction.
    """
    return {"connect_timeout": connect_timeout_seconds}


def statement_timeout_per_transaction(engine: Engine, statement_timeout_seconds: float) -> None:
    """`SET LOCAL statement_timeout` as the first statement of every transaction on `engine`.

    A session-level setting (a startup option or a plain SET after connect) would stay on the
    server connection PgBouncer hands to the next client, and would be missing from whichever
    server connection this client's next transaction gets; SET LOCAL lives and dies with the
    transaction, so it holds with or without a pooler. One small round trip per transaction.
    """
    statement = f"SET LOCAL statement_timeout = {int(statement_timeout_seconds * 1000)}"

    @event.listens_for(engine, "begin")
    def _set_statement_timeout(connection) -> None:
        connection.exec_driver_sql(statement)


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
