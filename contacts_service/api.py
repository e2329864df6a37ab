"""How the Contacts service's routes declare their contracts (shared/contract.py): schema
failures are 422 validation_error keyed by path from the body root, bodies are JSON, and every
/v1 route is behind bearer authentication checked at the SSO."""

from __future__ import annotations

from contacts_service.schemas import DEVICE_ID_PARAMETER
from shared.contract import Api, Failure

api = Api(
    validation_status=422,
    validation_error="validation_error",
    validation_message="The request failed validation.",
    common_failures=[
        Failure(401, "invalid_token", "Missing, inactive or expired token (`WWW-Authenticate`)"),
        Failure(503, "auth_unavailable", "The SSO service cannot be reached"),
        Failure(503, "unavailable", "PostgreSQL cannot be reached"),
    ],
    security="bearer",
)

DEVICE_PATH = {"device_id": DEVICE_ID_PARAMETER}
NO_DEVICE = Failure(404, "not_found", "No such device for this account")
