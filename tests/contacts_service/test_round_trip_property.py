"""Property: any JSON a client puts in a contact reads back equal, key order included."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts_service.checksums import contact_checksum

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
contacts = st.builds(
    lambda cid, extra, name: {"contactId": cid, "displayName": name, **extra},
    # contactIds: any text but control characters (C0, DEL, C1), which are refused.
    st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30),
    st.dictionaries(
        st.text(min_size=1, max_size=10).map(lambda k: "x-" + k), json_values, max_size=5
    ),
    st.text(max_size=60),
)


def key_orders(value):
    if isinstance(value, dict):
        return [list(value), *[key_orders(v) for v in value.values()]]
    if isinstance(value, list):
        return [key_orders(v) for v in value]
    return None


@settings(
    max_examples=25,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(contact=contacts)
def test_any_contact_round_trips(alice, contact):
    alice.put("/v1/devices/prop")
    body = json.dumps({"contacts": [contact]}, ensure_ascii=False).encode("utf-8")
    response = alice.put(
        "/v1/devices/prop/contacts", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    read = alice.contacts("prop")["contacts"]
    expected = {**contact, "checksum": contact_checksum(contact)}
    assert read == [expected]
    assert key_orders(read[0]) == key_orders(expected)
