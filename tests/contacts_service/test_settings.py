"""Settings come from environment variables with explicit casts; secrets have no default."""

from __future__ import annotations

import pytest

from contacts_service.settings import Settings
from shared.config import ConfigError

BASE = {
    "CONTACTS_DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/db",
    "CONTACTS_SSO_URL": "http://127.0.0.1:8001/",
    "CONTACTS_SSO_CLIENT_ID": "contacts",
    "CONTACTS_SSO_CLIENT_SECRET": "secret",
}


def test_defaults():
    settings = Settings.from_env(BASE)
    assert settings.sso_url == "http://127.0.0.1:8001"
    assert settings.sso_timeout_seconds == 3.0
    assert settings.introspection_cache_seconds == 0
    assert settings.smart_new_numbers_per_day == 20_000
    assert settings.change_log_days == 30
    assert settings.max_body_bytes == 32 * 1024 * 1024
    assert settings.max_contacts_per_device == 50_000
    assert settings.max_entries_per_contact == 500
    assert settings.max_contact_bytes == 65_536
    assert settings.db_pool_size == 10
    assert settings.default_region is None
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CONTACTS_SSO_CLIENT_SECRET": ""}, "CONTACTS_SSO_CLIENT_SECRET is required"),
        ({"CONTACTS_DATABASE_URL": ""}, "CONTACTS_DATABASE_URL is required"),
        ({"CONTACTS_DATABASE_URL": "sqlite://"}, "postgresql://"),
        ({"CONTACTS_SSO_URL": "ftp://x"}, "http://"),
        ({"CONTACTS_DEFAULT_REGION": "XX"}, "CONTACTS_DEFAULT_REGION"),
        ({"CONTACTS_MAX_CONTACTS_PER_DEVICE": "many"}, "whole number"),
        ({"CONTACTS_SSO_TIMEOUT_SECONDS": "0"}, "at least"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_bad_settings_name_the_variable(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**BASE, **overrides})


def test_region_is_case_insensitive():
    assert Settings.from_env({**BASE, "CONTACTS_DEFAULT_REGION": "gb"}).default_region == "GB"


def test_every_variable_is_documented():
    import re

    from tests.support.servers import ROOT

    source = (ROOT / "contacts_service" / "settings.py").read_text()
    names = set(re.findall(r'"(CONTACTS_[A-Z_]+)"', source))
    assert len(names) == 26
    env_example = (ROOT / ".env.example").read_text()
    docs = (ROOT / "docs" / "contacts.md").read_text()
    for name in names:
        assert f"\n{name}=" in env_example, name
        assert f"`{name}`" in docs, name


@pytest.mark.parametrize(
    ("overrides", "clients", "limit"),
    [
        ({}, {}, 30),
        ({"CONTACTS_ADMIN_CLIENTS": "ops:s:1, b:2"}, {"ops": "s:1", "b": "2"}, 30),
        ({"CONTACTS_MAX_FAILED_ADMIN_AUTH_PER_IP": "5"}, {}, 5),
    ],
)
def test_admin_settings(overrides, clients, limit):
    settings = Settings.from_env({**BASE, **overrides})
    assert settings.admin_clients == clients
    assert settings.max_failed_admin_auth_per_ip == limit
    assert "s:1" not in repr(settings)


@pytest.mark.parametrize(
    "overrides",
    [
        {"CONTACTS_ADMIN_CLIENTS": "no-secret"},
        {"CONTACTS_ADMIN_CLIENTS": ":secret"},
        {"CONTACTS_MAX_FAILED_ADMIN_AUTH_PER_IP": "0"},
    ],
)
def test_bad_admin_settings_name_the_variable(overrides):
    with pytest.raises(ConfigError, match=next(iter(overrides))):
        Settings.from_env({**BASE, **overrides})
