"""Login throttling counters in the real Redis."""

from __future__ import annotations

import threading
import time

import pytest

from shared.errors import ApiError
from sso_service.rate_limit import LoginLimiter
from sso_service.token_store import connect


@pytest.fixture
def limiter_for(redis_db, redis_server):
    clients = []

    def build(max_failed=3, window=900, per_ip=5):
        client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
        clients.append(client)
        return LoginLimiter(client, max_failed, window, per_ip)

    yield build
    for client in clients:
        client.close()


def test_ip_limit_per_minute(limiter_for):
    limiter = limiter_for(per_ip=3)
    for _ in range(3):
        limiter.count_ip("192.0.2.1")
    with pytest.raises(ApiError) as caught:
        limiter.count_ip("192.0.2.1")
    assert caught.value.status == 429
    assert caught.value.error == "too_many_attempts"
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60
    limiter.count_ip("192.0.2.2")


def fail(limiter, cloud_id, username):
    with limiter.attempt(cloud_id, username) as attempt:
        attempt.failed()


def succeed(limiter, cloud_id, username):
    with limiter.attempt(cloud_id, username):
        pass


def test_account_limit_counts_failures_only(limiter_for):
    limiter = limiter_for(max_failed=2, window=120)
    for _ in range(5):
        succeed(limiter, "C", "alice")
    fail(limiter, "C", "alice")
    fail(limiter, "C", "alice")
    with pytest.raises(ApiError) as caught:
        succeed(limiter, "C", "alice")
    assert caught.value.status == 429
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 120
    succeed(limiter, "C", "bob")
    succeed(limiter, "D", "alice")


def test_an_attempt_without_an_outcome_is_released(limiter_for):
    limiter = limiter_for(max_failed=1)
    with pytest.raises(RuntimeError), limiter.attempt("C", "erin"):
        raise RuntimeError("ext-auth gave no answer")
    fail(limiter, "C", "erin")
    with pytest.raises(ApiError):
        succeed(limiter, "C", "erin")


def test_attempts_in_flight_count(limiter_for):
    limiter = limiter_for(max_failed=2)
    with limiter.attempt("C", "finn"), limiter.attempt("C", "finn"), pytest.raises(ApiError):
        succeed(limiter, "C", "finn")
    succeed(limiter, "C", "finn")  # both released: neither failed


@pytest.mark.parametrize(
    "spelling", ["ALICE", "Alice", " alice ", "\uff41lice", "\uff41\uff4c\uff49\uff43\uff45"]
)
def test_spellings_of_one_username_share_a_count(limiter_for, spelling):
    limiter = limiter_for(max_failed=1)
    fail(limiter, "N", "alice")
    with pytest.raises(ApiError):
        succeed(limiter, "N", spelling)


def test_concurrent_attempts_never_exceed_the_limit(limiter_for):
    limiter = limiter_for(max_failed=10)
    admitted, barrier = [], threading.Barrier(25)

    def guess():
        barrier.wait()
        try:
            with limiter.attempt("R", "race") as attempt:
                admitted.append(1)
                time.sleep(0.2)  # ext-auth thinking, outcome not yet known
                attempt.failed()
        except ApiError:
            pass

    threads = [threading.Thread(target=guess) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 10


def test_counters_are_shared_between_workers(limiter_for):
    first, second = limiter_for(max_failed=2), limiter_for(max_failed=2)
    fail(first, "C", "carol")
    fail(second, "C", "carol")
    with pytest.raises(ApiError):
        succeed(first, "C", "carol")


def test_window_ends(limiter_for):
    limiter = limiter_for(max_failed=1, window=1)
    fail(limiter, "C", "dan")
    with pytest.raises(ApiError):
        succeed(limiter, "C", "dan")
    time.sleep(1.1)
    succeed(limiter, "C", "dan")


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:192.0.2.7", "192.0.2.7", True),
        ("192.0.2.7", "192.0.2.8", False),
    ],
)
def test_addresses_are_counted_by_subscriber(limiter_for, first, second, shared):
    limiter = limiter_for(per_ip=1)
    limiter.count_ip(first)
    if shared:
        with pytest.raises(ApiError):
            limiter.count_ip(second)
    else:
        limiter.count_ip(second)
