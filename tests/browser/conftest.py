"""The reference web client (deploy/demo/web/) in headless Chromium, against both services as
real gunicorn processes over HTTPS, with real CORS.

Everything is HTTPS with certificates from a private trustme CA: the services (as in
tests/e2e), and the page's static server (deploy/demo/web_server.py, a real process). Chromium
trusts exactly these certificates through --ignore-certificate-errors-spki-list with their
public-key hashes, not through a blanket --ignore-certificate-errors. The page's origin is the
services' only CORS origin; a second copy of the page on another port is an origin they do not
list. The demo provider is the External Authentication service. Chromium and chromedriver are
Debian packages that scripts/services.sh (`make test`) installs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.webdriver.chrome.options import Options as ChromeOptions
from selenium.webdriver.chrome.service import Service as ChromeService

from tests.browser.page import WebClient
from tests.support.clients import ContactsClient, contacts_base_env
from tests.support.servers import ROOT, PostgresDatabase, ServiceProcess, free_port, wait_for
from tests.support.stack import ProviderAccount, account_factory, sso_env

# A Redis database number of its own, so this suite's tokens never mix with other suites'.
REDIS_DB = 4
# Short enough that the stream's token re-check shows within a test's patience; the contract's
# bound (at least every 30 s) is the service's default.
REINTROSPECT_SECONDS = 3
SCREENSHOTS = (
    Path(os.environ["PYTEST_OUTPUT"]) / "browser-screenshots"
    if os.environ.get("PYTEST_OUTPUT")
    else ROOT / "tests" / "browser" / "screenshots"
)


@dataclass
class BrowserTls:
    ca_path: str
    cert_path: str
    key_path: str
    spki_hashes: list[str]

    def args(self) -> list[str]:
        return ["--certfile", self.cert_path, "--keyfile", self.key_path]


def spki_hash(pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): how Chromium names a key it should accept."""
    certificate = x509.load_pem_x509_certificate(pem)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="session")
def browser_tls(tmp_path_factory) -> BrowserTls:
    directory = tmp_path_factory.mktemp("browser-tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    tls = BrowserTls(
        ca_path=str(directory / "ca.pem"),
        cert_path=str(directory / "server.pem"),
        key_path=str(directory / "server.key"),
        # The server's key and the CA's: Chromium accepts a chain in which either appears.
        spki_hashes=[spki_hash(server.cert_chain_pems[0].bytes()), spki_hash(ca.cert_pem.bytes())],
    )
    ca.cert_pem.write_to_path(tls.ca_path)
    server.cert_chain_pems[0].write_to_path(tls.cert_path)
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(tls.cert_path, append=True)
    server.private_key_pem.write_to_path(tls.key_path)
    return tls


class WebServerProcess:
    """deploy/demo/web_server.py over HTTPS, as a real process (what `make run` starts)."""

    def __init__(self, tls: BrowserTls, port: int | None = None):
        self.tls = tls
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="cs-web-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, sso_url: str, contacts_url: str) -> WebServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, str(ROOT / "deploy" / "demo" / "web_server.py"),
                    "--port", str(self.port),
                    "--sso-url", sso_url,
                    "--contacts-url", contacts_url,
                    *self.tls.args(),
                ],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def serving():
            if self.process.poll() is not None:
                raise RuntimeError(f"web server exited:\n{self.log_path.read_text()}")
            return requests.get(self.url + "/config.json", timeout=2, verify=self.tls.ca_path).ok

        wait_for(serving, timeout=20, what="the web client's server")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


Account = ProviderAccount


@dataclass
class BrowserStack:
    sso: ServiceProcess
    contacts: ServiceProcess
    page: WebServerProcess
    foreign_page: WebServerProcess
    tls: BrowserTls

    def session(self) -> requests.Session:
        session = requests.Session()
        session.verify = self.tls.ca_path
        session.trust_env = False
        return session

    def login(self, account: Account) -> Account:
        """What the phone app does first: POST /v1/tokens (the page gets the same token)."""
        response = self.session().post(
            self.sso.url + "/v1/tokens",
            json={
                "cloud_id": account.cloud_id,
                "username": account.username,
                "password": account.password,
            },
            timeout=15,
        )
        assert response.status_code == 200, response.text
        account.token = response.json()["token"]
        return account

    def phone(self, account: Account) -> ContactsClient:
        """The Contacts API as the phone app of `account` (logged in)."""
        if account.token is None:
            self.login(account)
        return ContactsClient(self.contacts.url, account=account, session=self.session())

    def revoke(self, token: str) -> None:
        response = self.session().post(
            self.sso.url + "/v1/revoke", json={"token": token}, timeout=15
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="session")
def browser_database():
    database = PostgresDatabase().create()
    yield database
    database.drop()


@pytest.fixture(scope="session")
def browser_stack(browser_tls, redis_server, browser_database, provider):
    page = WebServerProcess(browser_tls)
    foreign_page = WebServerProcess(browser_tls)
    redis_url = redis_server.url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    sso = ServiceProcess(
        "sso_service",
        sso_env(redis_url, provider, CORS_ORIGINS=page.url),
        extra_args=browser_tls.args(),
    )
    sso.verify = browser_tls.ca_path
    contacts = ServiceProcess(
        "contacts_service",
        contacts_base_env(
            browser_database.url,
            sso.url,
            CONTACTS_SSO_CA_BUNDLE=browser_tls.ca_path,
            CONTACTS_EVENTS_REINTROSPECT_SECONDS=REINTROSPECT_SECONDS,
            CORS_ORIGINS=page.url,
        ),
        extra_args=browser_tls.args(),
    )
    contacts.verify = browser_tls.ca_path
    started = []
    try:
        for part in (sso, contacts):
            part.start(timeout=60)
            started.append(part)
        for web in (page, foreign_page):
            web.start(sso.url, contacts.url)
            started.append(web)
        yield BrowserStack(sso, contacts, page, foreign_page, browser_tls)
    finally:
        for part in reversed(started):
            part.stop()


@pytest.fixture
def contacts_restartable(browser_stack):
    """For a test that stops the Contacts service: it runs again afterwards, whatever happens."""
    yield browser_stack.contacts
    if browser_stack.contacts.process is None or browser_stack.contacts.process.poll() is not None:
        browser_stack.contacts.start(timeout=60)


@pytest.fixture
def new_account(provider):
    """make(phone_numbers=..., cloud_id=None) → a fresh Account registered with the provider;
    accounts of one test share a Cloud ID unless told otherwise."""
    make = account_factory(provider, "WEB", "web.example", ("+15557100001",))
    return lambda phone_numbers=("+15557100001",), cloud_id=None: make(cloud_id, phone_numbers)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if not browser or not driver:
        raise RuntimeError(
            "chromium and chromedriver are not installed: run `make services` "
            "(scripts/services.sh installs the Debian packages chromium and chromium-driver)"
        )
    return browser, driver


@pytest.fixture
def browser(request, browser_tls, browser_stack):
    """A fresh headless Chromium (empty profile, so empty storage) per test; a screenshot of
    its last state is saved after the test, passed or failed."""
    binary, driver_path = chromium_paths()
    options = ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--window-size=1100,720",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--no-proxy-server",
        f"--ignore-certificate-errors-spki-list={','.join(browser_tls.spki_hashes)}",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        # Chromium refuses to start as root with its sandbox on (CI runs as root).
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log_path = Path(tempfile.mkstemp(prefix="cs-chromedriver-", suffix=".log")[1])
    service = ChromeService(executable_path=driver_path, log_output=str(log_path))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    client = WebClient(driver, browser_stack.page.url, SCREENSHOTS)
    try:
        yield client
    finally:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
        try:
            client.screenshot(f"{name}-end")
        finally:
            driver.quit()
