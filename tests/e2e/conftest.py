"""Both services as real gunicorn processes serving HTTPS with certificates from a private CA,
the Contacts service verifying the SSO service's certificate, and the stand-in provider as the
External Authentication service."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
import trustme

from tests.support.clients import contacts_base_env
from tests.support.servers import PostgresDatabase, ServiceProcess
from tests.support.stack import ProviderAccount, account_factory, sso_env

BROWSER_ORIGIN = "https://webrtc.e2e.example"
# A private Redis database number, so the tokens of this suite never mix with other suites'.
REDIS_DB = 3


@dataclass
class Tls:
    ca_path: str
    cert_path: str
    key_path: str

    def args(self) -> list[str]:
        return ["--certfile", self.cert_path, "--keyfile", self.key_path]


Account = ProviderAccount


@dataclass
class Stack:
    sso: ServiceProcess
    contacts: ServiceProcess
    tls: Tls

    def session(self, origin: str | None = None) -> requests.Session:
        """What a client app holds: HTTPS with the private CA trusted, keep-alive."""
        session = requests.Session()
        session.verify = self.tls.ca_path
        session.trust_env = False
        if origin:
            session.headers["Origin"] = origin
        return session


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> Tls:
    """A private CA and a server certificate for 127.0.0.1/localhost, as PEM files."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = Tls(
        ca_path=str(directory / "ca.pem"),
        cert_path=str(directory / "server.pem"),
        key_path=str(directory / "server.key"),
    )
    ca.cert_pem.write_to_path(paths.ca_path)
    server_cert.cert_chain_pems[0].write_to_path(paths.cert_path)
    for pem in server_cert.cert_chain_pems[1:]:
        pem.write_to_path(paths.cert_path, append=True)
    server_cert.private_key_pem.write_to_path(paths.key_path)
    return paths


@pytest.fixture(scope="session")
def e2e_database():
    database = PostgresDatabase().create()
    yield database
    database.drop()


@pytest.fixture(scope="session")
def stack(tls, redis_server, e2e_database, provider):
    """SSO and Contacts under gunicorn with TLS; Contacts → SSO over verified HTTPS."""
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    sso = ServiceProcess(
        "sso_service",
        sso_env(redis_url, provider, CORS_ORIGINS=BROWSER_ORIGIN),
        extra_args=tls.args(),
    )
    sso.verify = tls.ca_path
    sso.start()
    contacts = ServiceProcess(
        "contacts_service",
        contacts_base_env(
            e2e_database.url,
            sso.url,
            CONTACTS_SSO_CA_BUNDLE=tls.ca_path,
            CORS_ORIGINS=BROWSER_ORIGIN,
        ),
        extra_args=tls.args(),
    )
    contacts.verify = tls.ca_path
    try:
        contacts.start(timeout=60)
    except Exception:
        sso.stop()
        raise
    yield Stack(sso=sso, contacts=contacts, tls=tls)
    contacts.stop()
    sso.stop()


@pytest.fixture
def new_account(provider):
    """make(cloud_id=None, phone_numbers=...) → a fresh Account registered with the provider."""
    return account_factory(provider, "E2E", "e2e.example", ("+15557000001",))
