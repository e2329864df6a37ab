"""Settings from the environment: defaults, casts and refusals."""

from __future__ import annotations

import pytest

from shared.config import ConfigError
from sso_service.settings import Settings, parse_clients, parse_sentinels

BASE = {"SSO_TOKEN_SECRET": "s" * 32, "SSO_INTROSPECTION_CLIENTS": "contacts:secret"}


def test_defaults():
    settings = Settings.from_env(BASE)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.token_ttl_seconds == 7_776_000
    assert settings.portal_cache_seconds == 300
    assert settings.portal_timeout_seconds == 5.0
    assert settings.allow_insecure_http is False
    assert settings.max_failed_logins == 10
    assert settings.failed_login_window_seconds == 900
    assert settings.max_logins_per_ip == 300
    assert settings.trusted_proxy_count == 0
    assert settings.default_region is None
    assert settings.cors_origins == []
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 65536
    assert settings.introspection_clients == {"contacts": "secret"}
    # One Redis at SSO_REDIS_URL; no WAIT.
    assert settings.redis_sentinels == ()
    assert settings.redis_sentinel_master == "contactsync"
    assert settings.redis_sentinel_password is None
    assert settings.redis_min_replicas_ack == 0
    assert settings.redis_wait_timeout_ms == 500


def test_every_variable_is_read():
    settings = Settings.from_env(
        BASE
        | {
            "SSO_REDIS_URL": "redis://r:1/2",
            "SSO_TOKEN_TTL_SECONDS": "3600",
            "SSO_PORTAL_URL": "https://p/{cloud_id}",
            "SSO_PORTAL_CACHE_SECONDS": "0",
            "SSO_PORTAL_TIMEOUT_SECONDS": "1.5",
            "SSO_CLOUDS_FILE": "/etc/clouds.yaml",
            "SSO_ALLOW_INSECURE_HTTP": "yes",
            "SSO_MAX_FAILED_LOGINS": "3",
            "SSO_FAILED_LOGIN_WINDOW_SECONDS": "60",
            "SSO_MAX_LOGINS_PER_IP": "5",
            "SSO_TRUSTED_PROXY_COUNT": "1",
            "SSO_DEFAULT_REGION": "gb",
            "CORS_ORIGINS": "https://a.test, https://b.test",
            "LOG_LEVEL": "debug",
            "SSO_MAX_BODY_BYTES": "2048",
            "SSO_CA_BUNDLE": "/etc/ca.pem",
            "SSO_REDIS_SENTINELS": "s1:26379, s2:26380",
            "SSO_REDIS_SENTINEL_MASTER": "tokens",
            "SSO_REDIS_SENTINEL_PASSWORD": "sentinel-pass",
            "SSO_REDIS_MIN_REPLICAS_ACK": "1",
            "SSO_REDIS_WAIT_TIMEOUT_MS": "250",
        }
    )
    assert settings.redis_url == "redis://r:1/2"
    assert settings.token_ttl_seconds == 3600
    assert settings.portal_url == "https://p/{cloud_id}"
    assert settings.portal_cache_seconds == 0
    assert settings.portal_timeout_seconds == 1.5
    assert settings.clouds_file == "/etc/clouds.yaml"
    assert settings.allow_insecure_http is True
    assert settings.max_failed_logins == 3
    assert settings.failed_login_window_seconds == 60
    assert settings.max_logins_per_ip == 5
    assert settings.trusted_proxy_count == 1
    assert settings.default_region == "GB"
    assert settings.cors_origins == ["https://a.test", "https://b.test"]
    assert settings.log_level == "DEBUG"
    assert settings.max_body_bytes == 2048
    assert settings.ca_bundle == "/etc/ca.pem"
    assert settings.redis_sentinels == (("s1", 26379), ("s2", 26380))
    assert settings.redis_sentinel_master == "tokens"
    assert settings.redis_sentinel_password == "sentinel-pass"
    assert settings.redis_min_replicas_ack == 1
    assert settings.redis_wait_timeout_ms == 250


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"SSO_TOKEN_SECRET": ""}, "SSO_TOKEN_SECRET"),
        ({"SSO_TOKEN_SECRET": "short"}, "SSO_TOKEN_SECRET"),
        ({"SSO_INTROSPECTION_CLIENTS": ""}, "SSO_INTROSPECTION_CLIENTS"),
        ({"SSO_INTROSPECTION_CLIENTS": "nosecret"}, "SSO_INTROSPECTION_CLIENTS"),
        ({"SSO_INTROSPECTION_CLIENTS": ":secret"}, "SSO_INTROSPECTION_CLIENTS"),
        ({"SSO_TOKEN_TTL_SECONDS": "soon"}, "SSO_TOKEN_TTL_SECONDS"),
        ({"SSO_PORTAL_URL": "https://portal/without/placeholder"}, "SSO_PORTAL_URL"),
        ({"SSO_ALLOW_INSECURE_HTTP": "maybe"}, "SSO_ALLOW_INSECURE_HTTP"),
        ({"SSO_MAX_FAILED_LOGINS": "0"}, "SSO_MAX_FAILED_LOGINS"),
        ({"SSO_DEFAULT_REGION": "USA"}, "SSO_DEFAULT_REGION"),
        ({"SSO_DEFAULT_REGION": "XX"}, "SSO_DEFAULT_REGION"),
        ({"SSO_TRUSTED_PROXY_COUNT": "-1"}, "SSO_TRUSTED_PROXY_COUNT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"SSO_REDIS_SENTINELS": "s1"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "s1:"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": ":26379"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "s1:0"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "s1:65536"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "s1:port"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "s1:26379,s2"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINELS": "::1:26379"}, "SSO_REDIS_SENTINELS"),
        ({"SSO_REDIS_SENTINEL_MASTER": "my master"}, "SSO_REDIS_SENTINEL_MASTER"),
        ({"SSO_REDIS_MIN_REPLICAS_ACK": "-1"}, "SSO_REDIS_MIN_REPLICAS_ACK"),
        ({"SSO_REDIS_MIN_REPLICAS_ACK": "one"}, "SSO_REDIS_MIN_REPLICAS_ACK"),
        # WAIT 0 would block forever; beyond 1 s it would outlast the Redis socket timeout.
        ({"SSO_REDIS_WAIT_TIMEOUT_MS": "0"}, "SSO_REDIS_WAIT_TIMEOUT_MS"),
        ({"SSO_REDIS_WAIT_TIMEOUT_MS": "1001"}, "SSO_REDIS_WAIT_TIMEOUT_MS"),
        ({"SSO_REDIS_WAIT_TIMEOUT_MS": "0.5"}, "SSO_REDIS_WAIT_TIMEOUT_MS"),
    ],
)
def test_bad_values_name_the_variable(change, names):
    with pytest.raises(ConfigError, match=names):
        Settings.from_env(BASE | change)


def test_secrets_are_not_in_repr():
    text = repr(Settings.from_env(BASE | {"SSO_REDIS_SENTINEL_PASSWORD": "hush-hush"}))
    assert "s" * 32 not in text
    assert "secret" not in text.replace("token_secret", "")
    assert "hush-hush" not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ()),
        ("", ()),
        (" , ", ()),
        ("s1:26379", (("s1", 26379),)),
        (" 10.0.0.1:26379 ,s2.example:1,", (("10.0.0.1", 26379), ("s2.example", 1))),
        ("[::1]:26379,[fd00::2]:26380", (("::1", 26379), ("fd00::2", 26380))),
    ],
)
def test_parse_sentinels(raw, expected):
    assert parse_sentinels(raw) == expected


def test_sentinel_mode_keeps_the_url_for_database_and_credentials():
    settings = Settings.from_env(
        BASE | {"SSO_REDIS_SENTINELS": "s1:26379", "SSO_REDIS_URL": "redis://:pw@ignored:1/4"}
    )
    assert settings.redis_sentinels == (("s1", 26379),)
    assert settings.redis_url == "redis://:pw@ignored:1/4"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a:b", {"a": "b"}),
        ("a:b, c:d:e ,", {"a": "b", "c": "d:e"}),
    ],
)
def test_parse_clients(raw, expected):
    assert parse_clients(raw) == expected


def test_env_example_documents_every_sso_variable():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    read = set(
        re.findall(r'"((?:SSO|CORS|LOG)_[A-Z_]+)"', (root / "sso_service/settings.py").read_text())
    )
    documented = set(re.findall(r"^([A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    assert read - documented == set()
    assert read <= set(re.findall(r"`([A-Z_]+)`", (root / "docs/sso.md").read_text()))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, {}), ("", {}), ("ops:s:1,audit:x", {"ops": "s:1", "audit": "x"})],
)
def test_admin_clients_are_optional(raw, expected):
    settings = Settings.from_env(BASE if raw is None else BASE | {"SSO_ADMIN_CLIENTS": raw})
    assert settings.admin_clients == expected
    assert "s:1" not in repr(settings)


@pytest.mark.parametrize("raw", ["nosecret", ":secret", "ops:"])
def test_bad_admin_clients_name_the_variable(raw):
    with pytest.raises(ConfigError, match="SSO_ADMIN_CLIENTS"):
        Settings.from_env(BASE | {"SSO_ADMIN_CLIENTS": raw})
