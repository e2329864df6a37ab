"""check_config(): the problems `sso-server check-config` reports."""

from __future__ import annotations

from sso_service.checks import check_config
from tests.support.servers import free_port
from tests.support.stack import sso_env


def test_no_problems(redis_server, provider):
    assert check_config(sso_env(redis_server.url, provider)) == []


def test_unreachable_redis(provider):
    problems = check_config(sso_env(f"redis://127.0.0.1:{free_port()}/0", provider))
    assert any("Redis" in problem for problem in problems)


def test_bad_setting_is_named(redis_server, provider):
    env = sso_env(redis_server.url, provider, SSO_TOKEN_TTL_SECONDS="forever")
    assert any("SSO_TOKEN_TTL_SECONDS" in problem for problem in check_config(env))


def test_no_definition_source(redis_server, provider):
    env = sso_env(redis_server.url, provider, SSO_PORTAL_URL="")
    assert any("SSO_PORTAL_URL" in problem for problem in check_config(env))


def test_bad_clouds_file(redis_server, provider, tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text("- not a mapping\n")
    env = sso_env(redis_server.url, provider, SSO_CLOUDS_FILE=str(path))
    assert any("SSO_CLOUDS_FILE" in problem for problem in check_config(env))


def test_missing_ca_bundle(redis_server, provider, tmp_path):
    env = sso_env(redis_server.url, provider, SSO_CA_BUNDLE=str(tmp_path / "none.pem"))
    assert any("SSO_CA_BUNDLE" in problem for problem in check_config(env))


def test_a_replica_requirement_the_primary_cannot_meet(redis_server, provider):
    """SSO_REDIS_MIN_REPLICAS_ACK above the replicas the primary has makes every login and
    logout a 503: check-config says so instead of reporting all well."""
    env = sso_env(redis_server.url, provider, SSO_REDIS_MIN_REPLICAS_ACK="1")
    (problem,) = check_config(env)
    assert "SSO_REDIS_MIN_REPLICAS_ACK=1" in problem and "0 connected replica" in problem
