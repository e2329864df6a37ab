"""Requests written by hand on a socket, for what HTTP clients will not send: a body that stops
halfway or never comes, a connection half-closed inside a chunk."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def send_head(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    """A connection to `url` that has sent the request line, Host, `headers` and the first
    bytes of a body; the caller sends the rest (or not) and closes it."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock.sendall((head + "\r\n").encode() + body)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer
