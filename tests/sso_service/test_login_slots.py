"""The per-worker login slots: a total bound and a smaller one per Cloud ID."""

from __future__ import annotations

import threading

import pytest

from shared.config import ConfigError
from sso_service.login_slots import LoginSlots
from sso_service.settings import Settings


def test_one_cloud_takes_at_most_its_share_and_others_get_the_rest():
    slots = LoginSlots(total=4, per_cloud=3)
    assert [slots.acquire("SLOW") for _ in range(4)] == [None, None, None, "cloud"]
    assert slots.acquire("OTHER") is None
    assert slots.acquire("THIRD") == "total"
    slots.release("SLOW")
    assert slots.acquire("THIRD") is None


FULLWIDTH_ACME = "\uff41\uff43\uff4d\uff45"  # NFKC-equal to "acme"


def test_cloud_ids_share_a_share_whatever_their_case_or_width():
    slots = LoginSlots(total=10, per_cloud=2)
    assert slots.acquire("Acme") is None
    assert slots.acquire("ACME") is None
    assert slots.acquire(FULLWIDTH_ACME) == "cloud"
    slots.release("acme")
    assert slots.acquire(FULLWIDTH_ACME) is None


def test_the_bounds_hold_under_concurrency():
    slots = LoginSlots(total=8, per_cloud=5)
    start = threading.Barrier(40)
    taken: list[str] = []
    lock = threading.Lock()

    def take(cloud: str) -> None:
        start.wait()
        if slots.acquire(cloud) is None:
            with lock:
                taken.append(cloud)

    threads = [threading.Thread(target=take, args=("A" if n % 4 else "B",)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 8
    assert taken.count("A") <= 5 and taken.count("B") <= 5
    for cloud in taken:
        slots.release(cloud)
    assert slots.acquire("C") is None


BASE = {"SSO_TOKEN_SECRET": "x" * 40, "SSO_INTROSPECTION_CLIENTS": "c:secret"}


@pytest.mark.parametrize(
    ("environ", "total", "per_cloud"),
    [
        ({}, 24, 18),
        ({"SSO_MAX_CONCURRENT_LOGINS": "4"}, 4, 3),
        ({"SSO_MAX_CONCURRENT_LOGINS": "1"}, 1, 1),
        ({"SSO_MAX_CONCURRENT_LOGINS": "8", "SSO_MAX_CONCURRENT_LOGINS_PER_CLOUD": "8"}, 8, 8),
    ],
)
def test_the_share_of_one_cloud_defaults_to_three_quarters(environ, total, per_cloud):
    settings = Settings.from_env({**BASE, **environ})
    assert (settings.max_concurrent_logins, settings.max_concurrent_logins_per_cloud) == (
        total,
        per_cloud,
    )


def test_a_share_above_the_total_is_a_config_error():
    with pytest.raises(ConfigError, match="SSO_MAX_CONCURRENT_LOGINS_PER_CLOUD"):
        Settings.from_env(
            {**BASE, "SSO_MAX_CONCURRENT_LOGINS": "4", "SSO_MAX_CONCURRENT_LOGINS_PER_CLOUD": "5"}
        )
