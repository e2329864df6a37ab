"""A stand-in for a provider's portal and External Authentication service.

Used by `make run` (demo users in Cloud ID DEMO) and by the test suite, which drives its
behaviours (slow, 5xx, garbage, Digest) and reads back what it received. Standard library only,
so it runs anywhere the services run.

    python deploy/demo/demo_provider.py --port 8000

Endpoints:
    GET  /portal/<cloud_id>              External Authentication definition, or 404
    ANY  /ext-auth/<cloud_id>            checks username/password from the query string, a form,
                                         JSON or XML body; 200 with numbers, 401 when wrong
    ANY  /ext-auth-digest/<cloud_id>     the same behind HTTP Digest (digest_user/digest_pass)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


@dataclass
class User:
    password: str
    phone_numbers: list = field(default_factory=list)
    sip_uri: str | None = None


@dataclass
class Behaviour:
    """How an endpoint misbehaves: ok, slow (sleep `delay` then answer), status (answer
    `status` with `body`), garbage (200 with an unparseable body), close (drop the connection),
    trickle (a 200 whose body arrives one byte every `delay` seconds), trickle_close (the same
    without Content-Length, ending with the connection), trickle_head (the status line and
    headers arrive that way), huge (a 200 of `size` bytes)."""

    mode: str = "ok"
    delay: float = 0.0
    status: int = 500
    body: str = "oops"
    content_type: str = "text/plain"
    size: int = 0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict
    body: bytes


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class DemoProvider:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, advertise_host: str | None = None):
        self.users: dict[tuple[str, str], User] = {}
        self.definitions: dict[str, dict] = {}
        self.response_format: dict[str, str] = {}  # cloud_id -> "json" | "xml" | "empty"
        self.portal_behaviour = Behaviour()
        self.auth_behaviour: dict[str, Behaviour] = {}
        self.portal_hits: Counter = Counter()
        self.auth_requests: list[RecordedRequest] = []
        self.digest_user = "sso"
        self.digest_pass = "digest-secret"
        # Extra bytes in the Digest 401 challenge's body, and whether it sets a cookie.
        self.digest_challenge_padding = 0
        # Clouds whose ext-auth behaves like a session-keeping PHP/Java backend: a good login
        # gets `Set-Cookie: SESSIONID=...`, and any later request carrying that cookie is
        # accepted as that user whatever credentials it carries.
        self.cookie_sessions: set[str] = set()
        self.sessions: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self.host = advertise_host or host
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def portal_url(self) -> str:
        """The SSO_PORTAL_URL template for this provider."""
        return self.url + "/portal/{cloud_id}"

    def add_user(self, cloud_id, username, password, phone_numbers=(), sip_uri=None) -> None:
        with self._lock:
            self.users[(cloud_id, username)] = User(password, list(phone_numbers), sip_uri)
            self.definitions.setdefault(cloud_id, self.default_definition(cloud_id))

    def default_definition(self, cloud_id: str) -> dict:
        return {
            "url": f"{self.url}/ext-auth/{cloud_id}?username=%username%&password=%password%",
            "method": "GET",
        }

    def reset(self) -> None:
        """Forget recorded traffic and misbehaviour (users and definitions stay)."""
        with self._lock:
            self.portal_behaviour = Behaviour()
            self.auth_behaviour.clear()
            self.portal_hits.clear()
            self.auth_requests.clear()
            self.digest_challenge_padding = 0
            self.cookie_sessions.clear()
            self.sessions.clear()

    def start(self) -> DemoProvider:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the answers -------------------------------------------------------------------------

    def check_credentials(self, cloud_id: str, username: str, password: str) -> User | None:
        user = self.users.get((cloud_id, username))
        if user and secrets.compare_digest(user.password.encode(), password.encode()):
            return user
        return None

    def render(self, cloud_id: str, user: User) -> tuple[str, bytes]:
        fmt = self.response_format.get(cloud_id, "json")
        if fmt == "empty":
            return "application/json", b""
        if fmt == "xml":
            numbers = "".join(f"<phoneNumber>{escape(n)}</phoneNumber>" for n in user.phone_numbers)
            sip = f"<sipUri>{escape(user.sip_uri)}</sipUri>" if user.sip_uri else ""
            xml = f"<account><phoneNumbers>{numbers}</phoneNumbers>{sip}</account>"
            return "application/xml", xml.encode()
        body = {"phoneNumbers": user.phone_numbers}
        if user.sip_uri:
            body["sipUri"] = user.sip_uri
        return "application/json", json.dumps(body).encode()


def _credentials(query: dict, content_type: str, body: bytes) -> tuple[str, str]:
    def first(mapping, key):
        value = mapping.get(key)
        return value[0] if isinstance(value, list) else value

    username, password = first(query, "username"), first(query, "password")
    if username is not None and password is not None:
        return username, password
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if ctype.endswith("json"):
        data = json.loads(text or "{}")
        data = data.get("account", data)
        return str(data.get("username", "")), str(data.get("password", ""))
    if ctype.endswith("xml"):
        root = ET.fromstring(text)  # noqa: S314
        return root.findtext(".//username") or "", root.findtext(".//password") or ""
    form = urllib.parse.parse_qs(text, keep_blank_values=True)
    return first(form, "username") or "", first(form, "password") or ""


def _make_handler(provider: DemoProvider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for
        # the delayed ACK (~40 ms) on every request.
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet: tests read provider.auth_requests instead
            pass

        def _send(self, status: int, body: bytes = b"", ctype: str = "application/json", **hdr):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in hdr.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _misbehave(self, behaviour: Behaviour) -> bool:
            """Apply a non-ok behaviour; True when the answer has been given."""
            if behaviour.mode == "slow":
                time.sleep(behaviour.delay)
                return False
            if behaviour.mode == "status":
                self._send(behaviour.status, behaviour.body.encode(), behaviour.content_type)
                return True
            if behaviour.mode == "garbage":
                self._send(200, b"\x00<<not json or xml{{", behaviour.content_type)
                return True
            if behaviour.mode == "close":
                self.close_connection = True
                self.connection.close()
                return True
            if behaviour.mode in ("trickle", "trickle_head", "trickle_close"):
                body = b'{"phoneNumbers": []}' + b" " * 200
                # trickle_close: an HTTP/1.0-style answer that ends with the connection
                length = (
                    "Connection: close"
                    if behaviour.mode == "trickle_close"
                    else (f"Content-Length: {len(body)}")
                )
                head = (
                    f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
                ).encode()
                slow, fast = (head, body) if behaviour.mode == "trickle_head" else (body, head)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    if behaviour.mode != "trickle_head":
                        self.wfile.write(fast)
                    for byte in slow:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(behaviour.delay)
                    if behaviour.mode == "trickle_head":
                        self.wfile.write(fast)
                return True
            if behaviour.mode == "huge":
                self._send(200, b" " * behaviour.size, "application/xml")
                return True
            return False

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self):
            parsed = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/")]
            body = self._read_body()
            if len(parts) == 2 and parts[0] == "portal" and self.command == "GET":
                return self._portal(parts[1])
            if len(parts) == 2 and parts[0] in ("ext-auth", "ext-auth-digest"):
                record = RecordedRequest(
                    self.command, parsed.path, parsed.query, dict(self.headers.items()), body
                )
                with provider._lock:
                    provider.auth_requests.append(record)
                if parts[0] == "ext-auth-digest" and not self._digest_ok():
                    return
                return self._ext_auth(parts[1], parsed.query, body)
            self._send(404, b'{"error": "not_found"}')

        def _portal(self, cloud_id: str):
            with provider._lock:
                provider.portal_hits[cloud_id] += 1
            if self._misbehave(provider.portal_behaviour):
                return
            definition = provider.definitions.get(cloud_id)
            if definition is None:
                return self._send(404, b'{"error": "unknown cloud"}')
            self._send(200, json.dumps(definition).encode())

        def _ext_auth(self, cloud_id: str, query: str, body: bytes):
            if self._misbehave(provider.auth_behaviour.get(cloud_id, Behaviour())):
                return
            try:
                username, password = _credentials(
                    urllib.parse.parse_qs(query, keep_blank_values=True),
                    self.headers.get("Content-Type", ""),
                    body,
                )
            except (ValueError, ET.ParseError):
                return self._send(400, b'{"error": "bad request"}')
            user = provider.check_credentials(cloud_id, username, password)
            headers = {}
            if cloud_id in provider.cookie_sessions:
                session = provider.sessions.get(self._cookie("SESSIONID"))
                if session is not None and session[0] == cloud_id:
                    # The backend trusts its session over the credentials sent.
                    user = provider.users.get(session)
                elif user is not None:
                    session_id = secrets.token_hex(16)
                    provider.sessions[session_id] = (cloud_id, username)
                    headers["Set_Cookie"] = f"SESSIONID={session_id}; Path=/; HttpOnly"
            if user is None:
                return self._send(401, b'{"error": "invalid credentials"}')
            ctype, payload = provider.render(cloud_id, user)
            self._send(200, payload, ctype, **headers)

        def _cookie(self, name: str) -> str | None:
            for part in self.headers.get("Cookie", "").split(";"):
                key, _, value = part.strip().partition("=")
                if key == name:
                    return value
            return None

        def _digest_ok(self) -> bool:
            realm, nonce = "demo-provider", "n" + secrets.token_hex(8)
            header = self.headers.get("Authorization", "")
            if header.startswith("Digest "):
                fields = dict(
                    (k.strip(), v.strip().strip('"'))
                    for k, _, v in (p.partition("=") for p in header[7:].split(","))
                )
                ha1 = _md5(
                    f"{provider.digest_user}:{fields.get('realm', '')}:{provider.digest_pass}"
                )
                ha2 = _md5(f"{self.command}:{fields.get('uri', '')}")
                if fields.get("qop"):
                    expected = _md5(
                        f"{ha1}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:"
                        f"{fields.get('qop')}:{ha2}"
                    )
                else:
                    expected = _md5(f"{ha1}:{fields.get('nonce')}:{ha2}")
                if fields.get("username") == provider.digest_user and secrets.compare_digest(
                    expected, fields.get("response", "")
                ):
                    return True
            challenge = f'Digest realm="{realm}", nonce="{nonce}", qop="auth", algorithm=MD5'
            body = b'{"error": "digest required"}' + b" " * provider.digest_challenge_padding
            self._send(
                401,
                body,
                WWW_Authenticate=challenge,
                Set_Cookie=f"DIGESTSESSION={nonce}; Path=/",
            )
            return False

        do_GET = do_POST = do_PUT = _handle

    return Handler


DEMO_USERS = [
    # cloud, username, password, numbers, SIP URI
    ("DEMO", "alice", "alice-secret", ["+15551230001"], "sip:alice@demo.example"),
    ("DEMO", "bob", "bob-secret", ["+15551230002", "+442071838750"], "sip:bob@demo.example"),
    ("DEMO", "carol", "carol-secret", ["+15551230003"], "sip:carol@demo.example"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    provider = DemoProvider(args.host, args.port)
    for user in DEMO_USERS:
        provider.add_user(*user)
    print(f"demo provider: portal {provider.portal_url}", flush=True)
    for cloud, username, password, numbers, _ in DEMO_USERS:
        print(f"  user {cloud}/{username} password {password} numbers {numbers}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        provider._server.serve_forever()


if __name__ == "__main__":
    main()
