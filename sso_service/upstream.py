"""HTTP exchanges with the provider's side (portal and External Authentication).

Every login is one exchange that shares nothing with any other:

- no cookie jar: a `Set-Cookie` from a provider is never stored nor sent back, so a backend
  that keeps sessions cannot let a later login ride on an earlier one's cookie (urllib3 has no
  cookie handling at all, which is why this module uses it rather than a requests.Session);
- one deadline for the whole exchange (name resolution, connect, TLS, send, the Digest round
  trip and reading the full answer). Socket timeouts bound each read only, so a watchdog timer
  shuts the socket down when the deadline passes and a trickling answer ends there;
- bounded bodies: nothing larger than `max_body` is read, 401 challenges included;
- no redirects and no retries: a login must not reach a provider's service twice;
- optionally, a guard against addresses that are not public (SSRF): the address checked is
  the address connected to, so a DNS answer cannot change between check and use.

A fresh connection per request keeps each exchange's socket under its own deadline; logins
are rare (a token lives for months), so the extra handshake is worth the isolation.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import certifi
import urllib3
from requests.auth import HTTPDigestAuth
from requests.utils import parse_dict_header
from urllib3.util import parse_url

from shared.resolve import (
    LookupBacklog,
    Resolver,
    Unresolved,
    resolve_within,
    system_resolver,
)

MAX_BODY_BYTES = 1 << 20
_CHUNK = 16384


class UpstreamFailure(Exception):
    """The exchange gave no usable answer: `reason` is timeout, unreachable, too_large,
    bad_url, forbidden_address or bad_challenge. `reached` says whether anything may have
    reached the provider (a connection was made), which the login limit needs to know."""

    def __init__(self, reason: str, reached: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.reached = reached


@dataclass(frozen=True)
class Answer:
    status: int
    headers: urllib3.HTTPHeaderDict
    body: bytes


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, bytes | str] = field(default_factory=dict)
    body: bytes | None = None
    digest: tuple[str, str] | None = field(default=None, repr=False)


# IPv6 ranges that carry an IPv4 address, or reach one through a translator, and that
# `is_global` alone gets wrong: NAT64's well-known prefix counts as global, yet
# 64:ff9b::a00:1 reaches 10.0.0.1. These are judged by the IPv4 address they carry.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Refused whatever they carry: local-use NAT64, IPv4-compatible (deprecated), SIIT, site-local
# (deprecated) and Teredo.
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in ("64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96", "fec0::/10", "2001::/32")
)


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses; an IPv6 address that embeds an IPv4 one
    (mapped, NAT64, 6to4) is judged by the IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
    return ip.is_global and not ip.is_multicast


# One thread per lookup (shared.resolve): a provider whose DNS hangs must not time out every
# other cloud's logins. The cap only bounds threads left behind by lookups that are hanging.
MAX_PENDING_LOOKUPS = 256
_pending_lookups = threading.BoundedSemaphore(MAX_PENDING_LOOKUPS)


class _Pinned:
    """Mixin: connect to one already-checked address instead of resolving `host` again, while
    `host` stays the name used for the Host header, SNI and certificate checks.

    `watched` is the socket the watchdog shuts down: the plain one while connecting and during
    the TLS handshake, the TLS one after. It is kept here because http.client hands the socket
    over to the response (and sets `sock` to None) when the answer will close the connection.
    """

    pinned: tuple[int, tuple]
    watched: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        family, sockaddr = self.pinned
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.watched = sock
        try:
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    def connect(self) -> None:
        super().connect()
        self.watched = self.sock
        # Interim answers (103 Early Hints, ...) are skipped like 100 Continue.
        self.response_class = _FinalResponse


class _PinnedHTTPConnection(_Pinned, urllib3.connection.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, urllib3.connection.HTTPSConnection):
    pass


class UpstreamClient:
    """Makes exchanges; one instance per process is enough (it holds no per-login state)."""

    def __init__(
        self,
        *,
        user_agent: str = "contact-sync-sso",
        ca_bundle: str | None = None,
        allow_private: bool = False,
        resolver: Resolver = system_resolver,
    ):
        self.user_agent = user_agent
        self.ca_bundle = ca_bundle or certifi.where()
        self.allow_private = allow_private
        self.resolver = resolver

    def exchange(
        self,
        request: Request,
        timeout: float,
        *,
        max_body: int = MAX_BODY_BYTES,
        guard: bool = True,
    ) -> Answer:
        """Send `request` and read the whole answer within `timeout` seconds, completing an
        HTTP Digest challenge when `request.digest` is set; UpstreamFailure otherwise."""
        deadline = time.monotonic() + timeout
        answer = self._once(request, None, deadline, max_body, guard)
        if request.digest and answer.status == 401:
            challenge = _digest_challenge(answer.headers)
            if challenge is not None:
                authorization = _digest_authorization(request, challenge)
                answer = self._once(request, authorization, deadline, max_body, guard)
        return answer

    # --- one request ---------------------------------------------------------------------

    def _once(self, request, authorization, deadline, max_body, guard) -> Answer:
        try:
            url = parse_url(request.url)
        except ValueError:  # urllib3's LocationParseError: a port out of range, a lone `[`
            raise UpstreamFailure("bad_url") from None
        scheme = (url.scheme or "").lower()
        if scheme not in ("http", "https") or not url.host:
            raise UpstreamFailure("bad_url")
        port = url.port or (443 if scheme == "https" else 80)
        host = url.host.strip("[]")
        address = self._address(host, port, deadline, guard)
        remaining = _remaining(deadline)
        if scheme == "https":
            conn = _PinnedHTTPSConnection(
                url.host,
                port,
                timeout=remaining,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self.ca_bundle,
            )
        else:
            conn = _PinnedHTTPConnection(url.host, port, timeout=remaining)
        conn.pinned = address
        headers = {
            "User-Agent": self.user_agent,
            "Accept-Encoding": "identity",
            "Connection": "close",
            **request.headers,
        }
        if authorization:
            headers["Authorization"] = authorization
        watchdog = threading.Timer(remaining, _shut_down, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        reached, response = False, None
        try:
            conn.connect()
            reached = True
            conn.request(
                request.method,
                url.request_uri,
                body=request.body,
                headers=headers,
                preload_content=False,
                decode_content=False,
            )
            response = conn.getresponse()
            body = _read_bounded(response, max_body, deadline)
            return Answer(response.status, response.headers, body)
        except UpstreamFailure as exc:
            raise UpstreamFailure(exc.reason, reached) from None
        except Exception as exc:  # OSError, urllib3 and http.client errors alike
            # The watchdog's shutdown surfaces as whatever the read was doing (a reset, an
            # incomplete read, an SSL error): the clock says which it was.
            timed_out = isinstance(exc, TimeoutError) or time.monotonic() >= deadline
            raise UpstreamFailure("timeout" if timed_out else "unreachable", reached) from None
        finally:
            watchdog.cancel()
            # The response owns the socket when the answer closes the connection.
            for part in (response, conn):
                with contextlib.suppress(Exception):
                    if part is not None:
                        part.close()

    def _address(self, host: str, port: int, deadline: float, guard: bool) -> tuple[int, tuple]:
        """The (family, sockaddr) to connect to, checked against the private-address guard."""
        try:
            addresses = resolve_within(
                host,
                port,
                _remaining(deadline),
                slots=_pending_lookups,
                resolver=self.resolver,
                thread_name="upstream-dns",
            )
        except (TimeoutError, LookupBacklog):
            raise UpstreamFailure("timeout") from None
        except Unresolved:
            raise UpstreamFailure("unreachable") from None
        # One non-public address in the answer refuses the host: a mixed answer is how a
        # rebinding attacker would slip a private address in.
        checked = guard and not self.allow_private
        if checked and not all(is_public_address(sockaddr[0]) for _, sockaddr in addresses):
            raise UpstreamFailure("forbidden_address")
        return addresses[0]


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise UpstreamFailure("timeout")
    return remaining


def _shut_down(conn: _Pinned) -> None:
    """End a blocked read at once: shutdown wakes a thread waiting in recv, close does not."""
    sock = conn.watched
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_bounded(response: urllib3.BaseHTTPResponse, max_body: int, deadline: float) -> bytes:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_body:
        raise UpstreamFailure("too_large")
    chunks, size = [], 0
    while True:
        chunk = response.read(_CHUNK, decode_content=False)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_body:
            raise UpstreamFailure("too_large")
        if time.monotonic() >= deadline:  # the watchdog's shutdown can race a last read
            raise UpstreamFailure("timeout")
        chunks.append(chunk)


_DIGEST = re.compile(r"(?:^|,)\s*Digest\s+", re.IGNORECASE)


def _digest_challenge(headers: urllib3.HTTPHeaderDict) -> str | None:
    """The parameters of the Digest challenge among the WWW-Authenticate headers (a server may
    offer Basic first, in one header or several), or None."""
    for value in headers.getlist("WWW-Authenticate"):
        match = _DIGEST.search(value)
        if match:
            return value[match.end() :]
    return None


def _digest_authorization(request: Request, challenge: str) -> str:
    """The Authorization header answering a Digest challenge (requests computes it; a fresh
    HTTPDigestAuth per exchange, so no nonce or count is shared between logins)."""
    auth = HTTPDigestAuth(*request.digest)
    auth.init_per_thread_state()
    try:
        auth._thread_local.chal = parse_dict_header(challenge)
        header = auth.build_digest_header(request.method, request.url)
    except (KeyError, ValueError, TypeError):  # no realm or nonce, or nonsense
        raise UpstreamFailure("bad_challenge") from None
    if header is None:  # an algorithm requests does not implement
        raise UpstreamFailure("bad_challenge")
    return header


class _FinalResponse(http.client.HTTPResponse):
    """http.client skips `100 Continue` only; any other interim 1xx answer (103 Early Hints)
    is skipped too, as RFC 9110 asks, so the status judged is the final one. 101 is final."""

    def _read_status(self):
        for _ in range(16):
            version, status, reason = super()._read_status()
            if not (100 < status < 200 and status != 101):
                return version, status, reason
            for _ in range(http.client._MAXHEADERS + 1):
                line = self.fp.readline(http.client._MAXLINE + 1)
                if len(line) > http.client._MAXLINE:
                    raise http.client.LineTooLong("interim header line")
                if line in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("too many interim headers")
        raise http.client.HTTPException("too many interim answers")
