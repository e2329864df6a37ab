"""A stand-in for the SSO service's introspection endpoint, over real HTTP on loopback.

The real SSO only ever answers well-formed identities; this one answers whatever a test sets
(`answer`), so the Contacts service can be shown to survive an SSO that misbehaves: garbage in
`phone_numbers`, identifiers outside their character class. Standard library only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class IntrospectionStandIn:
    def __init__(self):
        self.answer: object = {"active": False}
        self.requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def active(self, cloud_id: str, username: str, phone_numbers: object = (), **extra) -> None:
        """Answer every introspection with this active identity (phone_numbers as given)."""
        numbers = list(phone_numbers) if isinstance(phone_numbers, tuple) else phone_numbers
        body = {
            "active": True,
            "cloud_id": cloud_id,
            "username": username,
            "phone_numbers": numbers,
            "sip_uri": None,
            "iat": 1,
            "exp": 4_102_444_800,
        }
        with self._lock:
            self.answer = {**body, **extra}

    def start(self) -> IntrospectionStandIn:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(stand_in: IntrospectionStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path != "/v1/introspect":
                return self._send(404, b'{"error": "not_found"}')
            with stand_in._lock:
                stand_in.requests += 1
                body = json.dumps(stand_in.answer).encode()
            self._send(200, body)

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
