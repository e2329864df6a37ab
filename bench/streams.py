"""Change-notification streams at scale, run by hand: one Contacts worker holding N open
streams, measured for (1) the latency of ordinary requests (GET /v1/devices) and (2) how long
a change takes to reach the streams waiting on the changed device.

    .venv/bin/python -m bench.streams --worker-class gevent
    .venv/bin/python -m bench.streams --worker-class gthread --threads 1400
    .venv/bin/python -m bench.streams --worker-class gevent --heavy 5000

It starts its own stack (private redis-server, a throwaway database in the `make services`
PostgreSQL, the stand-in provider, the SSO service, and ONE Contacts worker with the chosen
worker class), opens --streams streams spread over --devices devices of one account, and then:

- baseline: --requests sequential GET /v1/devices before any stream is open;
- loaded: the same with every stream open;
- delivery: --changes PATCHes, one at a time, each to a random device; for each, the time
  from the PATCH being sent to the change event on each of that device's streams;
- fan-out: one PATCH to a device all streams of --fanout-streams wait on (optional);
- with --heavy N, a background client uploads N-contact PUTs in a loop during the loaded and
  delivery phases (a CPU-bound request beside the streams: the case where one gevent worker
  stalls while gthread threads share the interpreter).

The streams are read by asyncio in a thread of this process; the figures include this
process's own scheduling, on the same machine as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import threading
import time
import urllib.parse

import requests

from bench.measure import _status_kib, process_tree
from bench.ours import CLOUD_ID, PASSWORD, USERNAME, OurStack
from bench.stats import quantiles
from tests.support.servers import ServiceProcess


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    p50, p90, p99, top = (v * 1000 for v in quantiles(values, 0.5, 0.9, 0.99, 1))
    return (
        f"n={len(values)} p50={p50:.1f} ms p90={p90:.1f} ms p99={p99:.1f} ms"
        f" max={top:.1f} ms mean={statistics.fmean(values) * 1000:.1f} ms"
    )


class Streams:
    """N event streams on asyncio in a background thread; records when each change event
    arrives: arrivals[(device, revision)] = [monotonic times]."""

    def __init__(self, base_url: str, token: str):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname, url.port
        self.token = token
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.arrivals: dict[tuple[str, int], list[float]] = {}
        self.open = 0
        self.refused: dict[str, int] = {}
        self.per_device: dict[str, int] = {}
        self.ended = 0
        self._lock = threading.Lock()
        self._tasks: list = []

    def start(self, devices: list[str], batch: int) -> None:
        """Connect `batch` at a time (clients arriving, not all in one instant)."""
        for start in range(0, len(devices), batch):
            futures = [
                asyncio.run_coroutine_threadsafe(self._connect(device), self.loop)
                for device in devices[start : start + batch]
            ]
            for future in futures:
                future.result(120)

    async def _connect(self, device: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(
            (
                f"GET /v1/devices/{device}/events HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = (await reader.readline()).split()[1]
        if status != b"200":
            with self._lock:
                self.refused[status.decode()] = self.refused.get(status.decode(), 0) + 1
            writer.close()
            return
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.open += 1
        self.per_device[device] = self.per_device.get(device, 0) + 1
        self._tasks.append(asyncio.ensure_future(self._read(device, reader, writer)))

    async def _read(self, device: str, reader, writer) -> None:
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    for line in block.split(b"\n"):
                        if line.startswith(b"id: "):
                            revision = int(line[4:])
                            with self._lock:
                                self.arrivals.setdefault((device, revision), []).append(
                                    time.monotonic()
                                )
        except (OSError, ValueError, asyncio.CancelledError):
            pass
        finally:
            self.ended += 1
            writer.close()

    def close(self) -> None:
        async def shutdown():
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def timed_gets(session: requests.Session, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return times


def heavy_loop(url: str, token: str, size: int, stop: threading.Event, done: list) -> None:
    """PUT a size-contact book again and again (each one rewrites every contact)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    generation = 0
    while not stop.is_set():
        generation += 1
        book = [
            {
                "contactId": f"h{i}",
                "displayName": f"Heavy {i} {generation}",
                "contactEntries": [
                    {"entryId": "m", "type": "tel", "label": "mobile", "uri": f"+1555{i:07d}"}
                ],
            }
            for i in range(size)
        ]
        started = time.perf_counter()
        response = session.put(url, json={"contacts": book}, timeout=300)
        response.raise_for_status()
        done.append(time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.streams", description=__doc__.split("\n")[0])
    parser.add_argument("--worker-class", choices=["gevent", "gthread"], default="gevent")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument(
        "--devices", type=int, default=99, help="devices the streams share (at most 99)"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--batch", type=int, default=50, help="streams connecting at once")
    parser.add_argument("--heavy", type=int, default=0, help="contacts per background PUT")
    args = parser.parse_args(argv)

    stack = OurStack(workers=1)
    # The SSO and the database as bench/ours.py starts them; Contacts replaced below by one
    # worker of the chosen class.
    stack.start()
    contacts_env = dict(stack.contacts.env)
    stack.contacts.stop()
    contacts_env["CONTACTS_MAX_STREAMS_PER_WORKER"] = str(args.streams)
    extra = ["--worker-class", args.worker_class]
    if args.worker_class == "gthread":
        extra += ["--threads", str(args.threads)]
    stack.contacts = ServiceProcess("contacts_service", contacts_env, workers=1, extra_args=extra)
    stack.contacts.start(timeout=60)
    base = stack.contacts.url
    try:
        session = requests.Session()
        login = session.post(
            stack.sso.url + "/v1/tokens",
            json={"username": USERNAME, "password": PASSWORD, "cloud_id": CLOUD_ID},
            timeout=30,
        )
        login.raise_for_status()
        token = login.json()["token"]
        session.headers["Authorization"] = f"Bearer {token}"
        devices = [f"d{i}" for i in range(args.devices)]
        for device in devices:
            session.put(f"{base}/v1/devices/{device}", json={}, timeout=30).raise_for_status()
        list_url = base + "/v1/devices"
        timed_gets(session, list_url, 20)  # warm-up
        baseline = timed_gets(session, list_url, args.requests)
        print(
            f"worker class: {args.worker_class}"
            + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        )
        print(f"GET /v1/devices, no streams:        {percentiles(baseline)}")

        streams = Streams(base, token)
        started = time.monotonic()
        streams.start([devices[i % len(devices)] for i in range(args.streams)], args.batch)
        print(
            f"streams: {streams.open} open, {streams.refused} refused"
            f" ({time.monotonic() - started:.1f} s to open)"
        )

        workers = process_tree(stack.contacts.process.pid)[1:]
        rss = sum(_status_kib(pid, "VmRSS") for pid in workers) / 1024
        threads = sum(_status_kib(pid, "Threads") for pid in workers)
        print(f"worker with the streams open: RSS {rss:.0f} MiB, {threads} OS threads")

        stop, heavy_times = threading.Event(), []
        heavy = None
        if args.heavy:
            heavy_device = "heavy"
            session.put(f"{base}/v1/devices/{heavy_device}", json={}, timeout=30)
            heavy = threading.Thread(
                target=heavy_loop,
                args=(
                    f"{base}/v1/devices/{heavy_device}/contacts",
                    token,
                    args.heavy,
                    stop,
                    heavy_times,
                ),
                daemon=True,
            )
            heavy.start()
            time.sleep(1)

        loaded = timed_gets(session, list_url, args.requests)
        print(f"GET /v1/devices, {streams.open} streams open: {percentiles(loaded)}")

        delays, missing = [], 0
        rng = random.Random(7)
        for _ in range(args.changes):
            device = rng.choice(devices)
            waiting = streams.per_device.get(device, 0)
            sent = time.monotonic()
            response = session.patch(
                f"{base}/v1/devices/{device}/contacts",
                json={"upsert": [{"contactId": f"c{sent}", "displayName": "x"}]},
                timeout=30,
            )
            response.raise_for_status()
            revision = response.json()["revision"]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                with streams._lock:
                    got = list(streams.arrivals.get((device, revision), []))
                if len(got) >= waiting:
                    break
                time.sleep(0.005)
            delays += [t - sent for t in got]
            missing += waiting - len(got)
        print(
            f"change → event on each waiting stream: {percentiles(delays)};"
            f" missed (>5 s): {missing}"
        )
        if heavy is not None:
            stop.set()
            heavy.join(300)
            print(f"background {args.heavy}-contact PUTs: {percentiles(heavy_times)}")
        print(f"streams still open at the end: {streams.open - streams.ended}")
        streams.close()
    finally:
        with contextlib.suppress(Exception):
            stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
