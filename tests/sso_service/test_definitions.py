"""Definitions from the clouds file and the portal (real stand-in portal, real Redis cache)."""

from __future__ import annotations

import json
import time

import pytest
from demo_provider import Behaviour

from shared.config import ConfigError
from sso_service.definitions import (
    DefinitionSource,
    PortalError,
    UnknownCloud,
    load_clouds_file,
)
from sso_service.token_store import connect


@pytest.fixture
def source_for(redis_db, redis_server, fresh_provider):
    clients = []

    def build(cache_seconds=300, clouds=None, portal=True, timeout=2.0):
        client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
        clients.append(client)
        return DefinitionSource(
            client, fresh_provider.portal_url if portal else None, cache_seconds, timeout, clouds
        )

    yield build
    for client in clients:
        client.close()


def test_clouds_file_json(tmp_path):
    path = tmp_path / "clouds.json"
    path.write_text(
        json.dumps(
            {
                "ACME": {"url": "https://a/?u=%username%", "postData": "p=%password%"},
                "BETA": {"url": "https://b/", "timeout": 4},
            }
        )
    )
    clouds = load_clouds_file(str(path))
    assert clouds["ACME"].method == "POST"
    assert clouds["BETA"].timeout == 4


def test_clouds_file_yaml(tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "ACME:\n"
        "  url: https://a/\n"
        "  method: post\n"
        "  contentType: application/json\n"
        '  postData: \'{"u": "%username%"}\'\n'
        "  headers: |\n"
        "    X-One: 1\n"
        "    X-Two: %cloud_id%\n"
        "42:\n"
        "  url: https://numeric/\n"
    )
    clouds = load_clouds_file(str(path))
    assert clouds["ACME"].headers == (("X-One", "1"), ("X-Two", "%cloud_id%"))
    assert clouds["ACME"].method == "POST"
    assert clouds["42"].url == "https://numeric/"


@pytest.mark.parametrize(
    "cloud_id", ["NO", "on", "Yes", "0123", "1.10", "1_000", "0x1F", "1e3", "null", "~"]
)
def test_clouds_file_yaml_keys_are_the_cloud_ids_as_written(tmp_path, cloud_id):
    # YAML 1.1 would read these unquoted keys as False, True, 83, 1.1, 1000, 31, 1000.0, None.
    path = tmp_path / "clouds.yaml"
    path.write_text(f"{cloud_id}:\n  url: https://as-written/\n  timeout: 3\n")
    clouds = load_clouds_file(str(path))
    assert list(clouds) == [cloud_id]
    assert clouds[cloud_id].timeout == 3  # values are still typed


def test_clouds_file_keys_brought_in_by_a_merge_key_are_as_written_too(tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "<<: {NO: {url: 'https://no/'}, 0123: {url: 'https://zero/'}}\non: {url: 'https://on/'}\n"
    )
    clouds = load_clouds_file(str(path))
    assert set(clouds) == {"NO", "0123", "on"}
    assert clouds["0123"].url == "https://zero/"


def test_empty_clouds_file_is_no_clouds(tmp_path):
    path = tmp_path / "clouds.yaml"
    path.write_text("")
    assert load_clouds_file(str(path)) == {}


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        "ACME: {method: GET}",
        "ACME: just a string",
        "ACME: {url: 5}",
        "{unclosed",
        "ACME: {url: 'https://a', timeout: -1}",
    ],
)
def test_bad_clouds_files_are_config_errors(tmp_path, content):
    path = tmp_path / "clouds.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match="SSO_CLOUDS_FILE"):
        load_clouds_file(str(path))


def test_missing_clouds_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="SSO_CLOUDS_FILE"):
        load_clouds_file(str(tmp_path / "nope.yaml"))


def test_portal_answers_are_cached_in_redis(source_for, fresh_provider, new_cloud):
    fresh_provider.definitions[new_cloud] = {"url": "https://x/%username%"}
    first, second = source_for(), source_for()  # two workers, one cache
    assert first.get(new_cloud).url == "https://x/%username%"
    assert second.get(new_cloud).url == "https://x/%username%"
    assert fresh_provider.portal_hits[new_cloud] == 1


def test_cache_can_be_off(source_for, fresh_provider, new_cloud):
    fresh_provider.definitions[new_cloud] = {"url": "https://x/"}
    source = source_for(cache_seconds=0)
    source.get(new_cloud)
    source.get(new_cloud)
    assert fresh_provider.portal_hits[new_cloud] == 2


def test_cache_entries_live_for_the_cache_seconds(source_for, fresh_provider, new_cloud, redis_db):
    fresh_provider.definitions[new_cloud] = {"url": "https://x/old"}
    source_for().get(new_cloud)
    assert 299 <= redis_db.ttl(f"sso:definition:{new_cloud}") <= 300


def test_cache_expires(source_for, fresh_provider, new_cloud, redis_db):
    fresh_provider.definitions[new_cloud] = {"url": "https://x/old"}
    source = source_for(cache_seconds=1)
    source.get(new_cloud)
    fresh_provider.definitions[new_cloud] = {"url": "https://x/new"}
    assert source.get(new_cloud).url == "https://x/old"  # cached
    time.sleep(1.1)
    assert not redis_db.exists(f"sso:definition:{new_cloud}")  # Redis expired it
    assert source.get(new_cloud).url == "https://x/new"
    assert fresh_provider.portal_hits[new_cloud] == 2


def test_unknown_cloud_is_not_cached(source_for, fresh_provider, new_cloud):
    source = source_for()
    with pytest.raises(UnknownCloud):
        source.get(new_cloud)
    fresh_provider.definitions[new_cloud] = {"url": "https://x/"}
    assert source.get(new_cloud).url == "https://x/"


def test_file_wins_over_portal(source_for, fresh_provider, new_cloud):
    from sso_service.ext_auth import Definition

    fresh_provider.definitions[new_cloud] = {"url": "https://portal/"}
    source = source_for(clouds={new_cloud: Definition.from_fields({"url": "https://file/"})})
    assert source.get(new_cloud).url == "https://file/"
    assert fresh_provider.portal_hits[new_cloud] == 0


def test_without_portal_only_file_clouds_exist(source_for, new_cloud):
    with pytest.raises(UnknownCloud):
        source_for(portal=False).get(new_cloud)


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(mode="status", status=500),
        Behaviour(mode="status", status=503),
        Behaviour(mode="status", status=403),
        Behaviour(mode="status", status=200, body="not json"),
        Behaviour(mode="status", status=200, body='["a list"]'),
        Behaviour(mode="status", status=200, body='{"method": "GET"}'),
        Behaviour(mode="garbage"),
        Behaviour(mode="close"),
        Behaviour(mode="slow", delay=1.5),
        Behaviour(mode="status", status=200, body="[" * 200_000),  # RecursionError in json
        Behaviour(mode="trickle_close", delay=0.2),
        Behaviour(mode="huge", size=2 << 20),
    ],
)
def test_portal_failures_are_portal_errors(source_for, fresh_provider, new_cloud, behaviour):
    fresh_provider.definitions[new_cloud] = {"url": "https://x/"}
    fresh_provider.portal_behaviour = behaviour
    with pytest.raises(PortalError):
        source_for(timeout=0.5).get(new_cloud)


def test_portal_unreachable_is_a_portal_error(redis_db, redis_server, new_cloud):
    from tests.support.servers import free_port

    client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
    source = DefinitionSource(client, f"http://127.0.0.1:{free_port()}/{{cloud_id}}", 300, 1.0)
    with pytest.raises(PortalError):
        source.get(new_cloud)
