"""`make load`: simulated mobile and WebRTC clients against the real services, bounded.

    .venv/bin/python tests/load/run.py [--duration 120] [--max-requests N] [--short]
        [--accounts 200] [--clouds 3] [--mobile-threads 6] [--webrtc-threads 4]
        [--sso-url URL --contacts-url URL --accounts-file F] [--json PATH]

By default it starts its own stack on loopback: a private redis-server, a throwaway PostgreSQL
database (in the cluster `make services` runs), the stand-in provider with `--accounts`
accounts across `--clouds` Cloud IDs, and SSO and Contacts under gunicorn (`--workers` each).
With --sso-url/--contacts-url it drives running services instead, as the accounts listed in
--accounts-file (JSON: [{"cloud_id", "username", "password"}, ...]).

Mobile clients log in, register their device, upload their address book in batches, then keep
editing it (PATCH upserts/deletes, sometimes a whole PUT), syncing checksums and block
checksums against their own model. WebRTC clients log in, list the devices and read the
mobile device's book in full (ETag / 304) or incrementally (?since=). Writes that fail with a
5xx or a dropped connection are retried, as a phone would (PATCH and PUT are idempotent).

At the end every account's book is read back and compared with the client's model: zero lost,
zero duplicated, zero changed contacts is the target, and so is zero 5xx. Then it measures the
cost of the per-request introspection: the throughput of an authenticated `GET /v1/devices`
against the same route of a no-op Flask app served with the same gunicorn settings.

It prints a report and writes JSON to tests/load/results/. Exit status 1 when a target failed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

# --- profiles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    duration: float
    max_requests: int
    accounts: int
    clouds: int
    mobile_threads: int
    webrtc_threads: int
    book_size: int
    batch_size: int
    cost_seconds: float
    cost_clients: int
    cost_rounds: int


FULL = Profile(
    duration=120, max_requests=400_000, accounts=200, clouds=3, mobile_threads=6,
    webrtc_threads=4, book_size=150, batch_size=50, cost_seconds=5, cost_clients=8,
    cost_rounds=3,
)  # fmt: skip
SHORT = Profile(
    duration=15, max_requests=20_000, accounts=30, clouds=3, mobile_threads=3,
    webrtc_threads=2, book_size=40, batch_size=20, cost_seconds=2, cost_clients=4,
    cost_rounds=1,
)  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI variant (15 s, 30 accounts)")
    parser.add_argument("--duration", type=float, help="seconds of load (default 120; short 15)")
    parser.add_argument("--max-requests", type=int, help="stop after this many requests")
    parser.add_argument("--accounts", type=int, help="accounts (default 200)")
    parser.add_argument("--clouds", type=int, help="Cloud IDs the accounts are spread over")
    parser.add_argument("--mobile-threads", type=int, help="concurrent mobile clients")
    parser.add_argument("--webrtc-threads", type=int, help="concurrent WebRTC clients")
    parser.add_argument("--book-size", type=int, help="contacts in each initial address book")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per service")
    parser.add_argument("--cost-seconds", type=float, help="seconds per introspection-cost run")
    parser.add_argument("--cost-rounds", type=int, help="interleaved introspection-cost rounds")
    parser.add_argument("--skip-cost", action="store_true", help="skip the introspection cost")
    parser.add_argument("--sso-url", help="drive this SSO service instead of starting one")
    parser.add_argument("--contacts-url", help="drive this Contacts service")
    parser.add_argument("--accounts-file", help="accounts of the external services (JSON)")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--json", help="write the results here (default tests/load/results/)")
    args = parser.parse_args(argv)
    base = SHORT if args.short else FULL
    overrides = {
        name: getattr(args, name)
        for name in Profile.__dataclass_fields__
        if getattr(args, name, None) is not None
    }
    if args.cost_seconds is not None:
        overrides["cost_seconds"] = args.cost_seconds
    args.profile = Profile(**{**base.__dict__, **overrides})
    if bool(args.sso_url) != bool(args.contacts_url) or (args.sso_url and not args.accounts_file):
        parser.error("--sso-url, --contacts-url and --accounts-file go together")
    return args


# --- measurements ---------------------------------------------------------------------------


class Budget(Exception):
    """The time or request budget is spent."""


class Stats:
    def __init__(self, deadline: float, max_requests: int):
        self.deadline = deadline
        self.max_requests = max_requests
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.count = 0
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.ended: float | None = None
        self.anomalies: Counter = Counter()
        self.examples: dict[str, str] = {}

    def admit(self) -> None:
        with self.lock:
            if self.count >= self.max_requests or time.monotonic() >= self.deadline:
                raise Budget
            self.count += 1

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[endpoint][status] += 1

    def anomaly(self, kind: str, example: str = "") -> None:
        with self.lock:
            self.anomalies[kind] += 1
            self.examples.setdefault(kind, example[:300])


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Http:
    """One simulated client's keep-alive session; every request is budgeted and recorded."""

    def __init__(self, stats: Stats | None):
        self.stats = stats
        self.session = requests.Session()
        self.session.trust_env = False

    def send(self, endpoint: str, method: str, url: str, **kwargs) -> requests.Response | None:
        if self.stats:
            self.stats.admit()
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=30, **kwargs)
        except requests.RequestException as exc:
            if self.stats:
                self.stats.record(endpoint, 0, time.monotonic() - started)
                self.stats.anomaly("connection_error", f"{endpoint}: {exc!r}")
            return None
        if self.stats:
            self.stats.record(endpoint, response.status_code, time.monotonic() - started)
            if response.status_code >= 500:
                self.stats.anomaly(f"{response.status_code}", f"{endpoint}: {response.text}")
        return response


# --- the simulated users ---------------------------------------------------------------------


def content_checksum(contact: dict) -> str:
    body = {k: v for k, v in contact.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:20]


def block_of(contact_id: str, bits: int) -> str:
    digest = int.from_bytes(hashlib.sha256(contact_id.encode()).digest(), "big")
    return format(digest >> (256 - bits), f"0{(bits + 3) // 4}x")


def block_checksums(checksums: dict[str, str], bits: int) -> dict[str, str]:
    blocks: dict[str, list[str]] = defaultdict(list)
    for contact_id in sorted(checksums, key=lambda c: c.encode()):
        blocks[block_of(contact_id, bits)].append(f"{contact_id}\t{checksums[contact_id]}\n")
    return {b: hashlib.sha256("".join(lines).encode()).hexdigest() for b, lines in blocks.items()}


@dataclass
class Account:
    cloud_id: str
    username: str
    password: str
    number: str
    index: int
    peers: list[str] = field(default_factory=list)  # numbers of others in the same cloud
    token: str | None = None
    device: str = "mobile"
    registered: bool = False
    uploaded: bool = False
    book: dict[str, dict] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    next_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Fatima", "Günter", "Hana", "Iñaki", "Jo"]
LAST = ["Smith", "Novák", "Müller", "O'Brien", "Søren", "Yamada", "Łukasz", "García", "Lee"]


def new_contact(rng: random.Random, account: Account) -> dict:
    account.next_id += 1
    cid = f"{account.username}-{account.next_id}"
    if account.peers and rng.random() < 0.25:
        number = rng.choice(account.peers)
    else:
        number = f"+1555{rng.randrange(10_000_000):07d}"
    first, last = rng.choice(FIRST), rng.choice(LAST)
    contact = {
        "contactId": cid,
        "displayName": f"{first} {last}",
        "fname": first,
        "lname": last,
        "contactEntries": [{"entryId": "tel1", "label": "mobile", "type": "tel", "uri": number}],
    }
    if rng.random() < 0.5:
        contact["contactEntries"].append(
            {"entryId": "mail1", "label": "work", "type": "email", "uri": f"{cid}@example.com"}
        )
    if rng.random() < 0.2:
        contact["company"] = rng.choice(["ACME", "Initech", "Umbrella"])
    contact["checksum"] = content_checksum(contact)
    return contact


def edited(rng: random.Random, contact: dict) -> dict:
    changed = {k: v for k, v in contact.items() if k != "checksum"}
    changed["notes"] = f"edited {rng.randrange(1_000_000)}"
    changed["checksum"] = content_checksum(changed)
    return changed


class Simulation:
    def __init__(self, args, sso_url: str, contacts_url: str, accounts: list[Account]):
        self.args = args
        self.profile: Profile = args.profile
        self.sso_url = sso_url
        self.contacts_url = contacts_url
        self.accounts = accounts
        # A device of this run only, so a rerun against the same services starts empty.
        device = "mobile-" + os.urandom(3).hex()
        for account in accounts:
            account.device = device
        self.stats = Stats(time.monotonic() + self.profile.duration, self.profile.max_requests)

    # mobile ---------------------------------------------------------------------------------

    def login(self, http: Http, account: Account) -> str | None:
        response = http.send(
            "POST /v1/tokens",
            "POST",
            self.sso_url + "/v1/tokens",
            json={
                "cloud_id": account.cloud_id,
                "username": account.username,
                "password": account.password,
            },
        )
        if response is not None and response.status_code == 200:
            return response.json()["token"]
        return None

    def auth(self, account: Account) -> dict:
        return {"Authorization": f"Bearer {account.token}"}

    def write(self, http: Http, account: Account, endpoint: str, method: str, body: dict) -> bool:
        """Send an idempotent write until it is answered (2xx or 4xx); True when applied."""
        url = f"{self.contacts_url}/v1/devices/{account.device}/contacts"
        ids = [c["contactId"] for c in body.get("upsert", body.get("contacts", []))]
        ids += list(body.get("delete", []))
        for attempt in range(5):
            try:
                response = http.send(endpoint, method, url, json=body, headers=self.auth(account))
            except Budget:
                if attempt:  # an earlier attempt may have been applied
                    account.uncertain.update(ids)
                raise
            if response is not None and response.status_code < 500:
                if response.status_code == 200:
                    return True
                if response.status_code == 401:
                    account.token = None
                self.stats.anomaly(f"write_{response.status_code}", response.text)
                return False
            time.sleep(0.2 * (attempt + 1))
        account.uncertain.update(ids)
        return False

    def mobile_step(self, http: Http, rng: random.Random, account: Account) -> None:
        if account.token is None or rng.random() < 0.03:
            token = self.login(http, account)
            if token is None:
                return
            if account.token not in (None, token):
                self.stats.anomaly("token_changed_on_relogin")
            account.token = token
        if not account.registered:
            response = http.send(
                "PUT /v1/devices/{id}",
                "PUT",
                f"{self.contacts_url}/v1/devices/{account.device}",
                json={"name": "Phone", "platform": "android"},
                headers=self.auth(account),
            )
            account.registered = response is not None and response.status_code in (200, 201)
            return
        if not account.uploaded:
            self.initial_upload(http, rng, account)
            return
        roll = rng.random()
        if roll < 0.5:
            self.edit(http, rng, account)
        elif roll < 0.75:
            self.checksum_sync(http, account)
        elif roll < 0.9:
            self.block_sync(http, account, rng.choice([2, 4, 6]))
        else:
            self.replace(http, rng, account)

    def initial_upload(self, http: Http, rng: random.Random, account: Account) -> None:
        contacts = [new_contact(rng, account) for _ in range(self.profile.book_size)]
        size = self.profile.batch_size
        for start in range(0, len(contacts), size):
            batch = contacts[start : start + size]
            if self.write(http, account, "PATCH contacts", "PATCH", {"upsert": batch}):
                account.book.update((c["contactId"], c) for c in batch)
        account.uploaded = True

    def edit(self, http: Http, rng: random.Random, account: Account) -> None:
        ids = list(account.book)
        upsert = [edited(rng, account.book[i]) for i in rng.sample(ids, min(len(ids), 3))]
        upsert += [new_contact(rng, account) for _ in range(rng.randint(0, 2))]
        upserted = {c["contactId"] for c in upsert}
        candidates = [i for i in ids if i not in upserted]
        delete = rng.sample(candidates, min(len(candidates), rng.randint(0, 1)))
        body = {"upsert": upsert, "delete": delete}
        if self.write(http, account, "PATCH contacts", "PATCH", body):
            account.book.update((c["contactId"], c) for c in upsert)
            for contact_id in delete:
                account.book.pop(contact_id, None)

    def replace(self, http: Http, rng: random.Random, account: Account) -> None:
        contacts = list(account.book.values())
        rng.shuffle(contacts)
        contacts = contacts[: max(1, len(contacts) - 2)]
        contacts.append(new_contact(rng, account))
        if self.write(http, account, "PUT contacts", "PUT", {"contacts": contacts}):
            account.book = {c["contactId"]: c for c in contacts}

    def checksum_sync(self, http: Http, account: Account) -> None:
        response = http.send(
            "GET checksums",
            "GET",
            f"{self.contacts_url}/v1/devices/{account.device}/checksums",
            headers=self.auth(account),
        )
        if response is None or response.status_code != 200:
            return
        expected = {i: c["checksum"] for i, c in account.book.items()}
        got = response.json()["checksums"]
        if {k: v for k, v in got.items() if k not in account.uncertain} != {
            k: v for k, v in expected.items() if k not in account.uncertain
        }:
            self.stats.anomaly("checksum_mismatch", account.username)

    def block_sync(self, http: Http, account: Account, bits: int) -> None:
        response = http.send(
            "GET checksums?blocks",
            "GET",
            f"{self.contacts_url}/v1/devices/{account.device}/checksums",
            params={"blocks": bits},
            headers=self.auth(account),
        )
        if response is None or response.status_code != 200 or account.uncertain:
            return
        expected = block_checksums({i: c["checksum"] for i, c in account.book.items()}, bits)
        if response.json()["blocks"] != expected:
            self.stats.anomaly("block_checksum_mismatch", account.username)

    def mobile_thread(self, index: int) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        mine = self.accounts[index :: self.profile.mobile_threads]
        http = Http(self.stats)
        try:
            while True:
                for account in mine:
                    with account.lock:
                        self.mobile_step(http, rng, account)
        except Budget:
            return

    # WebRTC ---------------------------------------------------------------------------------

    def webrtc_thread(self, index: int) -> None:
        rng = random.Random(self.args.seed * 7919 + index)
        http = Http(self.stats)
        tokens: dict[str, str] = {}
        seen: dict[str, tuple[str, int]] = {}  # username -> (ETag, revision)
        try:
            while True:
                account = rng.choice(self.accounts)
                if not account.uploaded:
                    time.sleep(0.01)
                    continue
                token = tokens.get(account.username)
                if token is None:
                    token = self.login(http, account)
                    if token is None:
                        continue
                    tokens[account.username] = token
                self.webrtc_step(http, rng, account, token, seen)
        except Budget:
            return

    def webrtc_step(self, http, rng, account: Account, token: str, seen: dict) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        response = http.send(
            "GET /v1/devices", "GET", self.contacts_url + "/v1/devices", headers=headers
        )
        if response is None or response.status_code != 200:
            return
        if account.device not in [d["id"] for d in response.json()["devices"]]:
            self.stats.anomaly("device_missing_from_list", account.username)
            return
        url = f"{self.contacts_url}/v1/devices/{account.device}/contacts"
        previous = seen.get(account.username)
        if previous and rng.random() < 0.5:
            response = http.send(
                "GET contacts?since", "GET", url, params={"since": previous[1]}, headers=headers
            )
            if response is not None and response.status_code == 200:
                body = response.json()
                seen[account.username] = (previous[0], body["revision"])
            return
        if previous:
            headers["If-None-Match"] = previous[0]
        response = http.send("GET contacts", "GET", url, headers=headers)
        if response is not None and response.status_code == 200:
            body = response.json()
            ids = [c["contactId"] for c in body["contacts"]]
            if len(ids) != len(set(ids)):
                self.stats.anomaly("duplicate_in_read", account.username)
            seen[account.username] = (response.headers.get("ETag", ""), body["revision"])

    # the run --------------------------------------------------------------------------------

    def run(self) -> None:
        threads = [
            threading.Thread(target=self.mobile_thread, args=(i,), daemon=True)
            for i in range(self.profile.mobile_threads)
        ] + [
            threading.Thread(target=self.webrtc_thread, args=(i,), daemon=True)
            for i in range(self.profile.webrtc_threads)
        ]
        self.stats.started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.profile.duration + 300)
        self.stats.ended = time.monotonic()

    def verify(self) -> dict:
        """Read every account's book back and compare it with the client's model."""
        http = Http(None)
        result = Counter()
        for account in self.accounts:
            if not account.registered:
                continue
            token = account.token or self.login(http, account)
            if token is None:
                result["unverifiable_accounts"] += 1
                continue
            account.token = token
            response = http.send(
                "verify",
                "GET",
                f"{self.contacts_url}/v1/devices/{account.device}/contacts",
                headers=self.auth(account),
            )
            if response is None or response.status_code != 200:
                result["unverifiable_accounts"] += 1
                continue
            stored = response.json()["contacts"]
            ids = [c["contactId"] for c in stored]
            result["duplicated"] += len(ids) - len(set(ids))
            server = {c["contactId"]: c for c in stored}
            for contact_id, contact in account.book.items():
                if contact_id in account.uncertain:
                    continue
                if contact_id not in server:
                    result["lost"] += 1
                elif server[contact_id] != contact:
                    result["changed"] += 1
            result["unexpected"] += len(
                [i for i in server if i not in account.book and i not in account.uncertain]
            )
            result["uncertain"] += len(account.uncertain)
            result["accounts_checked"] += 1
            result["contacts_checked"] += len(account.book)
        for key in ("lost", "duplicated", "changed", "unexpected", "uncertain"):
            result.setdefault(key, 0)
        return dict(result)

    def summary(self) -> dict:
        elapsed = (self.stats.ended or time.monotonic()) - self.stats.started
        endpoints = {}
        for endpoint, values in sorted(self.stats.latencies.items()):
            ordered = sorted(values)
            endpoints[endpoint] = {
                "requests": len(values),
                "rps": round(len(values) / elapsed, 1),
                "p50_ms": round(percentile(ordered, 50) * 1000, 1),
                "p95_ms": round(percentile(ordered, 95) * 1000, 1),
                "p99_ms": round(percentile(ordered, 99) * 1000, 1),
                "statuses": {str(k): v for k, v in sorted(self.stats.statuses[endpoint].items())},
            }
        statuses = Counter()
        for counter in self.stats.statuses.values():
            statuses.update(counter)
        return {
            "elapsed_s": round(elapsed, 1),
            "requests": self.stats.count,
            "rps": round(self.stats.count / elapsed, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
            "connection_errors": statuses.get(0, 0),
            "endpoints": endpoints,
            "anomalies": dict(self.stats.anomalies),
            "anomaly_examples": self.stats.examples,
        }


# --- introspection cost ------------------------------------------------------------------------


def _hammer(url: str, token: str | None, seconds: float, threads: int) -> tuple[int, int]:
    """GET `url` in `threads` keep-alive connections for `seconds`; (2xx count, other count)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    counts = [[0, 0] for _ in range(threads)]
    deadline = time.monotonic() + seconds

    def worker(slot):
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.monotonic() < deadline:
            try:
                connection.request("GET", parts.path, headers=headers)
                response = connection.getresponse()
                response.read()
                counts[slot][0 if 200 <= response.status < 300 else 1] += 1
            except (OSError, http.client.HTTPException):
                counts[slot][1] += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        connection.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def throughput(url: str, token: str | None, seconds: float, clients: int) -> dict:
    """Requests/s of GET `url` from `clients` connections spread over two client processes
    (one Python process alone would measure its own GIL, not the server)."""
    processes = 2
    per_process = max(1, clients // processes)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        _hammer(url, token, 0.5, 1)  # warm-up: connections, worker imports, caches
        futures = [pool.submit(_hammer, url, token, seconds, per_process) for _ in range(processes)]
        results = [f.result() for f in futures]
    ok = sum(r[0] for r in results)
    other = sum(r[1] for r in results)
    return {"rps": round(ok / seconds, 1), "ok": ok, "other": other}


def introspection_cost(args, contacts_url: str, token: str, cached_url: str | None) -> dict:
    """Throughputs of the no-op app and Contacts (and Contacts with its introspection cache),
    measured in interleaved rounds so a change in background load hits all of them alike;
    the ratios are medians over the rounds."""
    import statistics

    from tests.support.servers import ServiceProcess

    profile: Profile = args.profile
    targets = {"noop": None, "contacts": (contacts_url, token)}
    if cached_url:
        targets["contacts_introspection_cached"] = (cached_url, token)
    rounds: list[dict] = []
    noop = ServiceProcess("tests.load.noop_app", {}, workers=args.workers).start()
    targets["noop"] = (noop.url, None)
    try:
        for _ in range(profile.cost_rounds):
            rounds.append(
                {
                    name: throughput(
                        url + "/v1/devices", auth, profile.cost_seconds, profile.cost_clients
                    )
                    for name, (url, auth) in targets.items()
                }
            )
    finally:
        noop.stop()

    def median_ratio(name: str) -> float | None:
        ratios = [r[name]["rps"] / r["noop"]["rps"] for r in rounds if r["noop"]["rps"]]
        return round(statistics.median(ratios), 3) if ratios else None

    result = {
        "seconds": profile.cost_seconds,
        "rounds": rounds,
        "connections": profile.cost_clients,
        "gunicorn_workers": args.workers,
        "noop": {"rps": statistics.median(r["noop"]["rps"] for r in rounds)},
        "contacts": {"rps": statistics.median(r["contacts"]["rps"] for r in rounds)},
        "ratio": median_ratio("contacts"),
    }
    if cached_url:
        result["contacts_introspection_cached"] = {
            "rps": statistics.median(r["contacts_introspection_cached"]["rps"] for r in rounds)
        }
        result["cached_ratio"] = median_ratio("contacts_introspection_cached")
    return result


# --- the stack -------------------------------------------------------------------------------


def make_accounts(profile: Profile) -> list[tuple[str, str, str, str]]:
    accounts = []
    for index in range(profile.accounts):
        cloud = f"LOAD{index % profile.clouds}"
        number = f"+1555{index % profile.clouds}{index:06d}"
        accounts.append(
            (cloud, f"user{index:04d}", f"pw-{index:04d}-{os.urandom(4).hex()}", number)
        )
    return accounts


class Stack:
    """The services this run starts (or the URLs it was given)."""

    def __init__(self, args):
        self.args = args
        self.parts: list = []
        self.cached_contacts_url: str | None = None

    def start(self) -> tuple[str, str, list[Account]]:
        args = self.args
        if args.sso_url:
            listed = json.loads(Path(args.accounts_file).read_text())
            accounts = [
                Account(a["cloud_id"], a["username"], a["password"], "", i)
                for i, a in enumerate(listed)
            ]
            return args.sso_url.rstrip("/"), args.contacts_url.rstrip("/"), accounts

        from demo_provider import DemoProvider

        from tests.support.clients import contacts_env
        from tests.support.servers import PostgresDatabase, RedisServer, ServiceProcess
        from tests.support.stack import sso_env

        redis_server = RedisServer().start()
        self.parts.append(redis_server.close)
        database = PostgresDatabase().create()
        self.parts.append(database.drop)
        provider = DemoProvider().start()
        self.parts.append(provider.stop)
        raw = make_accounts(args.profile)
        for cloud, username, password, number in raw:
            provider.add_user(cloud, username, password, [number], f"sip:{username}@{cloud}")
        sso = ServiceProcess(
            "sso_service", sso_env(redis_server.url, provider, LOG_LEVEL="WARNING"), args.workers
        ).start()
        self.parts.append(sso.stop)
        env = contacts_env(database.url, sso.url, LOG_LEVEL="WARNING")
        contacts = ServiceProcess("contacts_service", env, args.workers).start()
        self.parts.append(contacts.stop)
        if not args.skip_cost:
            cached_env = {**env, "CONTACTS_INTROSPECTION_CACHE_SECONDS": "60"}
            cached = ServiceProcess("contacts_service", cached_env, args.workers).start()
            self.parts.append(cached.stop)
            self.cached_contacts_url = cached.url
        numbers_by_cloud = defaultdict(list)
        for cloud, _, _, number in raw:
            numbers_by_cloud[cloud].append(number)
        accounts = [
            Account(cloud, username, password, number, i, [n for n in numbers_by_cloud[cloud]
                                                           if n != number])
            for i, (cloud, username, password, number) in enumerate(raw)
        ]  # fmt: skip
        return sso.url, contacts.url, accounts

    def stop(self) -> None:
        for stop in reversed(self.parts):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"cleanup: {exc!r}", file=sys.stderr)


# --- report ------------------------------------------------------------------------------------


def print_report(result: dict) -> None:
    load = result["load"]
    print()
    print(f"Load: {load['requests']} requests in {load['elapsed_s']} s = {load['rps']} req/s")
    print(f"{'endpoint':<24}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}  statuses")  # fmt: skip
    for name, row in load["endpoints"].items():
        statuses = " ".join(f"{k}:{v}" for k, v in row["statuses"].items())
        print(
            f"{name:<24}{row['requests']:>10}{row['rps']:>9}{row['p50_ms']:>9}"
            f"{row['p95_ms']:>9}{row['p99_ms']:>9}  {statuses}"
        )
    print(f"statuses: {load['statuses']}  5xx: {load['errors_5xx']}  "
          f"connection errors: {load['connection_errors']}")  # fmt: skip
    if load["anomalies"]:
        print(f"anomalies: {load['anomalies']}")
        for kind, example in load["anomaly_examples"].items():
            print(f"  {kind}: {example}")
    check = result["consistency"]
    print(
        f"consistency: {check.get('accounts_checked', 0)} accounts, "
        f"{check.get('contacts_checked', 0)} contacts checked; lost {check['lost']}, "
        f"duplicated {check['duplicated']}, changed {check['changed']}, "
        f"unexpected {check['unexpected']}, uncertain {check['uncertain']}"
    )
    cost = result.get("introspection_cost")
    if cost:
        print(
            f"introspection cost: GET /v1/devices {cost['contacts']['rps']} req/s vs no-op "
            f"{cost['noop']['rps']} req/s -> ratio {cost['ratio']} (median of "
            f"{len(cost['rounds'])} rounds of {cost['seconds']:g} s, {cost['connections']} "
            f"connections, {cost['gunicorn_workers']} workers each)"
        )
        if "cached_ratio" in cost:
            print(
                f"  with CONTACTS_INTROSPECTION_CACHE_SECONDS=60: "
                f"{cost['contacts_introspection_cached']['rps']} req/s -> "
                f"ratio {cost['cached_ratio']}"
            )
    print("targets:", "PASS" if result["passed"] else "FAIL", result["failures"])


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "deploy" / "demo"))
    stack = Stack(args)
    try:
        sso_url, contacts_url, accounts = stack.start()
        profile = args.profile
        print(
            f"load: {len(accounts)} accounts, {profile.mobile_threads} mobile + "
            f"{profile.webrtc_threads} WebRTC clients, {profile.duration:g} s or "
            f"{profile.max_requests} requests; SSO {sso_url}, Contacts {contacts_url}",
            flush=True,
        )
        simulation = Simulation(args, sso_url, contacts_url, accounts)
        simulation.run()
        result = {"load": simulation.summary(), "consistency": simulation.verify()}
        if not args.skip_cost:
            token = next((a.token for a in accounts if a.token), None)
            token = token or simulation.login(Http(None), accounts[0])
            result["introspection_cost"] = introspection_cost(
                args, contacts_url, token, stack.cached_contacts_url
            )
    finally:
        stack.stop()

    check = result["consistency"]
    load = result["load"]
    failures = [
        f"{name} = {value}"
        for name, value in (
            ("5xx", load["errors_5xx"]),
            ("connection errors", load["connection_errors"]),
            ("lost", check["lost"]),
            ("duplicated", check["duplicated"]),
            ("changed", check["changed"]),
            ("unexpected", check["unexpected"]),
            ("anomalies", sum(load["anomalies"].values())),
        )
        if value
    ]
    result.update(
        passed=not failures,
        failures=failures,
        profile=args.profile.__dict__,
        workers=args.workers,
        machine={"cpus": os.cpu_count(), "python": platform.python_version()},
        finished_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    print_report(result)
    path = (
        Path(args.json)
        if args.json
        else RESULTS
        / ("load-" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {path}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
