"""Helpers to run the real SSO service in tests (used by the SSO and Contacts suites)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests

# The introspection client the Contacts service uses against the test SSO.
INTROSPECTION_CLIENT = ("contacts", "contacts-test-secret")
# A fixed, test-only token secret (64 hex characters).
TEST_TOKEN_SECRET = "5f1d3c2b4a69788796a5b4c3d2e1f0011223344556677889900aabbccddeeff0"


def sso_env(redis_url: str, provider, **overrides) -> dict[str, str]:
    """Environment for a real SSO process talking to `provider` and this Redis."""
    client_id, client_secret = INTROSPECTION_CLIENT
    env = {
        "SSO_REDIS_URL": redis_url,
        "SSO_TOKEN_SECRET": TEST_TOKEN_SECRET,
        "SSO_PORTAL_URL": provider.portal_url,
        "SSO_ALLOW_INSECURE_HTTP": "1",
        # The stand-in provider listens on loopback.
        "SSO_ALLOW_PRIVATE_UPSTREAMS": "1",
        "SSO_INTROSPECTION_CLIENTS": f"{client_id}:{client_secret}",
        # Generous limits: tests log in many times from one address.
        "SSO_MAX_LOGINS_PER_IP": "100000",
        "SSO_MAX_FAILED_LOGINS": "1000",
        "LOG_LEVEL": "INFO",
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def login(sso_url: str, cloud_id: str, username: str, password: str, host=None) -> dict:
    """Log in through POST /v1/tokens; asserts 200 and returns the JSON body."""
    body = {"cloud_id": cloud_id, "username": username, "password": password}
    if host is not None:
        body["host"] = host
    response = requests.post(f"{sso_url}/v1/tokens", json=body, timeout=15)
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


@dataclass
class ProviderAccount:
    """A SIP account the stand-in provider knows (and, once logged in, its token)."""

    cloud_id: str
    username: str
    password: str
    phone_numbers: list[str]
    sip_uri: str
    token: str | None = None


def account_factory(provider, cloud_prefix: str, sip_domain: str, default_numbers: tuple):
    """make(cloud_id=None, phone_numbers=default_numbers) → a fresh ProviderAccount registered
    with the provider; accounts of one factory share a Cloud ID unless told otherwise. The
    password has a space and URL-special characters, as real ones do."""
    cloud = f"{cloud_prefix}-{secrets.token_hex(3)}"

    def make(cloud_id: str | None = None, phone_numbers=default_numbers) -> ProviderAccount:
        username = f"sip-{secrets.token_hex(4)}"
        account = ProviderAccount(
            cloud_id=cloud_id or cloud,
            username=username,
            password=f"pw {secrets.token_hex(4)} &%",
            phone_numbers=list(phone_numbers),
            sip_uri=f"sip:{username}@{sip_domain}",
        )
        provider.add_user(
            account.cloud_id,
            account.username,
            account.password,
            account.phone_numbers,
            account.sip_uri,
        )
        return account

    return make
