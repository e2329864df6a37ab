"""What WAIT (SSO_REDIS_MIN_REPLICAS_ACK) costs a login, on a real Sentinel replica set.

    .venv/bin/python bench/sentinel_wait.py [--logins 400] [--threads 8] [--acks 0,1,2]

Starts on loopback a primary, two replicas and three Sentinels (tests/support/sentinel.py), the
stand-in provider, and for each value of SSO_REDIS_MIN_REPLICAS_ACK one SSO service under
gunicorn (2 workers) in Sentinel mode, all at once. Each login is a new account (so a new token
is written). The settings take turns login by login (and round by round for throughput), so a
busy machine slows them alike. Prints, per setting: the latency of sequential logins over HTTP
(median, p95, p99), the throughput of `--threads` concurrent clients, and the time of
TokenStore.issue() alone, in process, which is where the WAIT round trip is spent. Not
collected by pytest.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "demo"))

import requests  # noqa: E402
from demo_provider import DemoProvider  # noqa: E402

from bench.stats import quantiles  # noqa: E402
from sso_service.token_store import TokenStore, connect_sentinel  # noqa: E402
from tests.support.sentinel import MASTER_NAME, SentinelSet  # noqa: E402
from tests.support.servers import ServiceProcess, free_port  # noqa: E402
from tests.support.stack import TEST_TOKEN_SECRET, sso_env  # noqa: E402

CLOUD = "BENCH"


def percentiles(samples: list[float]) -> str:
    median = statistics.median(samples) * 1000
    p95, p99 = (v * 1000 for v in quantiles(samples, 0.95, 0.99))
    return f"median {median:6.2f} ms  p95 {p95:6.2f} ms  p99 {p99:6.2f} ms"


def users(provider: DemoProvider, count: int) -> list[dict]:
    made = []
    for _ in range(count):
        username, password = "u" + secrets.token_hex(6), secrets.token_urlsafe(9)
        provider.add_user(CLOUD, username, password, ["+15550001111"])
        made.append({"cloud_id": CLOUD, "username": username, "password": password})
    return made


def timed_login(session: requests.Session, url: str, body: dict) -> float:
    started = time.perf_counter()
    response = session.post(f"{url}/v1/tokens", json=body, timeout=15)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def concurrent(url: str, accounts: list[dict], threads: int) -> tuple[int, float]:
    """(logins, seconds) of `threads` clients sharing the accounts."""
    chunks = [accounts[i::threads] for i in range(threads)]

    def run(chunk):
        session = requests.Session()
        for body in chunk:
            timed_login(session, url, body)

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(accounts), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--acks", default="0,1,2", help="SSO_REDIS_MIN_REPLICAS_ACK values")
    args = parser.parse_args()
    settings = [int(a) for a in args.acks.split(",")]

    provider = DemoProvider().start()
    replica_set = SentinelSet(replicas=2).start()
    servers: dict[int, ServiceProcess] = {}
    try:
        for acks in settings:
            env = sso_env(
                f"redis://127.0.0.1:{free_port()}/0",
                provider,
                SSO_REDIS_SENTINELS=replica_set.sentinels,
                SSO_REDIS_SENTINEL_MASTER=MASTER_NAME,
                SSO_REDIS_MIN_REPLICAS_ACK=str(acks),
                SSO_REDIS_WAIT_TIMEOUT_MS="500",
                LOG_LEVEL="WARNING",
            )
            servers[acks] = ServiceProcess("sso_service", env, workers=2).start()
        sessions = {acks: requests.Session() for acks in settings}
        http: dict[int, list[float]] = {acks: [] for acks in settings}
        for acks in settings:  # warm both workers' pools
            for body in users(provider, 20):
                timed_login(sessions[acks], servers[acks].url, body)
        for _ in range(args.logins):
            for acks in settings:
                body = users(provider, 1)[0]
                http[acks].append(timed_login(sessions[acks], servers[acks].url, body))
        done = {acks: [0, 0.0] for acks in settings}
        for _ in range(4):
            for acks in settings:
                count, seconds = concurrent(
                    servers[acks].url, users(provider, args.logins // 4), args.threads
                )
                done[acks][0] += count
                done[acks][1] += seconds
        stores = {}
        for acks in settings:
            client = connect_sentinel(
                [("127.0.0.1", s.port) for s in replica_set.sentinel_nodes], MASTER_NAME
            )
            stores[acks] = TokenStore(client, TEST_TOKEN_SECRET, 3600, acks, 500)
        issue: dict[int, list[float]] = {acks: [] for acks in settings}
        for i in range(args.logins * 5):
            for acks in settings:
                started = time.perf_counter()
                stores[acks].issue("ISSUE", f"user{acks}-{i}", ["+15550001111"], None)
                issue[acks].append(time.perf_counter() - started)

        print(f"primary + 2 replicas + 3 Sentinels on loopback; {args.logins} logins per setting")
        for acks in settings:
            print(f"\nSSO_REDIS_MIN_REPLICAS_ACK={acks}")
            print(f"  login over HTTP, sequential  {percentiles(http[acks])}")
            rate = done[acks][0] / done[acks][1]
            print(f"  login over HTTP, {args.threads} clients   {rate:7.1f} logins/s")
            print(f"  TokenStore.issue() alone     {percentiles(issue[acks])}")
    finally:
        for server in servers.values():
            server.stop()
        replica_set.close()
        provider.stop()


if __name__ == "__main__":
    main()
