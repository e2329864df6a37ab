"""The per-Cloud-ID gauges of the SSO's /metrics: sso_cloud_accounts and
sso_cloud_active_tokens{cloud_id}, each Cloud ID once per scrape whatever the number of workers,
read from the per-Cloud-ID keys of the Cloud IDs in `sso:clouds` (no SCAN) at most once a
minute per worker, bounded to the top Cloud IDs."""

from __future__ import annotations

import secrets

import pytest
import requests

from sso_service.admin import AccountAdmin
from sso_service.token_store import CLOUDS_KEY, TokenStore, connect
from tests.support.metrics import cloud_samples as support_cloud_samples
from tests.support.metrics import first_sample
from tests.support.servers import ServiceProcess
from tests.support.stack import login, sso_env

FIGURES = ("accounts", "active_tokens")


def cloud_samples(text: str, cloud_id: str) -> dict[str, list[float]]:
    return support_cloud_samples(text, "sso_cloud_", FIGURES, cloud_id)


sample = first_sample


@pytest.fixture(scope="module")
def fresh_sso(redis_server, provider):
    """An SSO process of its own (2 workers), so no earlier scrape filled its caches."""
    server = ServiceProcess("sso_service", sso_env(redis_server.url, provider), workers=2).start()
    yield server
    server.stop()


def users(provider, cloud_id: str, count: int) -> list[tuple[str, str]]:
    made = []
    for _ in range(count):
        username, password = "u" + secrets.token_hex(4), secrets.token_urlsafe(10)
        provider.add_user(cloud_id, username, password, [])
        made.append((username, password))
    return made


def test_gauges_show_each_cloud_once_with_its_figures(fresh_sso, fresh_provider):
    cloud_id = "M" + secrets.token_hex(5)
    tokens = [
        login(fresh_sso.url, cloud_id, username, password)["token"]
        for username, password in users(fresh_provider, cloud_id, 3)
    ]
    logout = requests.post(fresh_sso.url + "/v1/revoke", json={"token": tokens[0]}, timeout=10)
    assert logout.status_code == 200

    # New connections each time, so both workers answer some of the scrapes.
    for _ in range(6):
        response = requests.get(fresh_sso.url + "/metrics", timeout=30)
        assert response.status_code == 200
        assert cloud_samples(response.text, cloud_id) == {"accounts": [3], "active_tokens": [2]}
        assert sample(response.text, "sso_cloud_ids") >= 1
        assert 0 <= sample(response.text, "sso_cloud_stats_age_seconds") < 60


def command_calls(redis_db, command: str) -> int:
    return int(redis_db.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_scrapes_do_not_read_redis_each_time(app, client, redis_db, fresh_provider):
    clouds = ["N" + secrets.token_hex(4) for _ in range(3)]
    for cloud_id in clouds:
        for username, password in users(fresh_provider, cloud_id, 2):
            body = {"cloud_id": cloud_id, "username": username, "password": password}
            assert client.post("/v1/tokens", json=body).status_code == 200
    before = {name: command_calls(redis_db, name) for name in ("smembers", "scard", "scan")}

    texts = [client.get("/metrics").get_data(as_text=True) for _ in range(5)]

    # Five scrapes: one SMEMBERS of the Cloud IDs and one SCARD per Cloud ID, no SCAN.
    assert command_calls(redis_db, "smembers") - before["smembers"] == 1
    assert command_calls(redis_db, "scard") - before["scard"] == len(clouds)
    assert command_calls(redis_db, "scan") == before["scan"]
    for text in texts:
        for cloud_id in clouds:
            assert cloud_samples(text, cloud_id) == {"accounts": [2], "active_tokens": [2]}
        assert sample(text, "sso_cloud_ids") == len(clouds)


@pytest.fixture
def store_and_admin(redis_db, redis_server):
    client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
    yield TokenStore(client, "k" * 64, ttl_seconds=3600), AccountAdmin(client)
    client.close()


def test_only_the_top_clouds_get_series(store_and_admin):
    store, admin = store_and_admin
    for cloud_id, count in (("Big", 3), ("Mid", 2), ("Small", 1), ("Also2", 2)):
        for n in range(count):
            store.issue(cloud_id, f"u{n}", [], None)
    top = admin.top_clouds(2)
    assert top.clouds == 4
    assert top.top == [
        ("Big", {"accounts": 3, "active_tokens": 3}),
        ("Also2", {"accounts": 2, "active_tokens": 2}),  # ties in Cloud ID order
    ]
    assert [cloud_id for cloud_id, _ in admin.top_clouds(100).top] == [
        "Big",
        "Also2",
        "Mid",
        "Small",
    ]


def test_a_cloud_from_before_the_clouds_set_joins_it_on_login_or_revoke(store_and_admin, redis_db):
    store, admin = store_and_admin
    store.issue("Old", "a", [], None)
    store.issue("Older", "b", [], None)
    redis_db.delete(CLOUDS_KEY)  # as before this release
    assert admin.top_clouds(10).clouds == 0
    store.issue("Old", "a", [], None)
    assert admin.revoke("Older", "b") == 1
    assert sorted(redis_db.smembers(CLOUDS_KEY)) == ["Old", "Older"]
    assert admin.revoke("Never", "seen") is None
    assert "Never" not in redis_db.smembers(CLOUDS_KEY)
