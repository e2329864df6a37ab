"""Login throttling counters in the real Redis."""

from __future__ import annotations

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


def test_account_limit_counts_failures_only(limiter_for):
    limiter = limiter_for(max_failed=2, window=120)
    limiter.check_account("C", "alice")
    limiter.record_failure("C", "alice")
    limiter.check_account("C", "alice")
    limiter.record_failure("C", "alice")
    with pytest.raises(ApiError) as caught:
        limiter.check_account("C", "alice")
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 120
    limiter.check_account("C", "bob")
    limiter.check_account("D", "alice")


def test_counters_are_shared_between_workers(limiter_for):
    first, second = limiter_for(max_failed=2), limiter_for(max_failed=2)
    first.record_failure("C", "carol")
    second.record_failure("C", "carol")
    with pytest.raises(ApiError):
        first.check_account("C", "carol")


def test_window_ends(limiter_for, redis_db):
    limiter = limiter_for(max_failed=1)
    limiter.record_failure("C", "dan")
    with pytest.raises(ApiError):
        limiter.check_account("C", "dan")
    redis_db.delete("sso:rl:fail:C:dan")  # what the window's TTL does
    limiter.check_account("C", "dan")
