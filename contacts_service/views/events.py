"""/v1/devices/{device_id}/events: change notifications as Server-Sent Events.

The stream is answered after the request is over as far as the app is concerned: the view
authenticates (before_request), checks the device, registers with the worker's hub
(contacts_service/notifications.py) and returns a generator; the request's transaction is
committed and its database connection back in the pool before the first byte is streamed. The
generator never touches the database: revisions come with the notifications, and a catch-up
after a listener reconnection is read by the listener itself in one query.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Response, request
from marshmallow import EXCLUDE, Schema, fields, validate

from contacts_service import address_book, notifications
from contacts_service.api import DEVICE_PATH, NO_DEVICE, api
from contacts_service.auth import bearer_token, caller
from contacts_service.extensions import db
from contacts_service.settings import Settings
from contacts_service.sso_client import SsoClient, SsoUnavailable
from contacts_service.state import app_state
from shared import serve
from shared.contract import Answer, Failure
from shared.errors import ApiError

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__, url_prefix="/devices/<device_id>")

# How long a new stream waits for the worker's listener to be listening (the first stream of
# a worker starts it) before it is refused: a stream that could not be told of changes would
# only look alive.
LISTEN_WAIT_SECONDS = 5.0
RETRY_AFTER = "5"


class EventsQuerySchema(Schema):
    """Query of GET .../events: optional ?since=<revision>."""

    class Meta:
        unknown = EXCLUDE

    since = fields.Integer(
        strict=False,
        validate=validate.Range(min=0),
        metadata={
            "description": "The revision the client has; a newer one is announced at once"
            " (`Last-Event-ID` wins when both are given)."
        },
    )


class LastEventIdSchema(Schema):
    # The documented pattern exactly: "+0" or a 26-digit id is not an id this server gave.
    last_event_id = fields.String(
        validate=validate.Regexp(r"^[0-9]{1,18}\Z", error="Must be 1-18 digits."),
        data_key="Last-Event-ID",
    )


_SSE = "text/event-stream"


@api.route(
    bp,
    "/events",
    "GET",
    path=DEVICE_PATH,
    query=EventsQuerySchema(),
    headers={
        "Last-Event-ID": {
            "type": "string",
            "pattern": "^[0-9]{1,18}$",
            "description": "The `id` of the last event the client saw (a revision).",
        }
    },
    answers=[
        Answer(
            200,
            {"type": "string"},
            "A Server-Sent Events stream: `id: <revision>`, `event: change`,"
            ' `data: {"revision": <n>}` after each change, `: keep-alive` comments',
            media=_SSE,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    ],
    failures=[
        NO_DEVICE,
        Failure(
            429,
            "too_many_attempts",
            "The account holds CONTACTS_MAX_STREAMS_PER_ACCOUNT streams on this worker",
        ),
        Failure(
            503,
            "unavailable",
            "The worker holds CONTACTS_MAX_STREAMS_PER_WORKER streams, or cannot listen for"
            " changes (`Retry-After`)",
        ),
    ],
    tags=["contacts"],
)
def device_events(device_id: str, query: dict):
    """Change notifications of one device, as Server-Sent Events.

    After every request that changes the device's book (revision) or its Smart Contacts
    result, the stream carries `id: <revision>` / `event: change` / `data: {"revision": n}`
    within a second; a Smart Contacts change repeats the current revision. With
    `Last-Event-ID: r` (or `?since=r`) and a current revision other than r, one `change` event
    is sent at once. A `: keep-alive` comment comes at least every
    CONTACTS_EVENTS_KEEPALIVE_SECONDS (15). The token is introspected again at least every
    CONTACTS_EVENTS_REINTROSPECT_SECONDS (30): once inactive, the stream ends; deleting the
    device ends it too. Errors before the stream starts are JSON as for any request."""
    resume = _resume_point(query)
    who = caller()
    device = address_book.device_or_404(who, device_id)
    state = app_state()
    settings = state.settings
    hub = notifications.hub_for(settings.listen_database_url, serve.worker_stopping)
    try:
        subscription = hub.subscribe(
            device.pk,
            who.cloud_id,
            stream_limit(settings),
            account=who.account_id,
            account_limit=settings.max_streams_per_account,
        )
    except notifications.AccountStreamsFull:
        raise ApiError(
            429,
            "too_many_attempts",
            "This account holds as many change streams on this server as it may; close one.",
            headers={"Retry-After": RETRY_AFTER},
        ) from None
    except notifications.StreamsFull:
        raise _unavailable("This server holds as many change streams as it can.") from None
    # The request's own database work is over: end its transaction now, so that waiting for
    # the listener (up to LISTEN_WAIT_SECONDS when it cannot connect) holds no pooled
    # connection and none of the row locks signing in took.
    db.session.commit()
    try:
        if not hub.wait_listening(LISTEN_WAIT_SECONDS):
            raise _unavailable("Change notifications are unavailable right now.")
        # Read after subscribing: a change committed from here on is also notified.
        current = notifications.current_revision(device.pk)
        if current is None:
            raise address_book.not_found()
    except BaseException:
        subscription.close()
        raise
    stream = Stream(
        subscription=subscription,
        sso=state.sso,
        settings=settings,
        token=bearer_token() or "",
        account=(who.cloud_id, who.username),
        revision=current,
        # Below log_floor, r may be a revision of a deleted device of the same id (or older
        # than the change log): even when it equals the current one, the client must re-read.
        announce=resume is not None and (resume != current or resume < device.log_floor),
    )
    response = Response(
        stream.events(),
        mimetype=_SSE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(subscription.close)
    return response


def _resume_point(query: dict) -> int | None:
    """`Last-Event-ID` (what an EventSource sends when it reconnects) or else `?since=`."""
    header = request.headers.get("Last-Event-ID")
    if header is not None:
        return int(api.load(LastEventIdSchema(), {"Last-Event-ID": header})["last_event_id"])
    return query.get("since")


def stream_limit(settings: Settings) -> int:
    """Streams this worker may hold: CONTACTS_MAX_STREAMS_PER_WORKER, and always fewer than
    the requests the worker can serve at once (a gthread worker's threads), so streams can
    never take every slot from ordinary requests."""
    capacity = serve.worker_capacity()
    if capacity is None:
        return settings.max_streams_per_worker
    # A quarter of a small worker, at most 64 slots of a large one (the database pool, 20
    # connections, is what bounds ordinary requests there anyway).
    reserve = max(1, min(capacity // 4, 64))
    return max(0, min(settings.max_streams_per_worker, capacity - reserve))


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": RETRY_AFTER})


def event(revision: int) -> str:
    return f"id: {revision}\nevent: change\ndata: {json.dumps({'revision': revision})}\n\n"


@dataclass
class Stream:
    """One open stream, after the request: waits for its subscription, keeps the connection
    alive and re-checks the token. Runs outside any app or request context."""

    subscription: notifications.Subscription
    sso: SsoClient
    settings: Settings
    token: str
    account: tuple[str, str]
    revision: int
    announce: bool

    def events(self) -> Iterator[str]:
        keepalive = self.settings.events_keepalive_seconds
        # The first byte goes out at once, so the client sees the 200 and its headers now.
        yield event(self.revision) if self.announce else ": connected\n\n"
        now = time.monotonic()
        next_keepalive = now + keepalive
        next_check = now + self._check_interval()
        sso_failures = 0
        while True:
            now = time.monotonic()
            self.subscription.wait(min(next_keepalive, next_check) - now)
            revision, changed, ended = self.subscription.take()
            if ended:
                yield f": {ended}\n\n"
                return
            if revision is not None and revision > self.revision:
                self.revision, changed = revision, True
            if changed:
                yield event(self.revision)
                next_keepalive = time.monotonic() + keepalive
            now = time.monotonic()
            if now >= next_check:
                verdict = self._token_verdict()
                if verdict == "inactive":
                    yield ": token inactive\n\n"
                    return
                sso_failures = sso_failures + 1 if verdict == "unknown" else 0
                if sso_failures >= 2:
                    # Two checks in a row without an answer: the client reconnects, and its
                    # reconnection gets the 503 (or, when the SSO is back, a fresh stream).
                    yield ": auth unavailable\n\n"
                    return
                next_check = time.monotonic() + self._check_interval()
            if now >= next_keepalive:
                yield ": keep-alive\n\n"
                next_keepalive = time.monotonic() + keepalive

    def _check_interval(self) -> float:
        # Spread below the limit, so a worker's streams do not all introspect at once.
        interval = self.settings.events_reintrospect_seconds
        return interval * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not a secret

    def _token_verdict(self) -> str:
        """ "active", "inactive" (revoked, expired, or now another account's), or "unknown"
        (the SSO did not answer)."""
        try:
            identity = self.sso.introspect(self.token)
        except SsoUnavailable as exc:
            log.warning("stream re-introspection failed: %s", exc)
            return "unknown"
        if identity is None or (identity.cloud_id, identity.username) != self.account:
            return "inactive"
        return "active"
