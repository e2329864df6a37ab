"""HTTP clients of the real services for the fault, hostile-input and load suites.

`contacts_base_env()` configures a Contacts process against a database and an SSO process,
`contacts_env()` the same with short timeouts;
`ContactsClient` speaks the Contacts API as one account (every suite's one client);
`ERROR_KEYS` and `is_error_shape()` check the one error body both services use.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import requests

from tests.support.stack import INTROSPECTION_CLIENT

ERROR_KEYS = {"error", "message", "details"}


def contacts_base_env(database_url: str, sso_url: str, **overrides) -> dict[str, str]:
    """The settings a Contacts process needs on this database, introspecting at this SSO;
    everything else at the service's defaults."""
    client_id, client_secret = INTROSPECTION_CLIENT
    env = {
        "CONTACTS_DATABASE_URL": database_url,
        "CONTACTS_SSO_URL": sso_url,
        "CONTACTS_SSO_CLIENT_ID": client_id,
        "CONTACTS_SSO_CLIENT_SECRET": client_secret,
        "LOG_LEVEL": "INFO",
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def contacts_env(database_url: str, sso_url: str, **overrides) -> dict[str, str]:
    """Environment for a real Contacts process on this database, introspecting at this SSO,
    with short SSO and statement timeouts so a hung dependency shows within seconds."""
    timeouts = {"CONTACTS_SSO_TIMEOUT_SECONDS": "2", "CONTACTS_DB_STATEMENT_TIMEOUT_SECONDS": "3"}
    return contacts_base_env(database_url, sso_url, **{**timeouts, **overrides})


def is_error_shape(response: requests.Response) -> bool:
    """The body is the one error shape: error (snake_case), message (str), optional details."""
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) <= ERROR_KEYS
        and isinstance(body.get("error"), str)
        and body["error"].replace("_", "").isalnum()
        and body["error"] == body["error"].lower()
        and isinstance(body.get("message"), str)
        and isinstance(body.get("details", {}), dict)
    )


class ContactsClient:
    """Requests to one Contacts service as one account (or anonymously): the one client of the
    Contacts, fault, hostile-input and end-to-end suites.

    - `request`, `get`, `put`, `patch`, `delete` take a path and requests' keyword arguments
      and return the response, whatever its status.
    - Calls on one device return the response too: `put_device`, `patch_contacts`,
      `put_contacts`, `get_contacts`.
    - Shortcuts for the expected outcome assert the status and return the JSON: `register`
      (201, a new device), `upsert` (200), `contacts` (200), `book` (200, by contactId).

    The token is `token`, else that of `account` (kept as `.account` for the tests' use).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        account=None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token if token is not None or account is None else account.token
        self.account = account
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            session.trust_env = False
        self.session = session

    def as_(self, account) -> ContactsClient:
        """The same service and connection pool, as `account` (None: anonymously)."""
        return ContactsClient(
            self.base_url, account=account, session=self.session, timeout=self.timeout
        )

    # --- HTTP verbs on a path -----------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", None) or {})
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # --- one device, the response as it comes -------------------------------------------------

    def put_device(self, device_id: str, **body) -> requests.Response:
        return self.put(f"/v1/devices/{device_id}", json=body)

    def patch_contacts(self, device_id: str, upsert=(), delete=()) -> requests.Response:
        return self.patch(
            f"/v1/devices/{device_id}/contacts",
            json={"upsert": list(upsert), "delete": list(delete)},
        )

    def put_contacts(self, device_id: str, contacts) -> requests.Response:
        return self.put(f"/v1/devices/{device_id}/contacts", json={"contacts": list(contacts)})

    def get_contacts(self, device_id: str, **params) -> requests.Response:
        return self.get(f"/v1/devices/{device_id}/contacts", params=params)

    # --- one device, the expected outcome -----------------------------------------------------

    def register(self, device_id: str, **body) -> dict:
        """Register a new device: 201 and the device."""
        response = self.put_device(device_id, **body)
        assert response.status_code == 201, (response.status_code, response.text)
        return response.json()

    def upsert(self, device_id: str, contacts=(), delete=()) -> dict:
        """A successful PATCH: the write result."""
        response = self.patch_contacts(device_id, contacts, delete)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def contacts(self, device_id: str, **params) -> dict:
        """A successful GET of the device's contacts: the body."""
        response = self.get_contacts(device_id, **params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def book(self, device_id: str) -> dict[str, dict]:
        """The device's contacts by contactId; asserts 200 and no duplicate ids."""
        contacts = self.contacts(device_id)["contacts"]
        ids = [c["contactId"] for c in contacts]
        assert len(ids) == len(set(ids)), "duplicate contactIds in one device"
        return {c["contactId"]: c for c in contacts}

    def close(self) -> None:
        self.session.close()


def introspect(sso_url: str, token: str, auth=INTROSPECTION_CLIENT) -> requests.Response:
    return requests.post(f"{sso_url}/v1/introspect", data={"token": token}, auth=auth, timeout=10)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc), children first."""
    found: list[int] = []
    children_file = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        children = [int(p) for p in children_file.read_text().split()]
    except OSError:
        children = []
    for child in children:
        found.extend(process_tree(child))
    found.append(pid)
    return found


def kill_hard(process) -> None:
    """SIGKILL a ServiceProcess's gunicorn master and its workers (a crash, no shutdown)."""
    if process.process is None:
        return
    for pid in process_tree(process.process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.process.wait(10)
    process.process = None


def sample_contact(contact_id: str, n_entries: int = 1, **extra) -> dict:
    """A small, valid Acrobits contact."""
    contact = {
        "contactId": contact_id,
        "displayName": f"Contact {contact_id}",
        "contactEntries": [
            {"entryId": f"e{i}", "label": "mobile", "type": "tel", "uri": f"+1555{i:07d}"}
            for i in range(n_entries)
        ],
    }
    contact.update(extra)
    return contact


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
