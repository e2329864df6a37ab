"""The SSO service, as the Contacts service sees it: token introspection.

Every Contacts request makes one introspection, so this client is built for that one call:

- keep-alive connections, pooled per worker process (LIFO: the most recently used is the
  least likely to have been closed by the SSO as idle). A connection is pooled only after an
  answer whose end we know for certain, with nothing read past it, and is reused only if
  nothing (bytes or its end) has arrived on it since: an answer is never matched to a request
  it does not belong to. A request whose reused connection turns out closed as we send is sent
  once more on a new one, as introspection changes nothing;
- ONE deadline for the whole exchange (`timeout`): connecting, the TLS handshake, sending and
  reading the full answer. Every socket wait gets what is left of it, so an SSO that hangs, or
  trickles its answer a byte at a time, costs a request `timeout` seconds, never more;
- nothing beyond what the call needs: no cookies, no redirects, no proxies from the
  environment, no retries beyond the one above, answers over 1 MiB refused; the request bytes
  are prepared once, and the answer is parsed here (status line, headers, a Content-Length or
  chunked body), which costs a fraction of what requests and http.client spend per call;
- HTTPS verified against CONTACTS_SSO_CA_BUNDLE (else certifi's bundle), HTTP Basic client
  authentication.

With CONTACTS_INTROSPECTION_CACHE_SECONDS > 0 active answers are cached in-process under
SHA-256(token) + the SSO URL, never beyond the token's `exp`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass

import certifi

from shared.resolve import LookupBacklog, Unresolved, resolve_within
from shared.sockets import readable_now

log = logging.getLogger(__name__)

_READINESS_PROBE_TOKEN = "readiness-probe"  # noqa: S105 - a deliberately invalid token

_CACHE_LIMIT = 10_000

# The identifiers of API.md, matched over the whole string (fullmatch: a trailing newline is
# outside the class; a username is also whole Unicode text, no lone surrogates). An answer
# naming an account outside them is not one we can serve.
CLOUD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
USERNAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,128}")
# Verified numbers considered from one answer (the SSO keeps at most 1,000 per account).
MAX_PHONE_NUMBERS = 1000

# An introspection answer is a few hundred bytes (tens of kB with 1,000 numbers).
MAX_ANSWER_BYTES = 1 << 20
_MAX_LINE = 8192
_MAX_HEADERS = 100
# Idle keep-alive connections kept per worker (more may be open while requests are in flight).
POOL_SIZE = 32


class SsoUnavailable(Exception):
    """The SSO service could not give an answer (down, timed out, 5xx, rejected our client)."""


@dataclass(frozen=True)
class Identity:
    """The account an active token belongs to, as introspection describes it."""

    cloud_id: str
    username: str
    phone_numbers: tuple[str, ...]
    sip_uri: str | None
    exp: int | None


def _identity(body: object) -> Identity | None:
    """The Identity in an introspection answer; None for an inactive token.

    The account fields must be what API.md says identifiers are, else the answer is unusable
    (SsoUnavailable). Phone numbers are only advisory input to Smart Contacts: anything in
    `phone_numbers` that is not a string is dropped here, and auth.py keeps only the strings
    that normalise to E.164, so no value there can fail a request.
    """
    if not isinstance(body, dict):
        raise SsoUnavailable("introspection answer is not a JSON object")
    if body.get("active") is not True:
        return None
    cloud_id, username = body.get("cloud_id"), body.get("username")
    sip_uri = body.get("sip_uri")
    exp = body.get("exp")
    if (
        not isinstance(cloud_id, str)
        or not isinstance(username, str)
        or CLOUD_ID.fullmatch(cloud_id) is None
        or cloud_id.strip(".") == ""
        or USERNAME.fullmatch(username) is None
        or not (sip_uri is None or isinstance(sip_uri, str))
    ):
        raise SsoUnavailable("introspection answer lacks valid account fields")
    return Identity(
        cloud_id=cloud_id,
        username=username,
        phone_numbers=_phone_numbers(body.get("phone_numbers")),
        sip_uri=sip_uri,
        exp=exp if isinstance(exp, int) and not isinstance(exp, bool) else None,
    )


def _phone_numbers(value: object) -> tuple[str, ...]:
    """The strings among an answer's phone_numbers, in order, without duplicates, bounded."""
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(n for n in value if isinstance(n, str)))[:MAX_PHONE_NUMBERS]


# --- the HTTP exchange ------------------------------------------------------------------------


class _Broken(Exception):
    """The exchange failed; `stale` says whether it failed the way a reused keep-alive
    connection the SSO had already closed fails (nothing came back at all), which is worth one
    more try on a new connection."""

    def __init__(self, reason: str, stale: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.stale = stale


class _DeadlineReader(io.RawIOBase):
    """Socket reads, each waiting only for what is left of the exchange's deadline (a socket
    timeout alone bounds one read, so a trickling answer could last forever).

    Once `done`, it reads nothing more (None: "no bytes available", as a non-blocking raw
    stream says), so peeking at the buffer on top shows only what was already read past the
    answer, without waiting."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.deadline = deadline
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        if self.done:
            return None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("introspection deadline passed")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.used = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    keep_alive: bool


def _read_line(reader: io.BufferedReader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _Broken("header line too long")
    if not line.endswith(b"\n"):
        raise _Broken("connection closed mid-answer")
    return line


def _read_head(reader: io.BufferedReader, first: bytes) -> tuple[int, str, dict[str, str]]:
    """Status code, HTTP version and headers (lower-cased names; repeats joined by ", ")."""
    parts = first.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _Broken("not an HTTP/1.x answer")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        line = _read_line(reader)
        if line in (b"\r\n", b"\n"):
            return status, parts[0].decode("ascii", "replace"), headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _Broken("malformed header line")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise _Broken("too many header lines")


def _read_chunked(reader: io.BufferedReader) -> bytes:
    chunks, size = [], 0
    while True:
        line = _read_line(reader).split(b";", 1)[0].strip()
        try:
            length = int(line, 16)
        except ValueError:
            raise _Broken("malformed chunk size") from None
        if length < 0:
            raise _Broken("malformed chunk size")
        if length == 0:
            while _read_line(reader) not in (b"\r\n", b"\n"):  # trailer fields
                pass
            return b"".join(chunks)
        size += length
        if size > MAX_ANSWER_BYTES:
            raise _Broken("answer too large")
        chunk = reader.read(length)
        if len(chunk) != length:
            raise _Broken("connection closed mid-answer")
        chunks.append(chunk)
        _read_line(reader)  # the CRLF after the chunk


def _read_answer(sock: socket.socket, deadline: float, reused: bool) -> _Answer:
    """The answer to the request just sent. `keep_alive` is True only when the connection can
    carry the next request: an answer framed beyond doubt, with no byte read past its end."""
    raw = _DeadlineReader(sock, deadline)
    reader = io.BufferedReader(raw, 16384)
    try:
        first = reader.readline(_MAX_LINE + 1)
    except (ConnectionResetError, ConnectionAbortedError) as exc:
        raise _Broken(f"connection reset: {exc.__class__.__name__}", stale=reused) from None
    if not first:
        raise _Broken("connection closed before an answer", stale=reused)
    if not first.endswith(b"\n"):
        raise _Broken("status line too long or cut")
    status, version, headers = _read_head(reader, first)
    # Interim answers (100 Continue, 103 Early Hints) are skipped, but we never ask for one
    # (no Expect, no Upgrade), so one means a server we do not understand: its connection is
    # not reused.
    interim = False
    while 100 <= status < 200:
        if status == 101:
            raise _Broken("the SSO switched protocols")
        interim = True
        status, version, headers = _read_head(reader, _read_line(reader))
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise _Broken("an encoded answer (we asked for identity)")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
    keep_alive = keep_alive and not interim
    transfer_coding = headers.get("transfer-encoding")
    if status in (204, 304):
        # Never a body (RFC 9110). Bytes sent anyway would be read as the next request's
        # answer, and there is no telling where they end: the connection is not reused.
        body = b""
        keep_alive = False
    elif transfer_coding is not None:
        if transfer_coding.strip().lower() != "chunked":
            raise _Broken("an unsupported transfer coding")
        body = _read_chunked(reader)
        if "content-length" in headers:  # conflicting framing (RFC 9112 6.3): do not reuse
            keep_alive = False
    elif "content-length" in headers:
        length_text = headers["content-length"]
        if not length_text.isdigit():
            raise _Broken("malformed Content-Length")
        length = int(length_text)
        if length > MAX_ANSWER_BYTES:
            raise _Broken("answer too large")
        body = reader.read(length)
        if len(body) != length:
            raise _Broken("connection closed mid-answer")
    else:  # delimited by the end of the connection
        body = reader.read(MAX_ANSWER_BYTES + 1)
        if len(body) > MAX_ANSWER_BYTES:
            raise _Broken("answer too large")
        keep_alive = False
    raw.done = True
    if keep_alive and reader.peek(1):
        # Bytes already read past the end of the answer: nothing was asked for them, and a
        # connection whose stream does not follow its framing is not trusted with another
        # request.
        keep_alive = False
    return _Answer(status, body, keep_alive)


def _has_input(sock: socket.socket) -> bool:
    """Whether anything has arrived on an idle connection, without waiting: bytes nobody asked
    for, or its end (a FIN or reset makes a socket readable too). Either way it must not carry
    another request. Decrypted TLS bytes buffered inside the SSL object do not make the socket
    readable, so they are checked apart."""
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
    except (OSError, ValueError):  # closed
        return True
    return readable_now(sock)


# Lookups are rare (only new connections resolve): this many pending means the SSO's DNS hangs.
_MAX_PENDING_LOOKUPS = 64
_pending_lookups = threading.BoundedSemaphore(_MAX_PENDING_LOOKUPS)


def _resolve(host: str, port: int, timeout: float) -> list[tuple[int, tuple]]:
    """(family, sockaddr) pairs of `host` within `timeout`; TimeoutError at the deadline (the
    SSO timed out), _Broken when it does not resolve (the SSO is unreachable)."""
    try:
        return resolve_within(host, port, timeout, slots=_pending_lookups, thread_name="sso-dns")
    except LookupBacklog:
        raise _Broken("name resolution backlog") from None
    except Unresolved:
        raise _Broken(f"cannot resolve {host}") from None


class _Exchanger:
    """Requests (POSTs, or `method`) to one URL over pooled keep-alive connections, one
    deadline per exchange."""

    def __init__(
        self, url: str, headers: dict[str, str], ca_bundle: str | None, method: str = "POST"
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        default_port = self.port == (443 if self.scheme == "https" else 80)
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if not default_port:
            host_header += f":{self.port}"
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._tls: ssl.SSLContext | None = None
        if self.scheme == "https":
            self._tls = ssl.create_default_context(cafile=ca_bundle or certifi.where())
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def send(self, body: bytes, timeout: float) -> _Answer:
        deadline = time.monotonic() + timeout
        message = self._head + str(len(body)).encode() + b"\r\n\r\n" + body
        connection = self._checkout() or self._connect(deadline)
        try:
            return self._send(connection, message, deadline)
        except _Broken as exc:
            if not exc.stale:
                raise
        # The SSO closed the reused connection after _checkout looked at it, as we sent: once
        # more, on a new one.
        return self._send(self._connect(deadline), message, deadline)

    def _send(self, connection: _Connection, message: bytes, deadline: float) -> _Answer:
        keep = False
        try:
            reused = connection.used
            connection.used = True
            try:
                connection.sock.settimeout(_remaining(deadline))
                connection.sock.sendall(message)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                raise _Broken("connection closed before sending", stale=reused) from None
            answer = _read_answer(connection.sock, deadline, reused)
            keep = answer.keep_alive
            return answer
        finally:
            if keep:
                self._checkin(connection)
            else:
                connection.close()

    def _connect(self, deadline: float) -> _Connection:
        last: Exception | None = None
        for family, sockaddr in _resolve(self.host, self.port, _remaining(deadline)):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.connect(sockaddr)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except (OSError, _Broken) as exc:
                sock.close()
                if isinstance(exc, TimeoutError):
                    raise
                last = exc
                continue
            return _Connection(sock)
        raise _Broken(f"cannot connect: {last.__class__.__name__ if last else 'no address'}")

    def _checkout(self) -> _Connection | None:
        """An idle connection on which nothing has arrived since its last answer, else None.

        Anything that has arrived (a late extra answer, a "408" before an idle close, the end
        of the connection) would otherwise be read as the answer to the request we are about
        to send, e.g. another account's identity for an inactive token. Such connections are
        closed here, before a byte is sent on them.

        What this cannot catch: bytes the SSO (or something in between) sends after this
        check, before its answer to our request. HTTP/1.1 answers carry nothing that ties them
        to a request, nor does the introspection answer name the token, so such bytes cannot
        be told from the answer. That window is short (from this check to the SSO's answer),
        while the late copies and idle-close goodbyes seen in practice arrive as a connection
        sits idle, and are caught here.
        """
        stale: list[_Connection] = []
        found = None
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if _has_input(connection.sock):
                    stale.append(connection)
                else:
                    found = connection
                    break
        for connection in stale:
            connection.close()
        return found

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("introspection deadline passed")
    return remaining


# --- the client -------------------------------------------------------------------------------


class SsoClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 3.0,
        ca_bundle: str | None = None,
        cache_seconds: int = 0,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._http = _Exchanger(
            self.base_url + "/v1/introspect",
            {
                "User-Agent": "contact-sync-contacts",
                "Authorization": f"Basic {basic}",
                "Accept": "application/json",
                "Accept-Encoding": "identity",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            ca_bundle,
        )
        # The SSO's own readiness (its Redis): a malformed token is answered without Redis, so
        # the introspection probe alone would call the SSO ready while no token can be checked.
        self._readiness = _Exchanger(
            self.base_url + "/readyz",
            {"User-Agent": "contact-sync-contacts", "Accept-Encoding": "identity"},
            ca_bundle,
            method="GET",
        )
        self._cache: OrderedDict[str, tuple[Identity, float]] = OrderedDict()
        self._lock = threading.Lock()

    def introspect(self, token: str) -> Identity | None:
        """The account of an active token, None when inactive; SsoUnavailable on failure."""
        key = None
        if self.cache_seconds > 0:
            key = hashlib.sha256(token.encode()).hexdigest() + "|" + self.base_url
            cached = self._cached(key)
            if cached is not None:
                return cached
        body = urllib.parse.urlencode({"token": token}).encode("ascii")
        try:
            answer = self._http.send(body, self.timeout)
        except TimeoutError:
            raise SsoUnavailable("SSO timed out") from None
        except _Broken as exc:
            raise SsoUnavailable(f"SSO unreachable: {exc.reason}") from None
        except (OSError, ValueError) as exc:  # refused, reset, TLS failures, bad bytes
            raise SsoUnavailable(f"SSO unreachable: {exc.__class__.__name__}") from None
        if answer.status != 200:
            if answer.status == 401:
                log.error("the SSO service rejected our introspection client credentials")
            raise SsoUnavailable(f"SSO answered {answer.status}")
        try:
            parsed = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            raise SsoUnavailable("SSO answered a body that is not JSON") from None
        identity = _identity(parsed)
        if identity is not None and key is not None:
            self._remember(key, identity)
        return identity

    def healthy(self) -> None:
        """Raise unless the SSO answers an introspection made with our client credentials, so
        a wrong CONTACTS_SSO_CLIENT_SECRET shows in /readyz rather than only as 503s."""
        # A malformed token is answered from its shape alone, without the SSO's Redis.
        if self.introspect(_READINESS_PROBE_TOKEN) is not None:
            raise SsoUnavailable("the SSO called the readiness probe token active")
        try:
            answer = self._readiness.send(b"", self.timeout)
        except TimeoutError:
            raise SsoUnavailable("SSO timed out") from None
        except _Broken as exc:
            raise SsoUnavailable(f"SSO unreachable: {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise SsoUnavailable(f"SSO unreachable: {exc.__class__.__name__}") from None
        if answer.status != 200:
            raise SsoUnavailable(f"the SSO's /readyz answered {answer.status}")

    def close(self) -> None:
        """Close the idle pooled connections."""
        self._http.close()
        self._readiness.close()

    def _cached(self, key: str) -> Identity | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            identity, expires_at = entry
            if time.time() >= expires_at:
                del self._cache[key]
                return None
            return identity

    def _remember(self, key: str, identity: Identity) -> None:
        expires_at = time.time() + self.cache_seconds
        if identity.exp is not None:
            expires_at = min(expires_at, identity.exp)
        with self._lock:
            self._cache[key] = (identity, expires_at)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_LIMIT:
                self._cache.popitem(last=False)
