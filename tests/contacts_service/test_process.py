"""The service as real gunicorn processes: concurrent writers, an SSO outage, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.contacts_service.conftest import contacts_env
from tests.support.clients import ContactsClient
from tests.support.servers import ROOT, PostgresDatabase, ServiceProcess
from tests.support.stack import login, sso_env


def test_eight_concurrent_patches_to_one_device_are_all_applied(alice):
    alice.register("shared")
    alice.upsert("shared", [{"contactId": "base"}])  # revision 1
    barrier_size = 8

    def writer(n: int) -> dict:
        session_api = ContactsClient(alice.base_url, account=alice.account)
        contacts = [{"contactId": f"w{n}-{i}", "fname": f"writer {n}"} for i in range(25)]
        # Every writer also edits the shared contact, so the writes truly contend.
        contacts.append({"contactId": "base", "fname": f"by {n}"})
        return session_api.upsert("shared", contacts)

    with ThreadPoolExecutor(max_workers=barrier_size) as pool:
        results = list(pool.map(writer, range(barrier_size)))

    revisions = sorted(result["revision"] for result in results)
    assert revisions == list(range(2, 2 + barrier_size))  # no revision repeats, none lost
    assert all(result["upserted"] == 26 for result in results)
    device = alice.get("/v1/devices/shared").json()
    assert device["revision"] == 1 + barrier_size
    assert device["contact_count"] == 1 + 25 * barrier_size
    ids = {c["contactId"] for c in alice.contacts("shared")["contacts"]}
    assert ids == {"base"} | {f"w{n}-{i}" for n in range(barrier_size) for i in range(25)}
    # since the revision before the last writer shows exactly that writer's work.
    last = max(results, key=lambda r: r["revision"])
    changed = alice.contacts("shared", since=last["revision"] - 1)["contacts"]
    assert len(changed) == 26


@pytest.fixture
def private_stack(redis_server, provider, contacts_config):
    """A private SSO process (so stopping it disturbs nobody) and a Contacts process using it."""
    sso = ServiceProcess("sso_service", sso_env(redis_server.url, provider), workers=1).start()
    contacts = None
    try:
        contacts = ServiceProcess(
            "contacts_service",
            {**contacts_config, "CONTACTS_SSO_URL": sso.url, "CONTACTS_SSO_TIMEOUT_SECONDS": "1"},
            workers=1,
        ).start()
        yield sso, contacts
    finally:
        if contacts:
            contacts.stop()
        sso.stop()


def test_sso_down_is_503_auth_unavailable_then_recovers(private_stack, provider, cloud_id):
    sso, contacts = private_stack
    provider.add_user(cloud_id, "outage", "pw-outage", ["+15551230100"])
    token = login(sso.url, cloud_id, "outage", "pw-outage")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        requests.put(contacts.url + "/v1/devices/d", headers=headers, timeout=10).status_code == 201
    )

    sso.stop()
    down = requests.get(contacts.url + "/v1/devices/d", headers=headers, timeout=10)
    assert down.status_code == 503
    assert down.json()["error"] == "auth_unavailable"
    assert down.json()["message"]
    write = requests.patch(
        contacts.url + "/v1/devices/d/contacts",
        headers=headers,
        json={"upsert": [{"contactId": "x"}]},
        timeout=10,
    )
    assert write.status_code == 503
    ready = requests.get(contacts.url + "/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["error"] == "unavailable"
    assert "sso" in ready.json()["details"]

    sso.start()
    again = requests.get(contacts.url + "/v1/devices/d", headers=headers, timeout=10)
    assert again.status_code == 200
    assert again.json()["contact_count"] == 0  # the write during the outage never happened
    assert requests.get(contacts.url + "/readyz", timeout=10).status_code == 200


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "contacts_service", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_command_is_idempotent(contacts_config):
    result = _cli("migrate", env=contacts_config)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_check_config(contacts_config):
    assert _cli("check-config", env=contacts_config).returncode == 0
    missing = _cli("check-config", env={**contacts_config, "CONTACTS_SSO_CLIENT_SECRET": ""})
    assert missing.returncode == 1
    assert "CONTACTS_SSO_CLIENT_SECRET" in missing.stderr
    wrong = _cli("check-config", env={**contacts_config, "CONTACTS_SSO_CLIENT_SECRET": "nope"})
    assert wrong.returncode == 1
    assert "SSO" in wrong.stderr and "401" in wrong.stderr
    unreachable = _cli(
        "check-config",
        env={**contacts_config, **contacts_env(
            "postgresql://nobody:x@127.0.0.1:1/none", "http://127.0.0.1:1"
        )},
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert "PostgreSQL" in unreachable.stderr and "SSO" in unreachable.stderr


# Passwords with an unescaped "@" (and a quote): libpq reads what follows the "@" as the host
# name and quotes it back in its error.
LEAKY_URLS = [
    "postgresql://contacts:s3cr@tpart@127.0.0.1:1/contacts",
    'postgresql://contacts:p@ss"word@db.example.invalid/contacts',
]


@pytest.mark.parametrize("url", LEAKY_URLS)
def test_check_config_and_migrate_never_repeat_the_database_url(contacts_config, url):
    """An unreachable database is reported in fixed words: the driver's message (which quotes
    the host it was given, here part of the password) and its traceback are not printed."""
    env = {**contacts_config, "CONTACTS_DATABASE_URL": url}
    checked = _cli("check-config", env=env)
    assert checked.returncode == 1
    assert "PostgreSQL at CONTACTS_DATABASE_URL is not reachable: host name not found" in (
        checked.stderr
    )
    migrated = _cli("migrate", env=env)
    assert migrated.returncode == 2
    assert "is not reachable: host name not found" in migrated.stderr
    for output in (checked.stdout + checked.stderr, migrated.stdout + migrated.stderr):
        assert "tpart" not in output and "word@" not in output and "Traceback" not in output


def test_a_database_not_in_utf8_is_refused_before_serving(contacts_config):
    """In LATIN1 the first contact with an emoji would fail its upload (it was a 500):
    check-config says so, and migrate (which serve runs first) refuses to start."""
    latin1 = PostgresDatabase().create(encoding="LATIN1")
    try:
        env = {**contacts_config, "CONTACTS_DATABASE_URL": latin1.url}
        checked = _cli("check-config", env=env)
        assert checked.returncode == 1
        assert "LATIN1" in checked.stderr and "UTF8" in checked.stderr
        migrated = _cli("migrate", env=env)
        assert migrated.returncode == 2
        assert "LATIN1" in migrated.stderr and "Traceback" not in migrated.stderr
    finally:
        latin1.drop()


def test_serve_migrates_a_fresh_database_first(contacts_config, new_account):
    fresh = PostgresDatabase().create()
    server = None
    try:
        server = ServiceProcess(
            "contacts_service", {**contacts_config, "CONTACTS_DATABASE_URL": fresh.url}, workers=1
        ).start()
        assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
        me = ContactsClient(server.url, account=new_account())
        assert me.put("/v1/devices/fresh").status_code == 201
        assert me.upsert("fresh", [{"contactId": "a"}])["revision"] == 1
    finally:
        if server:
            server.stop()
        fresh.drop()


def test_https_sso_verified_with_a_private_ca(redis_server, provider, contacts_config, tmp_path):
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    certificate.private_key_pem.write_to_path(str(key_file))
    authority.cert_pem.write_to_path(str(ca_file))
    sso = ServiceProcess(
        "sso_service",
        sso_env(redis_server.url, provider),
        workers=1,
        extra_args=["--certfile", str(cert_file), "--keyfile", str(key_file)],
    )
    sso.verify = str(ca_file)
    sso.start()
    verified = unverified = None
    try:
        verified = ServiceProcess(
            "contacts_service",
            {
                **contacts_config,
                "CONTACTS_SSO_URL": sso.url,
                "CONTACTS_SSO_CA_BUNDLE": str(ca_file),
            },
            workers=1,
        ).start()
        unverified = ServiceProcess(
            "contacts_service", {**contacts_config, "CONTACTS_SSO_URL": sso.url}, workers=1
        ).start()
        provider.add_user("TLS", "tls-user", "tls-pw", [])
        token = requests.post(
            sso.url + "/v1/tokens",
            json={"cloud_id": "TLS", "username": "tls-user", "password": "tls-pw"},
            verify=str(ca_file),
            timeout=10,
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(verified.url + "/v1/devices", headers=headers, timeout=10).ok
        # Without the CA bundle the SSO's certificate is not trusted: no data, a 503.
        refused = requests.get(unverified.url + "/v1/devices", headers=headers, timeout=10)
        assert refused.status_code == 503
        assert refused.json()["error"] == "auth_unavailable"
    finally:
        for process in (verified, unverified):
            if process:
                process.stop()
        sso.stop()


def test_serve_refuses_to_start_without_its_secret(contacts_config):
    result = _cli("serve", env={**contacts_config, "CONTACTS_SSO_CLIENT_SECRET": ""})
    assert result.returncode == 2
    assert "CONTACTS_SSO_CLIENT_SECRET is required" in result.stderr
