"""`make run` (scripts/run_dev.py): everything starts, the printed curl login works as printed,
the web client is served with its config and CSP and admitted by both services' CORS, and
SIGTERM stops every child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from tests.support.servers import ROOT, free_port, wait_for


@pytest.fixture
def run_dev(redis_server, postgres_database):
    ports = {
        "provider": free_port(),
        "sso": free_port(),
        "contacts": free_port(),
        "web": free_port(),
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SSO_", "CONTACTS_", "PROMETHEUS", "CORS_"))
    }
    env["SSO_REDIS_URL"] = redis_server.url.rsplit("/", 1)[0] + "/2"
    env["CONTACTS_DATABASE_URL"] = postgres_database.url
    output = Path(tempfile.mkstemp(prefix="cs-run-dev-", suffix=".log")[1])
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable, str(ROOT / "scripts" / "run_dev.py"),
                "--provider-port", str(ports["provider"]),
                "--sso-port", str(ports["sso"]),
                "--contacts-port", str(ports["contacts"]),
                "--web-port", str(ports["web"]),
            ],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield process, output, ports
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_printed_login_works_and_sigterm_stops_all(run_dev):
    process, output, _ports = run_dev

    def printed_login():
        lines = output.read_text(errors="replace").splitlines()
        return next(line.strip() for line in lines if line.strip().startswith("curl -s -X POST"))

    wait_for(printed_login, timeout=120, what="the printed curl login")
    answer = subprocess.run(  # noqa: S602 - the point is to run it exactly as printed
        printed_login(), shell=True, capture_output=True, text=True, timeout=30, check=True
    )
    body = json.loads(answer.stdout)
    assert body["token_type"] == "Bearer"
    assert body["account"]["username"] == "alice"

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children == []


def test_the_web_client_is_served_with_its_config_and_allowed_by_cors(run_dev):
    process, output, ports = run_dev
    web = f"http://127.0.0.1:{ports['web']}"
    sso = f"http://127.0.0.1:{ports['sso']}"
    contacts = f"http://127.0.0.1:{ports['contacts']}"

    def printed_web_url():
        lines = output.read_text(errors="replace").splitlines()
        return next(line.split()[2] for line in lines if line.strip().startswith("Web client"))

    wait_for(printed_web_url, timeout=120, what="the printed web client URL")
    assert printed_web_url() == web + "/"

    page = requests.get(web + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="app.js"></script>' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert f"connect-src 'self' {sso} {contacts}" in policy
    assert "'unsafe-inline'" not in policy

    assert requests.get(web + "/config.json", timeout=10).json() == {
        "ssoUrl": sso,
        "contactsUrl": contacts,
    }
    script = requests.get(web + "/app.js", timeout=10)
    assert script.headers["Content-Type"].startswith("text/javascript")
    # Only the page's own files: not the server's source next to them, nor anything outside.
    assert requests.get(web + "/../web_server.py", timeout=10).status_code == 404
    assert requests.get(web + "/%2e%2e/demo_provider.py", timeout=10).status_code == 404
    assert requests.get(web + "/app.js%00.html", timeout=10).status_code == 404

    for service, path, method in ((sso, "/v1/tokens", "POST"), (contacts, "/v1/devices", "GET")):
        preflight = requests.options(
            service + path,
            headers={
                "Origin": web,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
            timeout=10,
        )
        assert preflight.headers.get("Access-Control-Allow-Origin") == web, service

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
