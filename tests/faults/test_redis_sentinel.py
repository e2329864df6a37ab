"""The SSO on a Sentinel-managed Redis (primary, two replicas, three Sentinels, all real
processes on loopback): a primary killed under traffic is replaced without one 500 and without
losing a token, a demoted primary is left for the new one, a write no replica acknowledges is a
503, and so is a master name the Sentinels do not know.

Two replicas, because logins WAIT for one (SSO_REDIS_MIN_REPLICAS_ACK=1): after a failover the
new primary still has one, so logins work again without anyone restarting the dead node.
"""

from __future__ import annotations

import base64
import contextlib
import random
import threading
import time

import pytest
import requests

from sso_service import create_app
from tests.support.sentinel import MASTER_NAME, SentinelSet
from tests.support.servers import ServiceProcess, free_port, wait_for
from tests.support.stack import INTROSPECTION_CLIENT, sso_env
from tests.support.traffic import TrafficLoop

CLOUD = "SENTINEL"
BASIC = {"Authorization": "Basic Y29udGFjdHM6Y29udGFjdHMtdGVzdC1zZWNyZXQ="}


def sentinel_env(replica_set: SentinelSet, provider, **overrides) -> dict[str, str]:
    """SSO settings in Sentinel mode. SSO_REDIS_URL names a closed port: in Sentinel mode only
    its database number is used, so nothing may ever connect there."""
    settings = {
        "SSO_REDIS_SENTINELS": replica_set.sentinels,
        "SSO_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "SSO_REDIS_MIN_REPLICAS_ACK": "1",
        "SSO_REDIS_WAIT_TIMEOUT_MS": "300",
    }
    return sso_env(f"redis://127.0.0.1:{free_port()}/0", provider, **(settings | overrides))


def new_user(provider) -> dict:
    username = f"u{random.getrandbits(48):012x}"
    password = f"p{random.getrandbits(48):012x}"
    provider.add_user(CLOUD, username, password, ["+15550001111"])
    return {"cloud_id": CLOUD, "username": username, "password": password}


def assert_unavailable(response) -> None:
    """A 503 in the one error shape, with Retry-After (a Flask test client response)."""
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.json["error"] == "unavailable"
    assert set(response.json) <= {"error", "message", "details"}
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
def user(fresh_provider) -> dict:
    return new_user(fresh_provider)


@pytest.fixture
def replica_set():
    started = SentinelSet(replicas=2).start()
    yield started
    started.close()


@pytest.fixture(scope="module")
def shared_set():
    """One replica set for the in-process tests; each waits until it is whole again."""
    started = SentinelSet(replicas=2).start()
    yield started
    started.close()


@pytest.fixture
def settled_set(shared_set):
    def whole():
        primary = shared_set.primary()
        running = sum(1 for node in shared_set.nodes if node.process is not None)
        return primary.replication()["connected_slaves"] == running - 1 and shared_set.converged()

    wait_for(whole, timeout=30, interval=0.1, what="replica set whole")
    return shared_set


# --------------------------------------------------------------------------- kill -9 the primary


def test_killing_the_primary_fails_over_without_500s_or_lost_tokens(replica_set, provider):
    server = ServiceProcess("sso_service", sentinel_env(replica_set, provider), workers=2).start()
    issued: list[tuple[str, float]] = []  # (token, when its login answered 200)
    problems: list[str] = []
    lock = threading.Lock()

    def log_in(loop):
        user = new_user(provider)
        response = loop.call(
            "login", lambda: requests.post(f"{server.url}/v1/tokens", json=user, timeout=15)
        )
        if response is None:
            return
        if response.status_code == 200:
            with lock:
                issued.append((response.json()["token"], time.monotonic()))
        elif response.status_code == 503 and "Retry-After" not in response.headers:
            problems.append(f"login 503 without Retry-After: {response.text}")

    def introspect(loop):
        with lock:
            known = list(issued)
        if not known:
            time.sleep(0.01)
            return
        token, _ = random.choice(known)
        response = loop.call(
            "introspect",
            lambda: requests.post(
                f"{server.url}/v1/introspect",
                data={"token": token},
                auth=INTROSPECTION_CLIENT,
                timeout=15,
            ),
        )
        if response is None:
            return
        if response.status_code == 200 and response.json().get("active") is not True:
            problems.append(f"a token whose login answered 200 was not active: {token}")
        elif response.status_code == 503 and "Retry-After" not in response.headers:
            problems.append(f"introspect 503 without Retry-After: {response.text}")

    loops = [TrafficLoop(log_in) for _ in range(3)] + [TrafficLoop(introspect) for _ in range(2)]
    try:
        for loop in loops:
            loop.__enter__()
        wait_for(lambda: len(issued) >= 30, timeout=30, what="30 logins before the kill")
        old, killed_at = replica_set.kill_primary()
        replica_set.wait_for_new_primary(old, timeout=30)
        failover = time.monotonic() - killed_at
        deadline = killed_at + failover + 5.0
        for label in ("login", "introspect"):
            wait_for(
                lambda label=label: any(
                    r.status == 200 and r.started > killed_at
                    for loop in loops
                    for r in loop.snapshot(label)
                ),
                # Beyond the deadline, so that a late recovery fails on the figures below.
                timeout=max(0.1, deadline - time.monotonic()) + 10,
                what=f"a {label} answered 200 after the kill",
            )
        back = time.monotonic()
        wait_for(lambda: sum(1 for _, at in issued if at > back) >= 20, timeout=30)
        for loop in loops:
            loop.stop()

        records = [r for loop in loops for r in loop.records]
        assert [r for r in records if r.status not in (200, 503)] == []
        assert all(r.body_ok and r.error == "unavailable" for r in records if r.status == 503)
        assert problems == []
        # The traffic went on while there was no primary.
        assert any(killed_at < r.started < killed_at + failover for r in records)
        for label in ("login", "introspect"):
            recovered = min(
                r.ended
                for r in records
                if r.label == label and r.started > killed_at and r.status == 200
            )
            assert recovered <= deadline, (label, recovered - killed_at, failover)

        # Every token a login answered 200 for (before, during or after the kill) is active.
        session = requests.Session()
        for token, _ in issued:
            answer = session.post(
                f"{server.url}/v1/introspect",
                data={"token": token},
                auth=INTROSPECTION_CLIENT,
                timeout=15,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["active"] is True, token
    finally:
        for loop in loops:
            with contextlib.suppress(AssertionError):  # already raised in the body
                loop.stop()
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-4000:]


# --------------------------------------------------------------------------- in-process


def log_in_through_a_manual_failover(replica_set, client, provider, pause_writes_ms=0):
    """SENTINEL FAILOVER (after pausing the primary's writes, if asked), then a login with a new
    account every 20 ms until the old primary has been demoted and a login answered 200 after
    that. Every answer, in order."""
    old = replica_set.primary()
    if pause_writes_ms:
        with old.client() as primary:
            primary.execute_command("CLIENT", "PAUSE", pause_writes_ms, "WRITE")
    requested = time.monotonic()
    with replica_set.sentinel_nodes[0].client() as sentinel:
        sentinel.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    answers = []
    while time.monotonic() - requested < 40:
        demoted = old.replication()["role"] == "slave"
        answers.append(client.post("/v1/tokens", json=new_user(provider)))
        if demoted and answers[-1].status_code == 200:
            break
        time.sleep(0.02)
    assert demoted and answers[-1].status_code == 200, [a.status_code for a in answers]
    assert replica_set.primary_address() != old.address
    for answer in answers:
        if answer.status_code != 200:
            assert_unavailable(answer)
    return answers


def test_a_demoted_primary_is_left_for_the_new_one(settled_set, fresh_provider):
    """SENTINEL FAILOVER promotes a replica at once but demotes the old primary only seconds
    later. Its pooled connections then get READONLY, which must send the client to the new
    primary, never be a 500. Tokens from before the failover and after the demotion are kept.

    (Between the promotion and the moment the Sentinels move the other replica over, about a
    second here, that replica still follows the old primary and acknowledges its writes, which
    the demotion throws away: the window the planned-failover procedure below closes, and the
    limit of WAIT documented in docs/deploying.md.)"""
    client = create_app(sentinel_env(settled_set, fresh_provider)).test_client()
    earlier = [client.post("/v1/tokens", json=new_user(fresh_provider)) for _ in range(5)]
    assert [a.status_code for a in earlier] == [200] * 5
    answers = log_in_through_a_manual_failover(settled_set, client, fresh_provider)
    kept = [a.json["token"] for a in earlier] + [answers[-1].json["token"]]
    for token in kept:
        introspected = client.post("/v1/introspect", json={"token": token}, headers=BASIC)
        assert introspected.json["active"] is True


def test_a_planned_failover_with_writes_paused_loses_no_token(settled_set, fresh_provider):
    """The procedure docs/deploying.md gives for a planned failover: CLIENT PAUSE WRITE on the
    primary, then SENTINEL FAILOVER. No login answers 200 with a token the demotion loses."""
    client = create_app(sentinel_env(settled_set, fresh_provider)).test_client()
    answers = log_in_through_a_manual_failover(
        settled_set, client, fresh_provider, pause_writes_ms=5000
    )
    issued = [a.json["token"] for a in answers if a.status_code == 200]
    assert len(issued) > 1
    for token in issued:
        introspected = client.post("/v1/introspect", json={"token": token}, headers=BASIC)
        assert introspected.json["active"] is True


def test_a_write_no_replica_acknowledges_is_503(settled_set, fresh_provider):
    client = create_app(sentinel_env(settled_set, fresh_provider)).test_client()
    user = new_user(fresh_provider)
    token = client.post("/v1/tokens", json=user).json["token"]
    replicas = settled_set.replicas()
    for replica in replicas:
        replica.pause()
    try:
        assert_unavailable(client.post("/v1/tokens", json=user))
        assert_unavailable(client.post("/v1/revoke", json={"token": token}))
        # The client's retry finds the record gone from the primary, but the deletion is still
        # on the primary alone: a 200 now would be undone by a failover.
        assert_unavailable(client.post("/v1/revoke", json={"token": token}))
        # A token that fails its MAC check is answered before Redis is asked at all.
        forged = client.post("/v1/revoke", json={"token": "x" * 43 + "." + "y" * 43})
        assert forged.status_code == 200
    finally:
        for replica in replicas:
            replica.resume()
    wait_for(lambda: client.post("/v1/tokens", json=user).status_code == 200, timeout=10)
    assert client.post("/v1/revoke", json={"token": token}).status_code == 200
    introspected = client.post("/v1/introspect", json={"token": token}, headers=BASIC)
    assert introspected.json == {"active": False}


def test_an_admin_revocation_no_replica_acknowledges_is_503(settled_set, fresh_provider):
    """Revoking an account (a stolen phone) waits like a logout: a revocation a failover could
    lose would bring the token back, so it is a 503 until a replica holds it."""
    client = create_app(
        sentinel_env(settled_set, fresh_provider, SSO_ADMIN_CLIENTS="ops:ops-test-secret")
    ).test_client()
    admin = {"Authorization": "Basic " + base64.b64encode(b"ops:ops-test-secret").decode()}
    user = new_user(fresh_provider)
    token = client.post("/v1/tokens", json=user).json["token"]
    account = {"cloud_id": user["cloud_id"], "username": user["username"]}
    replicas = settled_set.replicas()
    for replica in replicas:
        replica.pause()
    try:
        for _ in range(2):  # the retry too: the first call's write may be on the primary alone
            assert_unavailable(
                client.post("/v1/admin/accounts/revoke", json=account, headers=admin)
            )
    finally:
        for replica in replicas:
            replica.resume()
    wait_for(
        lambda: (
            client.post("/v1/admin/accounts/revoke", json=account, headers=admin).status_code == 200
        ),
        timeout=10,
    )
    introspected = client.post("/v1/introspect", json={"token": token}, headers=BASIC)
    assert introspected.json == {"active": False}


def test_no_wait_without_min_replicas_ack(settled_set, fresh_provider):
    client = create_app(
        sentinel_env(settled_set, fresh_provider, SSO_REDIS_MIN_REPLICAS_ACK="0")
    ).test_client()
    user = new_user(fresh_provider)
    replicas = settled_set.replicas()
    for replica in replicas:
        replica.pause()
    try:
        assert client.post("/v1/tokens", json=user).status_code == 200
    finally:
        for replica in replicas:
            replica.resume()


def test_a_master_name_the_sentinels_do_not_know_is_503(settled_set, fresh_provider, user):
    env = sentinel_env(settled_set, fresh_provider, SSO_REDIS_SENTINEL_MASTER="elsewhere")
    client = create_app(env).test_client()
    body = user
    assert_unavailable(client.post("/v1/tokens", json=body))
    right = create_app(sentinel_env(settled_set, fresh_provider)).test_client()
    token = right.post("/v1/tokens", json=body).json["token"]
    assert_unavailable(client.post("/v1/introspect", json={"token": token}, headers=BASIC))
    assert_unavailable(client.post("/v1/revoke", json={"token": token}))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "redis" in ready.json["details"]


def test_every_sentinel_down_is_503(fresh_provider, user):
    env = sso_env(
        f"redis://127.0.0.1:{free_port()}/0",
        fresh_provider,
        SSO_REDIS_SENTINELS=f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}",
    )
    client = create_app(env).test_client()
    body = user
    started = time.monotonic()
    assert_unavailable(client.post("/v1/tokens", json=body))
    assert time.monotonic() - started < 10  # refused at once, not after retries with backoff


def test_a_replica_named_as_plain_url_is_503_not_500(settled_set, fresh_provider, user):
    """Without Sentinel, a URL that now points at a demoted primary gets READONLY answers."""
    replica = settled_set.replicas()[0]
    client = create_app(sso_env(f"redis://127.0.0.1:{replica.port}/0", fresh_provider))
    body = user
    assert_unavailable(client.test_client().post("/v1/tokens", json=body))


def test_the_url_still_gives_the_database(settled_set, fresh_provider, user):
    env = sentinel_env(settled_set, fresh_provider)
    env["SSO_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/3"
    client = create_app(env).test_client()
    body = user
    assert client.post("/v1/tokens", json=body).status_code == 200
    with settled_set.primary().client(db=3) as primary:
        assert primary.exists(f"sso:account:{user['cloud_id']}:{user['username']}")
