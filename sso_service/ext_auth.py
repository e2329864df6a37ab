"""The provider's External Authentication web service: build the call from its definition,
make it, and read the verified phone numbers and SIP URI from the answer.

Credentials only ever travel inside the outgoing request: nothing here logs a URL, a body or
an exception message from requests (those contain the URL, hence possibly the password).
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from defusedxml import ElementTree as SafeET
from prometheus_client import Counter, Histogram

from shared import phone
from sso_service.upstream import Request, UpstreamClient, UpstreamFailure

log = logging.getLogger(__name__)

EXT_AUTH_CALLS = Counter(
    "sso_ext_auth_requests_total",
    "Calls to providers' External Authentication services, by outcome.",
    ["outcome"],
)
EXT_AUTH_LATENCY = Histogram(
    "sso_ext_auth_duration_seconds",
    "Time for one External Authentication call (Digest round trip included), by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 30.0  # a definition cannot hold a worker longer than this
MAX_RESPONSE_BYTES = 1 << 20
MAX_NUMBERS = 1000
MAX_SIP_URI = 512
FORM = "application/x-www-form-urlencoded"

PLACEHOLDER = re.compile(
    r"%(username|password|host|cloud_id|account\[username\]|account\[password\]|account\[host\])%"
)
_ALIASES = {
    "account[username]": "username",
    "account[password]": "password",
    "account[host]": "host",
}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


class InvalidCredentials(Exception):
    """Ext-auth answered 4xx."""


class UpstreamError(Exception):
    """Unreachable, timed out, 5xx/3xx, an unparseable 2xx body, or an unusable definition.
    `reached`: the call may have reached the provider (its outcome is then unknown)."""

    def __init__(self, reason: str, reached: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.reached = reached


class UnsafeValue(Exception):
    """A credential would break the request (CR/LF in a header, a control character XML
    cannot carry in an XML body); the login is a 400."""

    def __init__(self, field_name: str, problem: str = "Must not contain CR or LF."):
        super().__init__(field_name)
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    cloud_id: str
    host: str = ""

    def value(self, name: str) -> str:
        return getattr(self, _ALIASES.get(name, name)) or ""


@dataclass(frozen=True)
class Definition:
    url: str
    method: str = "GET"
    post_data: str | None = None
    content_type: str = FORM
    headers: tuple[tuple[str, str], ...] = ()
    auth_username: str | None = None
    auth_password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Definition:
        """Apply the Acrobits defaults: POST when postData is set, else GET; form body; 10 s."""
        post_data = data.get("postData")
        method = (data.get("method") or ("POST" if post_data is not None else "GET")).upper()
        timeout = data.get("timeout") or DEFAULT_TIMEOUT
        return cls(
            url=data["url"].strip(),
            method=method,
            post_data=post_data,
            content_type=(data.get("contentType") or FORM).strip(),
            headers=parse_headers(data.get("headers")),
            auth_username=data.get("authUsername") or None,
            auth_password=data.get("authPassword"),
            timeout=min(float(timeout), MAX_TIMEOUT),
        )


@dataclass(frozen=True)
class AuthResult:
    phone_numbers: list[str]
    sip_uri: str | None


def parse_headers(raw: Any) -> tuple[tuple[str, str], ...]:
    """`Name: value` lines (also a list of lines or a mapping) → ((name, template), ...)."""
    if not raw:
        return ()
    if isinstance(raw, dict):
        items = [(str(k), str(v)) for k, v in raw.items()]
    else:
        lines = raw if isinstance(raw, list) else str(raw).splitlines()
        items = []
        for line in lines:
            name, sep, value = str(line).partition(":")
            if sep:
                items.append((name, value))
    headers = []
    for name, value in items:
        name = name.strip()
        if _HEADER_NAME.match(name):
            headers.append((name, value.strip()))
    return tuple(headers)


# --- placeholders --------------------------------------------------------------------------


def escape_url(value: str) -> str:
    quoted = urllib.parse.quote(value, safe="")
    if quoted and not quoted.strip("."):
        # "." and ".." would be path segments of their own, which URL handling resolves (a
        # username ".." in /users/%username%/auth would reach /auth); %2E is the same
        # character to the provider, and no dot segment.
        return quoted.replace(".", "%2E")
    return quoted


def escape_json(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


# Character references for the whitespace an XML parser would otherwise normalise (CR LF to
# LF in text, CR LF TAB to a space in attribute values): the provider reads what was typed.
_XML_ENTITIES = {'"': "&quot;", "'": "&apos;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
# Characters XML 1.0 cannot carry at all, not even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape_xml(value: str) -> str:
    return _xml_escape(value, _XML_ENTITIES)


def escape_raw(value: str) -> str:
    return value


def body_escaper(content_type: str):
    """How values are escaped in a body of this content type: JSON, XML or form encoding."""
    mime = content_type.split(";")[0].strip().lower()
    if mime.endswith("json"):
        return escape_json
    if mime.endswith("xml"):
        return escape_xml
    return escape_url


def substitute(template: str, credentials: Credentials, escape) -> str:
    """Replace every placeholder in one pass (a value containing `%password%` stays literal)."""
    return PLACEHOLDER.sub(lambda m: escape(credentials.value(m.group(1))), template)


# --- the request ---------------------------------------------------------------------------


@dataclass
class PreparedCall:
    method: str
    url: str
    headers: dict[str, bytes]
    body: bytes | None
    auth: tuple[str, str] | None = field(repr=False)
    timeout: float


def build_call(definition: Definition, credentials: Credentials, allow_insecure_http: bool):
    """The outgoing request for these credentials; UnsafeValue or UpstreamError if impossible."""
    url = substitute(definition.url, credentials, escape_url)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    allowed = ("https", "http") if allow_insecure_http else ("https",)
    if scheme not in allowed:
        raise UpstreamError("insecure_url" if scheme == "http" else "bad_url")
    headers: dict[str, bytes] = {}
    body = None
    if definition.post_data is not None:
        escape = body_escaper(definition.content_type)
        if escape is escape_xml:
            for match in PLACEHOLDER.finditer(definition.post_data):
                if _NOT_XML.search(credentials.value(match.group(1))):
                    raise UnsafeValue(
                        _ALIASES.get(match.group(1), match.group(1)),
                        "Must not contain control characters.",
                    )
        body = substitute(definition.post_data, credentials, escape).encode()
        headers["Content-Type"] = definition.content_type.encode()
    for name, template in definition.headers:
        for match in PLACEHOLDER.finditer(template):
            value = credentials.value(match.group(1))
            if "\r" in value or "\n" in value:
                raise UnsafeValue(_ALIASES.get(match.group(1), match.group(1)))
        # Sent as UTF-8 bytes: http.client would otherwise reject non-Latin-1 values.
        headers[name] = substitute(template, credentials, escape_raw).encode()
    auth = None
    if definition.auth_username is not None:
        auth = (definition.auth_username, definition.auth_password or "")
    return PreparedCall(definition.method, url, headers, body, auth, definition.timeout)


# --- the answer ----------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _numbers_from_json(data: dict) -> list[str]:
    for key in ("phoneNumbers", "phone_numbers", "numbers"):
        if key in data:
            items = data[key]
            break
    else:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        return []
    numbers = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("number")
        if isinstance(item, str):
            numbers.append(str(item))  # a plain str, also for _Digits
    return numbers


class _Digits(str):
    """An integer of an ext-auth answer, as its digits: a phone number may be sent as one, a
    SIP URI may not (it stays a str subclass so the numbers take it like any string)."""


def _parse_json(body: bytes) -> tuple[list[str], Any]:
    # Integers stay the digits they were sent as: int() refuses more than 4,300 digits, and
    # one absurd number must not fail a login (it is dropped with the other unusable ones).
    data = json.loads(body, parse_int=_Digits)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return _numbers_from_json(data), data.get("sipUri", data.get("sip_uri"))


def _parse_xml(body: bytes) -> tuple[list[str], Any]:
    root = SafeET.fromstring(body)
    numbers: list[str] = []
    sip_uri = None
    for element in root.iter():
        name = _local(element.tag)
        if name in ("phoneNumbers", "numbers"):
            numbers.extend(
                (child.text or "")
                for child in element
                if _local(child.tag) in ("phoneNumber", "number")
            )
        elif name == "sipUri" and sip_uri is None:
            sip_uri = element.text
    return numbers, sip_uri


def normalise_numbers(raw: list[str], region: str | None) -> list[str]:
    """E.164 forms of the possible numbers, in order, without duplicates; others dropped (the
    rule both services share, shared/phone.py)."""
    return phone.normalise_numbers(raw, region, MAX_NUMBERS)


def parse_answer(content_type: str | None, body: bytes, region: str | None) -> AuthResult:
    """Numbers and SIP URI from a 2xx body (JSON by Content-Type, XML otherwise)."""
    if not body.strip():
        return AuthResult([], None)
    mime = (content_type or "").split(";")[0].strip().lower()
    try:
        if mime.endswith("json"):
            numbers, sip_uri = _parse_json(body)
        else:
            numbers, sip_uri = _parse_xml(body)
    except Exception:
        # json/XML/defusedxml errors alike: the provider sent something we cannot read.
        raise UpstreamError("unparseable") from None
    sip_uri = (sip_uri.strip() or None) if type(sip_uri) is str else None
    if sip_uri is not None and len(sip_uri) > MAX_SIP_URI:
        sip_uri = None
    return AuthResult(normalise_numbers(numbers, region), sip_uri)


# --- the client ----------------------------------------------------------------------------


class ExtAuthClient:
    """Calls ext-auth: one isolated exchange per login (see sso_service.upstream)."""

    def __init__(
        self,
        allow_insecure_http: bool = False,
        default_region: str | None = None,
        upstream: UpstreamClient | None = None,
    ):
        self.allow_insecure_http = allow_insecure_http
        self.default_region = default_region
        self.upstream = upstream or UpstreamClient()

    def authenticate(self, definition: Definition, credentials: Credentials) -> AuthResult:
        """AuthResult on 2xx; InvalidCredentials on 4xx; UpstreamError otherwise."""
        started = time.perf_counter()
        outcome = "upstream_error"
        try:
            call = build_call(definition, credentials, self.allow_insecure_http)
            result = self._call(call)
            outcome = "success"
            return result
        except InvalidCredentials:
            outcome = "invalid_credentials"
            raise
        except UnsafeValue:
            outcome = "unsafe_value"
            raise
        except UpstreamError as exc:
            outcome = f"upstream_{exc.reason}"
            log.warning("ext-auth for cloud %s failed: %s", credentials.cloud_id, exc.reason)
            raise
        finally:
            EXT_AUTH_CALLS.labels(outcome).inc()
            EXT_AUTH_LATENCY.labels(outcome).observe(time.perf_counter() - started)

    def _call(self, call: PreparedCall) -> AuthResult:
        request = Request(call.method, call.url, call.headers, call.body, call.auth)
        try:
            answer = self.upstream.exchange(request, call.timeout, max_body=MAX_RESPONSE_BYTES)
        except UpstreamFailure as exc:
            raise UpstreamError(exc.reason, exc.reached) from None
        if 400 <= answer.status < 500:
            raise InvalidCredentials()
        if not 200 <= answer.status < 300:
            raise UpstreamError(f"status_{answer.status // 100}xx", reached=True)
        try:
            return parse_answer(
                answer.headers.get("Content-Type"), answer.body, self.default_region
            )
        except UpstreamError as exc:
            raise UpstreamError(exc.reason, reached=True) from None
