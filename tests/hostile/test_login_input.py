"""Hostile login fields: a Cloud ID that would walk or inject into the portal URL, oversize or
control-character usernames, wrong types. A 400 invalid_request naming the field, and neither
the portal nor ext-auth is called."""

from __future__ import annotations

import pytest
import requests

from tests.support.clients import is_error_shape


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cloud_id": "../admin", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "a/b", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "a?x=1", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "a#b", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "a%2Fb", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "a b", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "é", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "c" * 65, "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "C", "username": "u" * 129, "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "a\x01b", "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "a\nb", "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "", "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "u", "password": ""}, "password"),
        ({"cloud_id": "C", "username": "u"}, "password"),
        ({"cloud_id": ["C"], "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "C", "username": 5, "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "u", "password": {"p": 1}}, "password"),
        ({"cloud_id": ".", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "..", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "...", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "DEMO\n", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "DEMO\x00", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "D\u0415MO", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "\uff24EMO", "username": "u", "password": "p"}, "cloud_id"),
        ({"cloud_id": "C", "username": "alice\n", "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "alice\x00", "password": "p"}, "username"),
        ({"cloud_id": "C", "username": "alice\u0085", "password": "p"}, "username"),
    ],
    ids=[
        "cloud-dotdot-slash", "cloud-slash", "cloud-query", "cloud-fragment", "cloud-encoded",
        "cloud-space", "cloud-non-ascii", "cloud-65", "cloud-empty", "user-129", "user-ctrl",
        "user-newline", "user-empty", "password-empty", "password-missing", "cloud-list",
        "user-int", "password-object", "cloud-dot", "cloud-dotdot", "cloud-dots",
        "cloud-trailing-newline", "cloud-nul", "cloud-cyrillic-e", "cloud-fullwidth-d",
        "user-trailing-newline", "user-nul", "user-c1-next-line",
    ],
)  # fmt: skip
def test_hostile_login_fields_are_a_400_and_reach_no_upstream(
    sso_server, fresh_provider, body, field
):
    response = requests.post(sso_server.url + "/v1/tokens", json=body, timeout=15)
    assert response.status_code == 400, response.text
    assert is_error_shape(response)
    assert response.json()["error"] == "invalid_request"
    assert field in response.json().get("details", {}), response.json()
    assert sum(fresh_provider.portal_hits.values()) == 0
    assert fresh_provider.auth_requests == []


@pytest.mark.parametrize("cloud_id", ["a.b", "..a", "a..", ".a", "x-y_z.1"])
def test_cloud_ids_with_dots_stay_in_their_path_segment(sso_server, fresh_provider, cloud_id):
    """An id with dots besides other characters is valid, and the portal is asked for exactly
    that id at the template's path (dot segments would have been removed from the path)."""
    body = {"cloud_id": cloud_id, "username": "u", "password": "p"}
    response = requests.post(sso_server.url + "/v1/tokens", json=body, timeout=15)
    assert response.status_code == 404  # the stand-in portal knows none of them
    assert response.json()["error"] == "unknown_cloud"
    assert fresh_provider.portal_hits == {cloud_id: 1}
