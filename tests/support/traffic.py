"""A client loop that keeps talking to the services while a test breaks their dependencies.

`in_parallel(count, work)` releases `count` threads together (races that real clients cause).
`TrafficLoop(step)` calls `step(loop)` over and over in a thread until stopped; the step sends
requests through `loop.call(label, fn, **meta)`, which records when each request started and
ended, its status (0 for a connection error) and error code, so the test can reason about what
was answered during an outage and check, afterwards, that nothing was lost or half-applied.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from tests.support.servers import wait_for


@dataclass
class Record:
    label: str
    started: float
    ended: float
    status: int
    error: str | None
    body_ok: bool
    meta: dict = field(default_factory=dict)


class TrafficLoop:
    def __init__(self, step, pause: float = 0.01, max_iterations: int = 100_000):
        self.step = step
        self.pause = pause
        self.max_iterations = max_iterations
        self.records: list[Record] = []
        self.failure: BaseException | None = None
        self.state: dict = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TrafficLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            for _ in range(self.max_iterations):
                if self._stop.is_set():
                    return
                self.step(self)
                time.sleep(self.pause)
        except BaseException as exc:  # reported by stop()
            self.failure = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.failure is not None:
            raise AssertionError(f"client loop failed: {self.failure!r}") from self.failure

    def call(self, label: str, send, **meta) -> requests.Response | None:
        """Send one request (`send()` returns a Response) and record its outcome."""
        from tests.support.clients import is_error_shape

        started = time.monotonic()
        try:
            response = send()
        except requests.RequestException as exc:
            self._add(Record(label, started, time.monotonic(), 0, type(exc).__name__, True, meta))
            return None
        error, body_ok = None, True
        if response.status_code >= 400:
            body_ok = is_error_shape(response)
            error = response.json().get("error") if body_ok else None
        self._add(
            Record(label, started, time.monotonic(), response.status_code, error, body_ok, meta)
        )
        return response

    def _add(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def snapshot(self, label: str | None = None, after: float = 0.0) -> list[Record]:
        with self._lock:
            return [
                r
                for r in self.records
                if (label is None or r.label == label) and r.started >= after
            ]

    def wait_until(self, label: str, status: int, count: int, after: float = 0.0, timeout=30.0):
        """Wait until `count` requests labelled `label` started after `after` got `status`."""

        def enough():
            if self.failure is not None:
                raise AssertionError(f"client loop failed: {self.failure!r}")
            return sum(1 for r in self.snapshot(label, after) if r.status == status) >= count

        wait_for(enough, timeout=timeout, what=f"{count} answers {status} to {label}")


def in_parallel(count: int, work) -> list:
    """Run work(i) in `count` threads released together; their results in order."""
    results: list = [None] * count
    gate = threading.Barrier(count)

    def run(i):
        gate.wait(10)
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results
