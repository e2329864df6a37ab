"""POST /v1/tokens against the real stand-in provider and real Redis (in-process app)."""

from __future__ import annotations

import json
import secrets
import urllib.parse

import pytest
from demo_provider import Behaviour

from tests.sso_service.conftest import CLOUD


def body_of(account, **changes):
    return {k: account[k] for k in ("cloud_id", "username", "password")} | changes


def test_login_returns_token_and_account(client, account):
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 200, response.json
    data = response.json
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 7_776_000
    assert len(data["token"].split(".")[0]) == 43
    assert data["account"] == {
        "cloud_id": CLOUD,
        "username": account["username"],
        "phone_numbers": ["+15551230001", "+442071838750"],
        "sip_uri": f"sip:{account['username']}@t",
    }
    assert "password" not in response.get_data(as_text=True)


def test_login_accepts_a_form_body(client, account):
    response = client.post("/v1/tokens", data=body_of(account))
    assert response.status_code == 200


def test_same_token_for_every_login_of_an_account(client, account):
    first = client.post("/v1/tokens", json=body_of(account)).json["token"]
    second = client.post("/v1/tokens", data=body_of(account)).json["token"]
    assert first == second


def test_other_accounts_get_other_tokens(client, account, fresh_provider):
    fresh_provider.add_user(CLOUD, account["username"] + "-2", "pw")
    first = client.post("/v1/tokens", json=body_of(account)).json["token"]
    other = client.post(
        "/v1/tokens", json=body_of(account, username=account["username"] + "-2", password="pw")
    ).json["token"]
    assert first != other


def test_wrong_password_is_401_and_does_not_disturb_the_token(client, account):
    token = client.post("/v1/tokens", json=body_of(account)).json["token"]
    response = client.post("/v1/tokens", json=body_of(account, password="wrong"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_credentials"
    assert set(response.json) <= {"error", "message", "details"}
    again = client.post("/v1/tokens", json=body_of(account)).json["token"]
    assert again == token


def test_unknown_user_is_401(client, account):
    response = client.post("/v1/tokens", json=body_of(account, username="nobody-here"))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_credentials"


def test_unknown_cloud_is_404(client, new_cloud):
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "a", "password": "b"}
    )
    assert response.status_code == 404
    assert response.json["error"] == "unknown_cloud"


def test_portal_answer_is_cached(client, account, fresh_provider):
    client.post("/v1/tokens", json=body_of(account))
    client.post("/v1/tokens", json=body_of(account, password="wrong"))
    client.post("/v1/tokens", json=body_of(account))
    assert fresh_provider.portal_hits[CLOUD] == 1


def test_sip_uri_is_null_when_ext_auth_sends_none(client, fresh_provider, new_cloud):
    fresh_provider.add_user(new_cloud, "dave", "pw", ["+15551239999"])
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "dave", "password": "pw"}
    )
    assert response.json["account"]["sip_uri"] is None
    assert response.json["account"]["phone_numbers"] == ["+15551239999"]


@pytest.mark.parametrize("fmt", ["xml", "json", "empty"])
def test_ext_auth_answer_formats(client, fresh_provider, new_cloud, fmt):
    fresh_provider.add_user(new_cloud, "erin", "pw", ["+1 555 123 0001", "bogus"], "sip:erin@t")
    fresh_provider.response_format[new_cloud] = fmt
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "erin", "password": "pw"}
    )
    assert response.status_code == 200
    account = response.json["account"]
    if fmt == "empty":
        assert account["phone_numbers"] == [] and account["sip_uri"] is None
    else:
        assert account["phone_numbers"] == ["+15551230001"]
        assert account["sip_uri"] == "sip:erin@t"


PASSWORD = "p&ss \"100%\" <a+b=c> 'ü 日本'"


@pytest.mark.parametrize(
    ("post_data", "content_type"),
    [
        (None, None),
        ("username=%username%&password=%password%", None),
        ("username=%account[username]%&password=%account[password]%", "application/x-www-form-urlencoded"),  # noqa: E501
        ('{"username": "%username%", "password": "%password%"}', "application/json"),
        ("<auth><username>%username%</username><password>%password%</password></auth>", "text/xml"),
    ],
)  # fmt: skip
def test_special_passwords_arrive_intact_in_every_context(
    client, fresh_provider, new_cloud, post_data, content_type
):
    fresh_provider.add_user(new_cloud, "frank", PASSWORD, ["+15551230005"])
    definition = {"url": f"{fresh_provider.url}/ext-auth/{new_cloud}"}
    if post_data is None:
        definition["url"] += "?username=%username%&password=%password%"
    else:
        definition["postData"] = post_data
    if content_type:
        definition["contentType"] = content_type
    fresh_provider.definitions[new_cloud] = definition
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "frank", "password": PASSWORD}
    )
    assert response.status_code == 200, response.json
    recorded = fresh_provider.auth_requests[-1]
    assert recorded.method == ("GET" if post_data is None else "POST")


def test_host_and_cloud_id_placeholders(client, account, fresh_provider, new_cloud):
    fresh_provider.add_user(new_cloud, "gina", "pw")
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth/{new_cloud}?username=%username%&password=%password%"
        "&host=%host%&cloud=%cloud_id%&alias=%account[host]%",
        "headers": "X-Host: %host%\nX-User: %account[username]%",
    }
    body = {"cloud_id": new_cloud, "username": "gina", "password": "pw", "host": "sip.x.test"}
    assert client.post("/v1/tokens", json=body).status_code == 200
    query = urllib.parse.parse_qs(fresh_provider.auth_requests[-1].query)
    assert query["host"] == ["sip.x.test"] and query["alias"] == ["sip.x.test"]
    assert query["cloud"] == [new_cloud]
    assert fresh_provider.auth_requests[-1].headers["X-Host"] == "sip.x.test"
    del body["host"]
    assert client.post("/v1/tokens", json=body).status_code == 200
    assert "host=&" in fresh_provider.auth_requests[-1].query


def test_cr_lf_in_a_header_value_is_400(client, fresh_provider, new_cloud):
    fresh_provider.add_user(new_cloud, "hank", "pw\r\nX-Evil: 1")
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth/{new_cloud}?username=%username%&password=%password%",
        "headers": "X-Password: %password%",
    }
    response = client.post(
        "/v1/tokens",
        json={"cloud_id": new_cloud, "username": "hank", "password": "pw\r\nX-Evil: 1"},
    )
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "password" in response.json["details"]
    assert fresh_provider.auth_requests == []


def test_digest_auth_is_completed(client, fresh_provider, new_cloud):
    fresh_provider.add_user(new_cloud, "ivy", "pw", ["+15551230007"])
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth-digest/{new_cloud}",
        "postData": "username=%username%&password=%password%",
        "authUsername": fresh_provider.digest_user,
        "authPassword": fresh_provider.digest_pass,
    }
    ok = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "ivy", "password": "pw"}
    )
    assert ok.status_code == 200, ok.json
    assert ok.json["account"]["phone_numbers"] == ["+15551230007"]
    assert len(fresh_provider.auth_requests) == 2  # challenge, then the answer
    assert fresh_provider.auth_requests[1].headers["Authorization"].startswith("Digest ")
    wrong = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "ivy", "password": "no"}
    )
    assert wrong.status_code == 401
    assert wrong.json["error"] == "invalid_credentials"


def test_wrong_digest_credentials_are_invalid_credentials(client, fresh_provider, new_cloud):
    fresh_provider.add_user(new_cloud, "jon", "pw")
    fresh_provider.definitions[new_cloud] = {
        "url": f"{fresh_provider.url}/ext-auth-digest/{new_cloud}"
        "?username=%username%&password=%password%",
        "authUsername": fresh_provider.digest_user,
        "authPassword": "not-the-digest-password",
    }
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "jon", "password": "pw"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(mode="status", status=500),
        Behaviour(mode="status", status=503),
        Behaviour(mode="status", status=302),
        Behaviour(mode="garbage", content_type="application/json"),
        Behaviour(mode="garbage", content_type="application/xml"),
        Behaviour(mode="status", status=200, body="<unclosed", content_type="text/xml"),
        Behaviour(mode="close"),
        Behaviour(mode="slow", delay=2.0),
    ],
)
def test_ext_auth_failures_are_502(client, fresh_provider, new_cloud, behaviour):
    fresh_provider.add_user(new_cloud, "kim", "pw")
    fresh_provider.definitions[new_cloud] = {
        **fresh_provider.default_definition(new_cloud),
        "timeout": 0.5,
    }
    fresh_provider.auth_behaviour[new_cloud] = behaviour
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "kim", "password": "pw"}
    )
    assert response.status_code == 502
    assert response.json["error"] == "upstream_error"


def test_ext_auth_unreachable_is_502(client, fresh_provider, new_cloud):
    from tests.support.servers import free_port

    fresh_provider.definitions[new_cloud] = {"url": f"http://127.0.0.1:{free_port()}/auth"}
    response = client.post(
        "/v1/tokens", json={"cloud_id": new_cloud, "username": "a", "password": "b"}
    )
    assert response.status_code == 502
    assert response.json["error"] == "upstream_error"


@pytest.mark.parametrize(
    "behaviour",
    [
        Behaviour(mode="status", status=500),
        Behaviour(mode="garbage"),
        Behaviour(mode="close"),
        Behaviour(mode="status", status=200, body='{"no": "url"}'),
    ],
)
def test_portal_failures_are_502(make_app, account, fresh_provider, behaviour):
    client = make_app(SSO_PORTAL_TIMEOUT_SECONDS="0.5").test_client()
    fresh_provider.portal_behaviour = behaviour
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 502
    assert response.json["error"] == "upstream_error"


def test_slow_portal_is_502(make_app, account, fresh_provider):
    client = make_app(SSO_PORTAL_TIMEOUT_SECONDS="0.3").test_client()
    fresh_provider.portal_behaviour = Behaviour(mode="slow", delay=1.5)
    assert client.post("/v1/tokens", json=body_of(account)).status_code == 502


def test_portal_unreachable_is_502(make_app, account):
    from tests.support.servers import free_port

    client = make_app(SSO_PORTAL_URL=f"http://127.0.0.1:{free_port()}/p/{{cloud_id}}").test_client()
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 502


def test_plain_http_ext_auth_is_refused_unless_allowed(make_app, account, fresh_provider):
    client = make_app(SSO_ALLOW_INSECURE_HTTP="0").test_client()
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 502
    assert response.json["error"] == "upstream_error"
    assert fresh_provider.auth_requests == []


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_clouds_file_wins_over_the_portal(make_app, account, fresh_provider, tmp_path, suffix):
    definition = fresh_provider.default_definition(CLOUD)
    path = tmp_path / f"clouds.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps({CLOUD: definition}))
    else:
        path.write_text(f"{CLOUD}:\n  url: '{definition['url']}'\n  method: GET\n")
    fresh_provider.portal_behaviour = Behaviour(mode="status", status=500)
    client = make_app(SSO_CLOUDS_FILE=str(path)).test_client()
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 200, response.json
    assert fresh_provider.portal_hits[CLOUD] == 0


def test_clouds_file_alone_without_portal(make_app, account, fresh_provider, tmp_path, new_cloud):
    path = tmp_path / "clouds.json"
    path.write_text(json.dumps({CLOUD: fresh_provider.default_definition(CLOUD)}))
    client = make_app(SSO_CLOUDS_FILE=str(path), SSO_PORTAL_URL="").test_client()
    assert client.post("/v1/tokens", json=body_of(account)).status_code == 200
    other = client.post("/v1/tokens", json=body_of(account, cloud_id=new_cloud))
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"a": 1}{', None),
    ],
)
def test_invalid_json_is_400(client, raw, content_type):
    response = client.post("/v1/tokens", data=raw, content_type=content_type)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"username": None}, "username"),
        ({"password": None}, "password"),
        ({"cloud_id": None}, "cloud_id"),
        ({"username": ""}, "username"),
        ({"password": ""}, "password"),
        ({"cloud_id": ""}, "cloud_id"),
        ({"username": "x" * 129}, "username"),
        ({"username": "a\x00b"}, "username"),
        ({"username": "a\nb"}, "username"),
        ({"username": "a\x7fb"}, "username"),
        ({"username": 5}, "username"),
        ({"password": ["x"]}, "password"),
        ({"cloud_id": "has space"}, "cloud_id"),
        ({"cloud_id": "slash/no"}, "cloud_id"),
        ({"cloud_id": "DEMO\n"}, "cloud_id"),
        ({"cloud_id": "x" * 65}, "cloud_id"),
        ({"host": "a\r\nb"}, "host"),
        ({"host": 7}, "host"),
    ],
)
def test_field_errors_are_400_invalid_request(client, account, fresh_provider, change, field):
    body = body_of(account) | change
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/tokens", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert field in response.json["details"]
    assert fresh_provider.auth_requests == []


@pytest.mark.parametrize(
    "change", [{"password": "\ud800"}, {"username": "a\udfffb"}, {"host": "\ud800"}]
)
def test_unpaired_surrogates_make_the_body_invalid_json(client, account, fresh_provider, change):
    """A \\ud800 escape is JSON by the grammar but not Unicode text (RFC 7493): the body is
    refused whole, in both services, by the one body reader."""
    response = client.post("/v1/tokens", json=body_of(account) | change)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_json"
    assert fresh_provider.auth_requests == []


def test_identifier_edges_are_accepted(client, fresh_provider):
    cloud = "a" * 60 + "_.-9"
    username = "ü" * 128
    fresh_provider.add_user(cloud, username, "pw")
    response = client.post(
        "/v1/tokens", json={"cloud_id": cloud, "username": username, "password": "pw"}
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_empty_body_is_missing_fields(client, raw):
    response = client.post("/v1/tokens", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert set(response.json["details"]) == {"username", "password", "cloud_id"}


def test_unknown_fields_are_ignored(client, account):
    response = client.post("/v1/tokens", json=body_of(account, device="phone"))
    assert response.status_code == 200


def test_body_too_large_is_413(client, account):
    response = client.post("/v1/tokens", json=body_of(account, padding="x" * 70_000))
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


def test_account_rate_limit(make_app, account, fresh_provider):
    client = make_app(
        SSO_MAX_FAILED_LOGINS="2", SSO_FAILED_LOGIN_WINDOW_SECONDS="600"
    ).test_client()
    for _ in range(2):
        assert client.post("/v1/tokens", json=body_of(account, password="no")).status_code == 401
    calls = len(fresh_provider.auth_requests)
    for password in ("no", account["password"]):
        response = client.post("/v1/tokens", json=body_of(account, password=password))
        assert response.status_code == 429
        assert response.json["error"] == "too_many_attempts"
        assert 0 < int(response.headers["Retry-After"]) <= 600
    assert len(fresh_provider.auth_requests) == calls  # ext-auth not asked while locked
    # Another account of the same cloud is not affected.
    fresh_provider.add_user(CLOUD, account["username"] + "-b", "pw")
    other = body_of(account, username=account["username"] + "-b", password="pw")
    assert client.post("/v1/tokens", json=other).status_code == 200


def test_successful_logins_never_count_against_the_account(make_app, account):
    client = make_app(SSO_MAX_FAILED_LOGINS="2").test_client()
    for _ in range(5):
        assert client.post("/v1/tokens", json=body_of(account)).status_code == 200
    assert client.post("/v1/tokens", json=body_of(account, password="no")).status_code == 401
    assert client.post("/v1/tokens", json=body_of(account)).status_code == 200


def test_ip_rate_limit(make_app, account):
    client = make_app(SSO_MAX_LOGINS_PER_IP="3").test_client()
    for _ in range(3):
        assert client.post("/v1/tokens", json=body_of(account)).status_code == 200
    response = client.post("/v1/tokens", json=body_of(account))
    assert response.status_code == 429
    assert response.json["error"] == "too_many_attempts"
    assert 0 < int(response.headers["Retry-After"]) <= 60
    elsewhere = client.post(
        "/v1/tokens", json=body_of(account), environ_base={"REMOTE_ADDR": "10.9.8.7"}
    )
    assert elsewhere.status_code == 200


def test_ip_limit_uses_forwarded_for_only_behind_trusted_proxies(make_app, account):
    trusting = make_app(SSO_MAX_LOGINS_PER_IP="1", SSO_TRUSTED_PROXY_COUNT="1").test_client()
    for n in range(3):
        response = trusting.post(
            "/v1/tokens", json=body_of(account), headers={"X-Forwarded-For": f"198.51.100.{n}"}
        )
        assert response.status_code == 200
    direct = make_app(SSO_MAX_LOGINS_PER_IP="1").test_client()
    ip = f"10.0.0.{secrets.randbelow(200)}"
    statuses = [
        direct.post(
            "/v1/tokens",
            json=body_of(account),
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            environ_base={"REMOTE_ADDR": ip},
        ).status_code
        for n in range(2)
    ]
    assert statuses == [200, 429]


def test_get_is_405_in_the_error_shape(client):
    response = client.get("/v1/tokens")
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
