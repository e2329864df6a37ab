"""A real HTTP server on loopback whose answers a test scripts, for unit tests of outbound
clients: each request is handed to `server.script(handler)`, which answers through the
BaseHTTPRequestHandler it gets (or writes raw bytes to `handler.wfile`, slowly if it likes).
Every request is recorded in `server.requests`."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes


def reply(handler, status=200, body=b"", content_type="application/json", **headers) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        for one in value if isinstance(value, list) else [value]:
            handler.send_header(name.replace("_", "-"), one)
    handler.end_headers()
    handler.wfile.write(body)


def trickle(handler, data: bytes, every: float, limit: float = 30.0) -> None:
    """Write `data` one byte at a time, `every` seconds apart, until done, the client goes
    away or `limit` seconds have passed."""
    stop = time.monotonic() + limit
    with contextlib.suppress(OSError):
        for byte in data:
            if time.monotonic() > stop:
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(every)


class ScriptedServer:
    def __init__(self):
        self.requests: list[Seen] = []
        self.script: Callable = lambda handler: reply(handler, 200, b"{}")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str = "/ext") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    Seen(self.command, self.path, dict(self.headers.items()), body)
                )
                server.script(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        return Handler
