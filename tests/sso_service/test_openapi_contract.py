"""Property-based check of the API against its own OpenAPI document (schemathesis): every
answer has a documented status, content type and schema, and nothing is a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings


@pytest.mark.parametrize("path", ["/v1/tokens", "/v1/introspect", "/v1/revoke", "/readyz"])
def test_api_matches_its_openapi_document(app, path):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    (operation,) = [op for op in operations if op.path == path]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        case.call_and_validate()

    check()
