"""Admin (operator) clients for the tests of both services' /v1/admin routes and commands."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from tests.support.servers import ROOT

# An operator client, and a second one, as SSO_ADMIN_CLIENTS / CONTACTS_ADMIN_CLIENTS list them.
ADMIN_CLIENT = ("ops", "ops-admin-secret-5c1f0e9a7b")
OTHER_ADMIN_CLIENT = ("auditor", "auditor:secret-with-colon-77")
ADMIN_CLIENTS = ",".join(":".join(client) for client in (ADMIN_CLIENT, OTHER_ADMIN_CLIENT))


def basic(client_id: str, secret: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


ADMIN_AUTH = basic(*ADMIN_CLIENT)

# Authorization headers an admin route refuses (401 invalid_client), whatever the route.
REFUSED_AUTH = {
    "none": {},
    "wrong secret": basic(ADMIN_CLIENT[0], "wrong"),
    "empty secret": basic(ADMIN_CLIENT[0], ""),
    "unknown client": basic("stranger", ADMIN_CLIENT[1]),
    "secret of another client": basic(ADMIN_CLIENT[0], OTHER_ADMIN_CLIENT[1]),
    "introspection client": basic("contacts", "contacts-test-secret"),
    "bearer": {"Authorization": "Bearer " + ADMIN_CLIENT[1]},
    "not base64": {"Authorization": "Basic %%%"},
}


def audit_lines(text: str) -> list[dict]:
    """The `audit` objects of the JSON log lines in `text`."""
    found = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("audit"), dict):
            found.append(record["audit"])
    return found


def run_cli(package: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`python -m <package> <args>` with exactly these settings (plus PATH and the like)."""
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SSO_", "CONTACTS_", "LOG_LEVEL", "CORS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
