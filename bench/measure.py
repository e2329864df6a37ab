"""What the benchmark measures: wall time and wire bytes per step, peak RSS per process tree."""

from __future__ import annotations

import contextlib
import gzip
import time
from pathlib import Path

import requests


class CountingSession(requests.Session):
    """A keep-alive session that counts the bytes of every request and response it carries,
    as they crossed the wire.

    Bytes are request line + headers + body as sent (compressed when the client sent gzip),
    and status line + headers + body as received: urllib3 counts the body bytes read from the
    socket before any Content-Encoding is decoded. `accept` is the Accept-Encoding the client
    sends: "gzip" as a phone app would, or "identity".
    """

    def __init__(self, accept: str = "gzip"):
        super().__init__()
        self.trust_env = False
        self.headers["Accept-Encoding"] = accept
        self.bytes = 0
        self.requests = 0
        self.hooks["response"].append(self._count)

    def _count(self, response: requests.Response, *args, **kwargs):
        request = response.request
        sent = len(request.method) + len(request.path_url) + 11
        sent += sum(len(k) + len(v) + 4 for k, v in request.headers.items()) + 2
        body = request.body or b""
        sent += len(body.encode() if isinstance(body, str) else body)
        received = 15 + len(response.reason or "")
        received += sum(len(k) + len(v) + 4 for k, v in response.headers.items()) + 2
        # The body as it came (after de-chunking, before gzip decoding), then decoded here:
        # urllib3 does not count the bytes of chunked answers itself.
        raw = response.raw.read(decode_content=False) or b""
        received += len(raw)
        if response.headers.get("Content-Encoding", "").lower() == "gzip" and raw:
            raw = gzip.decompress(raw)
        response._content, response._content_consumed = raw, True
        self.bytes += sent + received
        self.requests += 1

    def request(self, method, url, **kwargs):
        kwargs["stream"] = True  # the hook reads the body itself, undecoded
        return super().request(method, url, **kwargs)


class Step:
    """`with Step(session) as step:` → step.seconds, step.bytes, step.requests afterwards."""

    def __init__(self, *sessions: CountingSession):
        self.sessions = sessions

    def __enter__(self) -> Step:
        self._bytes = sum(s.bytes for s in self.sessions)
        self._requests = sum(s.requests for s in self.sessions)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        self.bytes = sum(s.bytes for s in self.sessions) - self._bytes
        self.requests = sum(s.requests for s in self.sessions) - self._requests
        return False


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    """Fail the run loudly when a server answers something unexpected."""
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.path_url} → {response.status_code}: "
            f"{response.text[:500]}"
        )
    return response


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (gunicorn master + workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            text = Path(f"/proc/{current}/task/{current}/children").read_text()
            todo.extend(int(child) for child in text.split())
    return found


def _status_kib(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def status_mib(pid: int, field: str) -> float:
    """One /proc/<pid>/status figure (VmRSS, VmHWM) in MiB."""
    return _status_kib(pid, field) / 1024


def peak_rss_mib(pid: int) -> float:
    """Sum of VmHWM (peak resident set) over the process tree, in MiB."""
    return sum(_status_kib(p, "VmHWM") for p in process_tree(pid)) / 1024


def reset_peak_rss(pid: int) -> None:
    """Restart the VmHWM high-water marks of the tree (Linux clear_refs 5), per benchmark size."""
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")


def pss_kib(pid: int) -> int:
    """Proportional set size: the process's private pages plus its share of pages it shares
    (a page shared by the master and two workers counts a third in each). Summed over
    processes it is the memory they occupy together; summed RSS counts a shared page once
    per process sharing it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def peak_pss_bound_mib(pid: int) -> float:
    """An upper bound of the process tree's peak summed PSS since the high-water marks were
    reset, read now without sampling (reading smaps while a process allocates stalls it): for
    each process, its PSS now plus how far its RSS once rose above what it is now (VmHWM minus
    VmRSS). A process's PSS minus its RSS only grows while it runs (pages it shared become
    its own when written), so its PSS at any earlier moment was at most that; and the sum of
    each process's own peak is at least the peak of the sum."""
    return (
        sum(
            pss_kib(p) + _status_kib(p, "VmHWM") - _status_kib(p, "VmRSS")
            for p in process_tree(pid)
        )
        / 1024
    )
