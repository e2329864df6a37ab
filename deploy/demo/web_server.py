"""Serve the reference web client (deploy/demo/web/) with its config and a strict CSP.

    python deploy/demo/web_server.py --port 8003 \
        --sso-url http://127.0.0.1:8001 --contacts-url http://127.0.0.1:8002 \
        [--certfile server.pem --keyfile server.key]

The page reads the service URLs from /config.json, which this server generates from its
arguments (nothing is written to disk), so the same files work against any deployment. The
Content-Security-Policy lets the page run only its own scripts and styles and talk only to
itself and the two services. Standard library only, like demo_provider.py: a production site
serves the same files from any web server with the same headers and its own config.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import posixpath
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent / "web"

# Only these kinds of file are served; anything else under web/ (or outside it) is a 404.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(sso_url: str, contacts_url: str) -> str:
    connect = " ".join(dict.fromkeys(["'self'", origin_of(sso_url), origin_of(contacts_url)]))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def make_handler(config: dict, csp: str):
    config_body = json.dumps(config, indent=2).encode() + b"\n"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "contact-sync-web"
        sys_version = ""
        timeout = 30  # seconds a connection may stay idle or silent

        def log_message(self, fmt, *args):
            sys.stderr.write(f"web: {self.address_string()} {fmt % args}\n")

        def log_request(self, code="-", size="-"):
            # Successful fetches of static files are noise in `make run`; failures are not.
            if isinstance(code, int) and code < 400:
                return
            super().log_request(code, size)

        def _send(self, status: int, body: bytes, ctype: str, head_only: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", csp)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            # Small files that change with each deployment: revalidate every time.
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _resolve(self) -> Path | None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            path = posixpath.normpath(path)
            if "\x00" in path:
                return None  # no file has one; Path would raise on it
            if path in ("/", "/."):
                path = "/index.html"
            candidate = (WEB_ROOT / path.lstrip("/")).resolve()
            if not candidate.is_relative_to(WEB_ROOT) or not candidate.is_file():
                return None
            if candidate.suffix not in CONTENT_TYPES:
                return None
            return candidate

        def _get(self, head_only: bool) -> None:
            if urllib.parse.urlsplit(self.path).path == "/config.json":
                return self._send(200, config_body, "application/json", head_only)
            target = self._resolve()
            if target is None:
                body = b'{"error": "not_found", "message": "No such file."}'
                return self._send(404, body, "application/json", head_only)
            self._send(200, target.read_bytes(), CONTENT_TYPES[target.suffix], head_only)

        def do_GET(self):
            self._get(head_only=False)

        def do_HEAD(self):
            self._get(head_only=True)

        def _not_allowed(self):
            body = b'{"error": "method_not_allowed", "message": "Only GET and HEAD."}'
            self._send(405, body, "application/json")

        do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that drops the connection or fails the TLS handshake is not our error.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class WebServer:
    def __init__(
        self,
        sso_url: str,
        contacts_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
    ):
        config = {"ssoUrl": sso_url.rstrip("/"), "contactsUrl": contacts_url.rstrip("/")}
        handler = make_handler(config, content_security_policy(sso_url, contacts_url))
        self._server = _Server((host, port), handler)
        self.scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            # The handshake happens on the first read, in the request's own thread: a client
            # that connects and stays silent cannot hold up accept().
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self.host = host
        self.port = self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            self._server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--sso-url", required=True, help="the SSO service's base URL")
    parser.add_argument("--contacts-url", required=True, help="the Contacts service's base URL")
    parser.add_argument("--certfile", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--keyfile", help="PEM private key for --certfile")
    args = parser.parse_args()
    server = WebServer(
        args.sso_url, args.contacts_url, args.host, args.port, args.certfile, args.keyfile
    )
    print(f"web client: {server.url}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
