"""The per-Cloud-ID gauges of the Contacts service's /metrics: contacts_cloud_accounts,
contacts_cloud_devices and contacts_cloud_contacts{cloud_id}, each Cloud ID once per scrape
whatever the number of workers, from one grouped query at most once a minute per worker (never
a scan per scrape), bounded to the top Cloud IDs."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import event

from contacts_service import admin
from contacts_service.app import create_app
from contacts_service.extensions import db
from tests.support.clients import ContactsClient
from tests.support.metrics import cloud_samples as support_cloud_samples
from tests.support.metrics import first_sample
from tests.support.servers import ServiceProcess, free_port

FIGURES = ("accounts", "devices", "contacts")


def cloud_samples(text: str, cloud_id: str) -> dict[str, list[float]]:
    return support_cloud_samples(text, "contacts_cloud_", FIGURES, cloud_id)


sample = first_sample


@pytest.fixture(scope="module")
def fresh_server(contacts_config):
    """A Contacts process of its own (2 workers), so no earlier scrape filled its caches."""
    server = ServiceProcess("contacts_service", contacts_config, workers=2).start()
    yield server
    server.stop()


def fill(base_url: str, new_account, cloud_id: str) -> None:
    """Two accounts of the Cloud ID: 3 devices, 4 contacts."""
    first = ContactsClient(base_url, account=new_account(cloud=cloud_id))
    second = ContactsClient(base_url, account=new_account(cloud=cloud_id))
    first.register("a")
    first.upsert("a", [{"contactId": str(n)} for n in range(3)])
    first.register("b")
    first.upsert("b", [{"contactId": "x"}])
    second.register("c")


def test_gauges_show_each_cloud_once_with_its_figures(fresh_server, new_account, cloud_id):
    fill(fresh_server.url, new_account, cloud_id)
    other = "Other" + cloud_id
    ContactsClient(fresh_server.url, account=new_account(cloud=other)).register("phone")

    # New connections each time, so both workers answer some of the scrapes.
    for _ in range(6):
        response = requests.get(fresh_server.url + "/metrics", timeout=30)
        assert response.status_code == 200
        text = response.text
        assert cloud_samples(text, cloud_id) == {"accounts": [2], "devices": [3], "contacts": [4]}
        assert cloud_samples(text, other) == {"accounts": [1], "devices": [1], "contacts": [0]}
        assert sample(text, "contacts_cloud_ids") >= 2
        assert 0 <= sample(text, "contacts_cloud_stats_age_seconds") < 60


@pytest.fixture
def counted_app(contacts_config):
    """The app in-process, with every SQL statement it sends recorded."""
    app = create_app(contacts_config)
    statements: list[str] = []
    with app.app_context():
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *rest: statements.append(statement),
        )
    app.statements = statements
    yield app
    with app.app_context():
        db.engine.dispose()


def test_scrapes_do_not_scan_the_tables_each_time(counted_app, api, new_account, cloud_id):
    fill(api.base_url, new_account, cloud_id)
    client = counted_app.test_client()
    texts = [client.get("/metrics").get_data(as_text=True) for _ in range(5)]

    # Five scrapes, one read of the accounts table: the grouped query of every Cloud ID.
    reads = [s for s in counted_app.statements if "FROM accounts" in s]
    assert len(reads) == 1, counted_app.statements
    assert "GROUP BY a.cloud_id" in reads[0]
    for text in texts:
        assert cloud_samples(text, cloud_id) == {"accounts": [2], "devices": [3], "contacts": [4]}


def test_figures_are_refreshed_once_they_are_a_minute_old(app, api, new_account, cloud_id):
    now = [1000.0]
    gauges = admin.cloud_gauges(clock=lambda: now[0])
    client = api.as_(new_account(cloud=cloud_id))
    client.register("first")

    def figures():
        with app.app_context():
            return {
                f.name: [s.value for s in f.samples if s.labels == {"cloud_id": cloud_id}]
                for f in gauges.collect()
            }

    assert figures()["contacts_cloud_devices"] == [1]
    client.register("second")
    now[0] += 59
    assert figures()["contacts_cloud_devices"] == [1]  # the cached figures
    assert gauges.loads == 1
    now[0] += 2
    assert figures()["contacts_cloud_devices"] == [2]
    assert gauges.loads == 2


def test_only_the_top_clouds_get_series(app, api, new_account, cloud_id):
    big, small = "Big" + cloud_id, "Small" + cloud_id
    for _ in range(3):
        api.as_(new_account(cloud=big)).register("phone")
    api.as_(new_account(cloud=small)).register("phone")
    with app.app_context():
        everything = admin.top_clouds(10_000)
        top = admin.top_clouds(1)
    assert everything.clouds == top.clouds >= 2
    assert len(top.top) == 1
    # The Cloud ID with most accounts comes first; this one's 3 may be beaten by other tests'.
    counts = [figures["accounts"] for _, figures in everything.top]
    assert counts == sorted(counts, reverse=True)
    assert dict(everything.top)[big] == {"accounts": 3, "devices": 3, "contacts": 0}
    assert dict(everything.top)[small]["accounts"] == 1


def test_a_failed_refresh_keeps_the_last_figures(app, contacts_config, api, new_account, cloud_id):
    api.as_(new_account(cloud=cloud_id)).register("phone")
    # The same service with nothing listening where its database should be.
    unreachable = create_app(
        {**contacts_config, "CONTACTS_DATABASE_URL": f"postgresql://x:y@127.0.0.1:{free_port()}/x"}
    )
    now = [0.0]
    gauges = admin.cloud_gauges(clock=lambda: now[0])

    def collect(application) -> dict:
        with application.app_context():
            return {family.name: family.samples for family in gauges.collect()}

    first = collect(app)
    assert any(s.labels == {"cloud_id": cloud_id} for s in first["contacts_cloud_accounts"])
    now[0] += 61
    second = collect(unreachable)  # the scrape still answers, with the older figures
    assert gauges.loads == 2
    assert second["contacts_cloud_accounts"] == first["contacts_cloud_accounts"]
    assert second["contacts_cloud_stats_age_seconds"][0].value == pytest.approx(61)
    now[0] += 30
    collect(unreachable)
    assert gauges.loads == 2  # no new attempt before the minute is over
    now[0] += 31
    assert collect(app)["contacts_cloud_stats_age_seconds"][0].value == 0
    assert gauges.loads == 3
