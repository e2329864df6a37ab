"""The single-file binaries, run as a provider runs them: built by deploy/binaries/build.sh,
started from dist/ with env config against real Redis, PostgreSQL and the stand-in provider.

Building takes a minute or two per binary; binaries newer than every source file are reused.
CONTACTSYNC_REBUILD_BINARIES=1 forces a build.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess

import pytest
import requests

from tests.support.clients import contacts_base_env
from tests.support.servers import ROOT, ServiceProcess
from tests.support.stack import sso_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

DIST = ROOT / "dist"
NAMES = ("sso-server", "contacts-server")
SOURCES = ("shared", "sso_service", "contacts_service", "deploy/binaries", "pyproject.toml")
REDIS_DB = 5


def newest_source_mtime() -> float:
    newest = 0.0
    for source in SOURCES:
        path = ROOT / source
        files = [path] if path.is_file() else path.rglob("*")
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                newest = max(newest, file.stat().st_mtime)
    return newest


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict[str, str]:
    """Fresh binaries, copied out of dist/: a running one-file binary re-reads its own file
    for lazy imports, so a concurrent rebuild of dist/ must not swap it underneath us."""
    paths = {name: DIST / name for name in NAMES}
    stale = os.environ.get("CONTACTSYNC_REBUILD_BINARIES") == "1" or any(
        not path.exists() or path.stat().st_mtime < newest_source_mtime() for path in paths.values()
    )
    if stale:
        build = subprocess.run(
            ["bash", str(ROOT / "deploy" / "binaries" / "build.sh")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1100,
        )
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    private = tmp_path_factory.mktemp("bin")
    copies = {}
    for name, path in paths.items():
        assert os.access(path, os.X_OK), f"{path} was not built"
        copies[name] = str(shutil.copy2(path, private / name))
    return copies


@pytest.fixture(scope="module")
def cloud(provider) -> dict:
    cloud_id = f"BIN-{secrets.token_hex(3)}"
    user = {"cloud_id": cloud_id, "username": "alice", "password": "bin & 'secret' %"}
    provider.add_user(cloud_id, "alice", user["password"], ["+15558000001"], "sip:alice@bin")
    provider.add_user(cloud_id, "bob", "bob-bin-secret", ["+442071838750"], "sip:bob@bin")
    return user


@pytest.fixture(scope="module")
def sso_config(redis_server, provider) -> dict[str, str]:
    return sso_env(redis_server.url.rsplit("/", 1)[0] + f"/{REDIS_DB}", provider)


def run(binary: str, *args: str, env: dict[str, str] | None = None):
    # Only what a provider would set: no PYTHONPATH, no virtualenv, a clean environment.
    base = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "TMPDIR": "/tmp"}
    return subprocess.run(
        [binary, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def binary_process(binary: str, env: dict[str, str]) -> ServiceProcess:
    process = ServiceProcess(os.path.basename(binary), env, workers=2)
    process.command = [binary]
    return process


@pytest.mark.parametrize("name", NAMES)
def test_binary_prints_its_version(binaries, name):
    result = run(binaries[name], "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"{name} 0.1.0"


def test_check_config_accepts_good_settings(binaries, sso_config, postgres_database):
    sso = run(binaries["sso-server"], "check-config", env=sso_config)
    assert (sso.returncode, sso.stdout.strip()) == (0, "sso-server: configuration OK"), sso.stderr

    with running(binaries["sso-server"], sso_config) as sso_server:
        config = contacts_base_env(postgres_database.url, sso_server.url)
        contacts = run(binaries["contacts-server"], "check-config", env=config)
    assert contacts.returncode == 0, contacts.stderr
    assert contacts.stdout.strip() == "contacts-server: configuration OK"


@pytest.mark.parametrize(
    ("name", "broken", "message"),
    [
        ("sso-server", {"SSO_TOKEN_SECRET": ""}, "SSO_TOKEN_SECRET is required"),
        ("sso-server", {"SSO_TOKEN_TTL_SECONDS": "soon"}, "SSO_TOKEN_TTL_SECONDS"),
        ("sso-server", {"SSO_REDIS_URL": "redis://127.0.0.1:9/0"}, "Redis"),
        ("contacts-server", {"CONTACTS_SSO_CLIENT_SECRET": ""}, "CONTACTS_SSO_CLIENT_SECRET"),
        ("contacts-server", {"CONTACTS_DATABASE_URL": "mysql://x/y"}, "CONTACTS_DATABASE_URL"),
        ("contacts-server", {"CONTACTS_SSO_URL": "http://127.0.0.1:9"}, "SSO"),
    ],
)
def test_check_config_names_what_is_wrong(
    binaries, sso_config, postgres_database, name, broken, message
):
    good = (
        sso_config
        if name == "sso-server"
        else contacts_base_env(postgres_database.url, "http://127.0.0.1:9")
    )
    result = run(binaries[name], "check-config", env={**good, **broken})
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.startswith(f"{name}: ")


class running:
    """Context manager: a binary serving on a free port until the block ends."""

    def __init__(self, binary: str, env: dict[str, str]):
        self.process = binary_process(binary, env)

    def __enter__(self) -> ServiceProcess:
        return self.process.start(timeout=60)

    def __exit__(self, *exc_info):
        self.process.stop()


def test_binaries_serve_login_upload_and_fetch(
    binaries, sso_config, postgres_database, cloud, tmp_path
):
    migrate = run(
        binaries["contacts-server"],
        "migrate",
        env=contacts_base_env(postgres_database.url, "http://127.0.0.1:9"),
    )
    assert migrate.returncode == 0, migrate.stderr

    with running(binaries["sso-server"], sso_config) as sso:
        config = contacts_base_env(postgres_database.url, sso.url)
        with running(binaries["contacts-server"], config) as contacts:
            login = requests.post(
                f"{sso.url}/v1/tokens",
                data={k: cloud[k] for k in ("cloud_id", "username", "password")},
                timeout=15,
            )
            assert login.status_code == 200, sso.log()
            assert login.json()["account"]["phone_numbers"] == ["+15558000001"]
            auth = {"Authorization": f"Bearer {login.json()['token']}"}

            # Bob's request teaches Contacts his verified number (for Smart Contacts below).
            bob = requests.post(
                f"{sso.url}/v1/tokens",
                data={
                    "cloud_id": cloud["cloud_id"],
                    "username": "bob",
                    "password": "bob-bin-secret",
                },
                timeout=15,
            ).json()["token"]
            requests.get(
                f"{contacts.url}/v1/devices", headers={"Authorization": f"Bearer {bob}"}, timeout=10
            ).raise_for_status()

            device = requests.put(f"{contacts.url}/v1/devices/bin-phone", headers=auth, timeout=10)
            assert device.status_code == 201, contacts.log()
            book = [
                {
                    "contactId": "c-1",
                    "displayName": "Zoë",
                    "countryCode": "gb",
                    "contactEntries": [
                        {"entryId": "e1", "label": "m", "type": "tel", "uri": "020 7183 8750"}
                    ],
                },
                {"contactId": "c-2", "displayName": "Yann", "unknownKey": [1, {"x": None}]},
            ]
            upload = requests.put(
                f"{contacts.url}/v1/devices/bin-phone/contacts",
                json={"contacts": book},
                headers=auth,
                timeout=30,
            )
            assert upload.status_code == 200, contacts.log()
            assert upload.json()["contact_count"] == 2

            fetched = requests.get(
                f"{contacts.url}/v1/devices/bin-phone/contacts", headers=auth, timeout=30
            )
            assert fetched.status_code == 200
            stripped = [
                {k: v for k, v in c.items() if k != "checksum"} for c in fetched.json()["contacts"]
            ]
            assert sorted(stripped, key=lambda c: c["contactId"]) == book
            # A national number resolved with the contact's countryCode (bundled region data).
            assert fetched.json()["smart"] == {
                "c-1": [
                    {
                        "entryId": "e1",
                        "number": "+442071838750",
                        "username": "bob",
                        "sip_uri": "sip:bob@bin",
                    }
                ]
            }

            for service in (sso, contacts):
                assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
                metrics = requests.get(f"{service.url}/metrics", timeout=10)
                assert metrics.status_code == 200

    for log in (sso.log(), contacts.log()):
        assert "Traceback" not in log
        assert "Worker failed to boot" not in log
