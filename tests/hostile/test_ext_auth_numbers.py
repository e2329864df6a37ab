"""Whatever ext-auth sends as numbers, a login never fails with a 5xx: a number is kept in
E.164 when phonenumbers accepts it as possible (18 characters included), dropped otherwise."""

from __future__ import annotations

import json
import secrets

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_service.ext_auth import UpstreamError, normalise_numbers, parse_answer
from tests.support.stack import INTROSPECTION_CLIENT

LONG_NUMBERS = ["+49123456789012345", "+81123456789012345"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
numberish = st.text(alphabet="+0123456789 ()-.#*;tel:x\u0660\uff11", max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(numberish | st.text(max_size=200), max_size=20), st.sampled_from([None, "DE"]))
def test_normalising_any_strings_never_raises(raw, region):
    for number in normalise_numbers(raw, region):
        assert number.startswith("+") and number[1:].isdigit()


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["phoneNumbers", "phone_numbers", "numbers", "sipUri", "sip_uri"]),
        json_values | st.lists(numberish | st.fixed_dictionaries({"number": numberish})),
    )
)
def test_any_json_answer_parses_or_is_an_upstream_error(body):
    try:
        result = parse_answer("application/json", json.dumps(body).encode(), None)
    except UpstreamError:
        return
    assert all(isinstance(number, str) for number in result.phone_numbers)
    assert result.sip_uri is None or isinstance(result.sip_uri, str)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(numbers=st.lists(numberish, max_size=4))
def test_a_login_with_any_numbers_is_never_a_5xx(sso_server, provider, numbers):
    cloud_id = "N" + secrets.token_hex(5)
    provider.add_user(cloud_id, "nia", "nia-pw", [*numbers, *LONG_NUMBERS])
    body = {"cloud_id": cloud_id, "username": "nia", "password": "nia-pw"}
    response = requests.post(sso_server.url + "/v1/tokens", json=body, timeout=15)
    assert response.status_code == 200, response.text
    assert set(LONG_NUMBERS) <= set(response.json()["account"]["phone_numbers"])


@pytest.mark.parametrize("number", LONG_NUMBERS)
def test_long_numbers_survive_login_and_introspection(sso_server, provider, number):
    cloud_id = "N" + secrets.token_hex(5)
    provider.add_user(cloud_id, "ned", "ned-pw", [number])
    body = {"cloud_id": cloud_id, "username": "ned", "password": "ned-pw"}
    token = requests.post(sso_server.url + "/v1/tokens", json=body, timeout=15).json()["token"]
    answer = requests.post(
        sso_server.url + "/v1/introspect",
        data={"token": token},
        auth=INTROSPECTION_CLIENT,
        timeout=15,
    ).json()
    assert answer["phone_numbers"] == [number]
