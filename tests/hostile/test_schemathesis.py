"""Schemathesis against both services' own OpenAPI documents, over HTTP to real processes:
no 5xx, every response conforms to the spec (status code, content type, schema), and every
error uses the one error shape.

The cases come from each operation's Hypothesis strategy (positive and negative data), run
with a small, derandomized example budget so CI stays bounded and repeatable. (schemathesis'
own pytest loader for fixture-provided schemas does not run under pytest 9.)
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.clients import ERROR_KEYS

# Small and derandomized in CI; FUZZ_EXAMPLES=200 for a deeper local run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))

# Operations where schema-valid data may rightly be refused, because validity depends on other
# values or on server state, which OpenAPI cannot describe: `block` must have ceil(bits/4) hex
# digits and stay below 2**bits for the given `blocks`; a `since` revision the device's change
# log does not hold (older than kept, or newer than the device) is 410 revision_expired; a
# contactId twice in one batch, or both upserted and deleted, is a 422 (JSON Schema cannot say
# "unique by contactId").
EXCLUDED = {
    "GET /v1/devices/{device_id}/checksums": [positive_data_acceptance],
    "GET /v1/devices/{device_id}/contacts": [positive_data_acceptance],
    "PATCH /v1/devices/{device_id}/contacts": [positive_data_acceptance],
    "PUT /v1/devices/{device_id}/contacts": [positive_data_acceptance],
}
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    print_blob=False,
)


@schemathesis.check
def error_shape(ctx, response, case):
    """Every 4xx/5xx body is {"error": snake_case, "message": str, "details"?: object}."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert set(body) <= ERROR_KEYS, f"unexpected keys in error body: {sorted(body)}"
    code = body.get("error")
    assert isinstance(code, str) and code == code.lower() and code.replace("_", "").isalnum(), (
        f"error code is not snake_case: {code!r}"
    )
    assert isinstance(body.get("message"), str) and body["message"], "message missing"
    assert isinstance(body.get("details", {}), dict), "details is not an object"
    return None


def fuzz_test(operation, mode, base_url: str, headers: dict | None):
    """A Hypothesis test sending `mode` cases of `operation` and validating every answer."""
    excluded = EXCLUDED.get(operation.label, [])

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        case.validate_response(
            response, additional_checks=[error_shape], excluded_checks=excluded, headers=headers
        )

    return run


def fuzz(schema, base_url: str, headers: dict | None = None) -> list[str]:
    """Run every operation with positive and negative cases; the failures, one line each."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_test(operation, mode, base_url, headers)()
            except Unsatisfiable:
                continue  # nothing to negate (an operation without parameters or body)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
                # Generated bodies can be huge; the head of the report names the failure.
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    return failures


def test_sso_conforms_to_its_spec(sso_server):
    schema = schemathesis.openapi.from_url(sso_server.url + "/openapi.json")
    failures = fuzz(schema, sso_server.url)
    assert not failures, "\n\n".join(failures)


@pytest.fixture(scope="module")
def contacts_user(make_user):
    return make_user(numbers=["+15557770001"])


def test_contacts_conforms_to_its_spec(hostile_contacts, contacts_user):
    client = contacts_user.client(hostile_contacts)
    # A registered device, so generated device ids sometimes hit one that exists.
    assert client.put_device("phone").status_code == 201
    schema = schemathesis.openapi.from_url(hostile_contacts.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {contacts_user.token}"}
    failures = fuzz(schema, hostile_contacts.url, headers)
    assert not failures, "\n\n".join(failures)
