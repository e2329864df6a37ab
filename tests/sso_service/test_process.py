"""The SSO service as a real gunicorn process (`python -m sso_service serve`) over HTTP."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import requests

from tests.support.metrics import sample_value
from tests.support.servers import ROOT, free_port
from tests.support.stack import INTROSPECTION_CLIENT, login, sso_env

CLOUD = "PROC"


def ext_auth_outcomes(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        outcome: sample_value(text, "sso_ext_auth_requests_total", outcome=outcome)
        for outcome in ("success", "invalid_credentials", "upstream_error")
    }


def test_login_introspect_revoke_over_http(sso_server, provider):
    username, password = f"proc-{secrets.token_hex(4)}", "p&ss \"100%\" 'ü'"
    provider.add_user(CLOUD, username, password, ["+15551230042"], "sip:p@t")
    outcomes_before = ext_auth_outcomes(sso_server.url)
    first = login(sso_server.url, CLOUD, username, password)
    second = login(sso_server.url, CLOUD, username, password, host="sip.t")
    assert first["token"] == second["token"]  # across both workers
    assert first["account"]["phone_numbers"] == ["+15551230042"]

    introspected = requests.post(
        f"{sso_server.url}/v1/introspect",
        data={"token": first["token"]},
        auth=INTROSPECTION_CLIENT,
        timeout=10,
    ).json()
    assert introspected["active"] is True
    assert introspected["username"] == username

    denied = requests.post(
        f"{sso_server.url}/v1/introspect", json={"token": first["token"]}, timeout=10
    )
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Basic")

    wrong = requests.post(
        f"{sso_server.url}/v1/tokens",
        json={"cloud_id": CLOUD, "username": username, "password": "nope"},
        timeout=10,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_credentials"

    assert requests.post(
        f"{sso_server.url}/v1/revoke", json={"token": first["token"]}, timeout=10
    ).ok
    after = requests.post(
        f"{sso_server.url}/v1/introspect",
        json={"token": first["token"]},
        auth=INTROSPECTION_CLIENT,
        timeout=10,
    ).json()
    assert after == {"active": False}

    # Summed over both workers: two good logins and one wrong one called ext-auth.
    outcomes = ext_auth_outcomes(sso_server.url)
    assert {k: outcomes[k] - outcomes_before[k] for k in outcomes} == {
        "success": 2,
        "invalid_credentials": 1,
        "upstream_error": 0,
    }
    log = sso_server.log()
    assert password not in log
    assert first["token"] not in log


def test_process_serves_health_metrics_and_openapi(sso_server):
    def answered(endpoint: str) -> float:
        text = requests.get(f"{sso_server.url}/metrics", timeout=10).text
        labels = {"service": "sso_service", "endpoint": endpoint, "method": "GET", "status": "200"}
        return sample_value(text, "http_requests_total", **labels)

    healthz_before, readyz_before = answered("/healthz"), answered("/readyz")
    assert requests.get(f"{sso_server.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{sso_server.url}/readyz", timeout=10).status_code == 200
    assert answered("/healthz") - healthz_before == 1
    assert answered("/readyz") - readyz_before == 1
    assert requests.get(f"{sso_server.url}/openapi.json", timeout=10).json()["paths"]
    missing = requests.get(f"{sso_server.url}/nope", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sso_service", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_passes_with_a_good_configuration(redis_server, provider):
    result = _cli("check-config", env=sso_env(redis_server.url, provider))
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_check_config_reports_problems(provider):
    env = sso_env(f"redis://127.0.0.1:{free_port()}/0", provider, SSO_TOKEN_SECRET="x" * 40)
    result = _cli("check-config", env=env)
    assert result.returncode == 1
    assert "Redis" in result.stderr
    env["SSO_TOKEN_SECRET"] = "short"
    result = _cli("check-config", env=env)
    assert result.returncode == 1
    assert "SSO_TOKEN_SECRET" in result.stderr


def test_version():
    result = _cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("sso-server ")
