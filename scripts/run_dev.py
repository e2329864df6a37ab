#!/usr/bin/env python3
"""`make run`: the demo provider, the SSO service, the Contacts service and the reference web
client, in the foreground. Ctrl-C or SIGTERM stops them all.

Secrets not given in the environment are generated for this run only. Settings already in the
environment (SSO_*, CONTACTS_*) are passed through, so `make run` can point at other servers.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def wait_http(url: str, child: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"run: {what} exited with status {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we built
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"run: {what} did not answer at {url}")


def with_origin(origins: str, url: str) -> str:
    """CORS_ORIGINS with the origin of `url` added (unless it, or `*`, is there already)."""
    listed = [item.strip() for item in origins.split(",") if item.strip()]
    if "*" in listed or url in listed:
        return ",".join(listed)
    return ",".join([*listed, url])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--provider-port", type=int, default=8000)
    parser.add_argument("--sso-port", type=int, default=8001)
    parser.add_argument("--contacts-port", type=int, default=8002)
    parser.add_argument("--web-port", type=int, default=8003)
    args = parser.parse_args()

    host = args.host
    provider_url = f"http://{host}:{args.provider_port}"
    sso_url = f"http://{host}:{args.sso_port}"
    contacts_url = f"http://{host}:{args.contacts_port}"
    web_url = f"http://{host}:{args.web_port}"

    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    client_id = env.get("CONTACTS_SSO_CLIENT_ID") or "contacts"
    client_secret = env.get("CONTACTS_SSO_CLIENT_SECRET") or secrets.token_urlsafe(32)
    env.update(
        {
            "CONTACTS_SSO_CLIENT_ID": client_id,
            "CONTACTS_SSO_CLIENT_SECRET": client_secret,
            "SSO_TOKEN_SECRET": env.get("SSO_TOKEN_SECRET") or secrets.token_hex(32),
            "SSO_INTROSPECTION_CLIENTS": env.get("SSO_INTROSPECTION_CLIENTS")
            or f"{client_id}:{client_secret}",
            "SSO_PORTAL_URL": env.get("SSO_PORTAL_URL") or provider_url + "/portal/{cloud_id}",
            # The demo provider speaks plain HTTP on loopback.
            "SSO_ALLOW_INSECURE_HTTP": env.get("SSO_ALLOW_INSECURE_HTTP") or "1",
            "SSO_ALLOW_PRIVATE_UPSTREAMS": env.get("SSO_ALLOW_PRIVATE_UPSTREAMS") or "1",
            "SSO_REDIS_URL": env.get("SSO_REDIS_URL") or "redis://127.0.0.1:6379/0",
            "CONTACTS_DATABASE_URL": env.get("CONTACTS_DATABASE_URL")
            or "postgresql://contactsync:contactsync@127.0.0.1:5432/contactsync",
            "CONTACTS_SSO_URL": env.get("CONTACTS_SSO_URL") or sso_url,
            # Both services read CORS_ORIGINS: the web client's page calls them cross-origin.
            "CORS_ORIGINS": with_origin(env.get("CORS_ORIGINS", ""), web_url),
            "PYTHONUNBUFFERED": "1",
        }
    )

    children: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        child = subprocess.Popen(argv, cwd=ROOT, env=env)
        children.append((name, child))
        return child

    def stop_all(*_args) -> None:
        for _name, child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for _name, child in reversed(children):
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        provider = start(
            "demo provider",
            [
                PYTHON,
                str(ROOT / "deploy" / "demo" / "demo_provider.py"),
                "--host",
                host,
                "--port",
                str(args.provider_port),
            ],
        )
        wait_http(provider_url + "/portal/DEMO", provider, "demo provider")
        sso = start(
            "sso",
            [PYTHON, "-m", "sso_service", "serve", "--bind", f"{host}:{args.sso_port}"],
        )
        wait_http(sso_url + "/healthz", sso, "SSO service")
        contacts = start(
            "contacts",
            [PYTHON, "-m", "contacts_service", "serve", "--bind", f"{host}:{args.contacts_port}"],
        )
        wait_http(contacts_url + "/healthz", contacts, "Contacts service", timeout=120)
        web = start(
            "web client",
            [
                PYTHON,
                str(ROOT / "deploy" / "demo" / "web_server.py"),
                "--host",
                host,
                "--port",
                str(args.web_port),
                "--sso-url",
                sso_url,
                "--contacts-url",
                contacts_url,
            ],
        )
        wait_http(web_url + "/config.json", web, "web client")

        login = (
            f"curl -s -X POST {sso_url}/v1/tokens -H 'Content-Type: application/json' "
            """-d '{"cloud_id": "DEMO", "username": "alice", "password": "alice-secret"}'"""
        )
        print("\nContact Sync is running (Ctrl-C stops everything):", flush=True)
        print(f"  demo provider  {provider_url}/portal/DEMO  (users alice, bob, carol)")
        print(f"  SSO service    {sso_url}   ({sso_url}/openapi.json)")
        print(f"  Contacts       {contacts_url}   ({contacts_url}/openapi.json)")
        print(f"  Web client     {web_url}/   (sign in as DEMO / alice / alice-secret)")
        print("\nLog in as a demo user:\n")
        print(f"  {login}\n")
        print("Then use the token with the Contacts service:\n")
        print(
            f"  TOKEN=$({login} | {PYTHON} -c "
            """'import json,sys; print(json.load(sys.stdin)["token"])')"""
        )
        bearer = '-H "Authorization: Bearer $TOKEN"'
        print(f"  curl -s -X PUT {contacts_url}/v1/devices/phone-1 {bearer}")
        print(f"  curl -s {contacts_url}/v1/devices {bearer}")
        print(flush=True)

        while True:
            for name, child in children:
                if child.poll() is not None:
                    print(f"run: {name} exited with status {child.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nrun: stopping", flush=True)
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
