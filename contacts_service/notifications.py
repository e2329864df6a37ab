"""Change notifications: PostgreSQL NOTIFY from the writers, one LISTEN connection per worker
process, and the dispatcher that wakes the change streams waiting in that process
(GET /v1/devices/{device_id}/events, contacts_service/views/events.py).

Why PostgreSQL and not Redis: the Contacts service has no Redis, and PostgreSQL already is
where a change becomes true. `pg_notify` runs inside the writing request's transaction, so a
notification is delivered exactly when the change commits and never for a request that was
rolled back (a 4xx, a failed commit); it also works through PgBouncer in transaction mode.
Only the listening side needs a session of its own, hence CONTACTS_LISTEN_DATABASE_URL.

Payloads are small text on one channel:

    d:<device pk>:<revision>   the device's book changed (PATCH/PUT contacts)
    x:<device pk>              the device is being deleted (its streams end)
    c:<cloud_id>               an account of the Cloud ID changed its verified numbers: the
                               Smart Contacts result of any device of the cloud may differ
                               (every stream of the cloud is told; over-notifying is cheap,
                               a client's next read with If-None-Match is a 304 if nothing
                               changed for it)

The listener reconnects with backoff when PostgreSQL goes away. A notification sent while it
was away is lost, so after every reconnection each waiting stream is told again with its
device's current revision (read in one query), and a stream whose device is gone ends.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable

import psycopg2
from sqlalchemy import text

from contacts_service.extensions import db
from contacts_service.schemas import valid_device_id

log = logging.getLogger(__name__)

CHANNEL = "contacts_changes"

# --- writers: run on the request's session, delivered by PostgreSQL at commit ---------------


def _notify(payload: str) -> None:
    db.session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )


def device_changed(device_pk: int, revision: int) -> None:
    """The device's book changed and now has this revision."""
    _notify(f"d:{device_pk}:{revision}")


def device_deleting(account_id: int, device_id: str) -> None:
    """The device (if the account has it) is about to be deleted in this transaction."""
    if not valid_device_id(device_id):
        return  # it cannot exist (and a NUL byte is not even text to PostgreSQL)
    db.session.execute(
        text(
            "SELECT pg_notify(:channel, 'x:' || pk) FROM devices "
            "WHERE account_id = :a AND device_id = :d"
        ),
        {"channel": CHANNEL, "a": account_id, "d": device_id},
    )


def account_erasing(account_id: int, cloud_id: str) -> None:
    """Every device of the account is about to go, and its numbers with it."""
    db.session.execute(
        text("SELECT pg_notify(:channel, 'x:' || pk) FROM devices WHERE account_id = :a"),
        {"channel": CHANNEL, "a": account_id},
    )
    cloud_changed(cloud_id)


def cloud_changed(cloud_id: str) -> None:
    """An account of this Cloud ID gained or lost verified numbers (or its SIP URI)."""
    _notify(f"c:{cloud_id}")


# --- the waiting side ----------------------------------------------------------------------


class StreamsFull(Exception):
    """This worker already holds as many streams as it may."""


class AccountStreamsFull(StreamsFull):
    """This account already holds as many of this worker's streams as one account may."""


class Subscription:
    """One waiting stream's mailbox: what happened to its device since it last looked."""

    def __init__(self, hub: Hub, device_pk: int, cloud_id: str):
        self.hub = hub
        self.device_pk = device_pk
        self.cloud_id = cloud_id
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._revision: int | None = None
        self._changed = False
        self._ended: str | None = None
        self._closed = False
        self.account: object = None

    # Called by the dispatcher.
    def _post(self, revision: int | None = None, changed: bool = True, ended: str | None = None):
        with self._lock:
            if revision is not None and (self._revision is None or revision > self._revision):
                self._revision = revision
            self._changed = self._changed or changed
            self._ended = self._ended or ended
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Block (this thread or greenlet only) until something is posted or timeout passes."""
        self._event.wait(max(timeout, 0.0))

    def take(self) -> tuple[int | None, bool, str | None]:
        """(highest revision posted or None, whether a change event is due, end reason)."""
        with self._lock:
            taken = (self._revision, self._changed, self._ended)
            self._revision, self._changed = None, False
            self._event.clear()
        return taken

    def close(self) -> None:
        """Leave the hub; idempotent (called when the response is closed, however it ends)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.hub._remove(self)


class Hub:
    """The streams of one worker process and the one listener thread that feeds them.

    Under gevent (monkey-patched), the thread, locks, events and select are cooperative; under
    gthread they are real threads. The listener starts with the first subscription.
    """

    PING_SECONDS = 15.0
    MAX_BACKOFF_SECONDS = 10.0

    def __init__(self, dsn: str, stopping: Callable[[], bool] = lambda: False):
        self.dsn = dsn
        self.stopping = stopping
        self._lock = threading.Lock()
        self._by_device: dict[int, set[Subscription]] = defaultdict(set)
        self._by_cloud: dict[str, set[Subscription]] = defaultdict(set)
        self._count = 0
        self._by_account: Counter = Counter()
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._stopped = False

    # --- streams ---

    def subscribe(
        self,
        device_pk: int,
        cloud_id: str,
        limit: int,
        account: object = None,
        account_limit: int | None = None,
    ) -> Subscription:
        """Register a stream (before its device's revision is read, so nothing committed after
        that read can be missed); StreamsFull beyond `limit` streams in this process, and
        AccountStreamsFull beyond `account_limit` of them for one `account`: one token must
        not be able to take every slot from everyone else."""
        subscription = Subscription(self, device_pk, cloud_id)
        subscription.account = account
        with self._lock:
            if self._stopped or self._count >= limit:
                raise StreamsFull
            if account_limit is not None and self._by_account[account] >= account_limit:
                raise AccountStreamsFull
            self._by_account[account] += 1
            self._count += 1
            self._by_device[device_pk].add(subscription)
            self._by_cloud[cloud_id].add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="contacts-listener", daemon=True
                )
                self._thread.start()
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._count -= 1
            self._by_account[subscription.account] -= 1
            if self._by_account[subscription.account] <= 0:
                del self._by_account[subscription.account]
            _discard(self._by_device, subscription.device_pk, subscription)
            _discard(self._by_cloud, subscription.cloud_id, subscription)

    @property
    def stream_count(self) -> int:
        return self._count

    def wait_listening(self, timeout: float) -> bool:
        """Whether the listener is (or within timeout becomes) connected and listening."""
        return self._listening.wait(timeout)

    # --- dispatch ---

    def dispatch(self, payload: str) -> None:
        kind, _, rest = payload.partition(":")
        try:
            if kind == "d":
                pk, _, revision = rest.partition(":")
                for subscription in self._subscribers(self._by_device, int(pk)):
                    subscription._post(revision=int(revision))
            elif kind == "x":
                for subscription in self._subscribers(self._by_device, int(rest)):
                    subscription._post(changed=False, ended="deleted")
            elif kind == "c":
                for subscription in self._subscribers(self._by_cloud, rest):
                    subscription._post()
        except ValueError:
            log.warning("ignored a malformed change notification")

    def _subscribers(self, index: dict, key) -> list[Subscription]:
        with self._lock:
            return list(index.get(key, ()))

    def _all(self) -> list[Subscription]:
        with self._lock:
            return [s for group in self._by_device.values() for s in group]

    def end_all(self, reason: str) -> None:
        for subscription in self._all():
            subscription._post(changed=False, ended=reason)

    # --- the listener ---

    def _run(self) -> None:
        backoff = 0.5
        reconnecting = False
        while True:
            conn = None
            try:
                conn = self._connect()
                backoff = 0.5
                self._resync(conn, force=reconnecting)
                self._listening.set()
                log.info("listening for change notifications")
                self._listen(conn)
                return  # stopping
            except (psycopg2.Error, OSError) as exc:
                self._listening.clear()
                log.warning(
                    "change notification listener lost PostgreSQL (%s); reconnecting in %.1f s",
                    exc.__class__.__name__,
                    backoff,
                )
            finally:
                if conn is not None:
                    _close_quietly(conn)
            if self._check_stopping():
                return
            reconnecting = True
            time.sleep(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret
            backoff = min(backoff * 2, self.MAX_BACKOFF_SECONDS)

    def _connect(self):
        conn = psycopg2.connect(
            _libpq_url(self.dsn),
            connect_timeout=5,
            application_name="contacts_service_listener",
            # A peer that vanished without a FIN shows within about a minute, even idle.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")
        return conn

    def _resync(self, conn, force: bool) -> None:
        """Tell every stream its device's current revision (and end those whose device is
        gone): notifications sent before LISTEN took effect are not delivered. After a
        reconnection (`force`) every stream gets a change event, since a Smart Contacts change
        in the gap has no revision to compare."""
        subscriptions = self._all()
        if not subscriptions:
            return
        pks = sorted({s.device_pk for s in subscriptions})
        with conn.cursor() as cursor:
            cursor.execute("SELECT pk, revision FROM devices WHERE pk = ANY(%s)", (pks,))
            revisions = dict(cursor.fetchall())
        for subscription in subscriptions:
            revision = revisions.get(subscription.device_pk)
            if revision is None:
                subscription._post(changed=False, ended="deleted")
            else:
                subscription._post(revision=revision, changed=force)

    def _listen(self, conn) -> None:
        last_heard = time.monotonic()
        while not self._check_stopping():
            # A short wait, so a stopping worker is noticed within a second.
            readable, _, _ = select.select([conn], [], [], 1.0)
            if readable:
                conn.poll()
                last_heard = time.monotonic()
                while conn.notifies:
                    self.dispatch(conn.notifies.pop(0).payload)
            elif time.monotonic() - last_heard > self.PING_SECONDS:
                # A hung server or path keeps the socket quiet: a round trip with a deadline
                # (contacts_service/pg_deadline.py) tells a dead listener from an idle one.
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                last_heard = time.monotonic()

    def _check_stopping(self) -> bool:
        if self.stopping():
            with self._lock:
                self._stopped = True
            self.end_all("shutdown")
            return True
        return False


def _discard(index: dict, key, subscription: Subscription) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(subscription)
        if not group:
            del index[key]


def _close_quietly(conn) -> None:
    with contextlib.suppress(psycopg2.Error):
        conn.close()


def _libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg2://` is not a libpq URL."""
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


_hubs: dict[str, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(dsn: str, stopping: Callable[[], bool] = lambda: False) -> Hub:
    """The process's hub for this database (one listener connection per worker process)."""
    with _hubs_lock:
        hub = _hubs.get(dsn)
        if hub is None:
            hub = _hubs[dsn] = Hub(dsn, stopping)
        return hub


def current_revision(device_pk: int) -> int | None:
    """The device's revision on the request's session; None when it is gone."""
    return db.session.execute(
        text("SELECT revision FROM devices WHERE pk = :pk"), {"pk": device_pk}
    ).scalar()
