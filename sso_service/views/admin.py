"""/v1/admin/...: operator actions (API.md "Admin"), for the clients in SSO_ADMIN_CLIENTS.

HTTP Basic, compared in constant time; failed authentications are throttled per client address
like introspection clients' (SSO_MAX_FAILED_CLIENT_AUTH_PER_IP, counted separately). Field
errors are 400 invalid_request; bodies are JSON only. Every request writes one audit line.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema, fields

from shared.admin import (
    CLOUD_ID_PARAMETER,
    AccountBodySchema,
    CloudIdSchema,
    audit_logger,
    note_account,
    note_client,
    register_audit,
)
from shared.client_auth import basic_client
from shared.contract import Answer, Api, Failure
from shared.errors import ApiError
from sso_service.admin import AccountAdmin
from sso_service.rate_limit import RedisFailureThrottle
from sso_service.state import app_state

blueprint = Blueprint("admin", __name__)

admin_api = Api(
    validation_status=400,
    validation_error="invalid_request",
    validation_message="The request has invalid or missing fields.",
    common_failures=[Failure(503, "unavailable", "Redis, the token store, is unreachable")],
    security="admin",
)

AUTH_FAILURES = [
    Failure(401, "invalid_client", "Missing or wrong admin client credentials"),
    Failure(429, "too_many_attempts", "Too many failed authentications from this address"),
]

_EXTENSION = "sso_admin"


@dataclass(frozen=True)
class AdminState:
    clients: dict[str, str]
    accounts: AccountAdmin
    throttle: RedisFailureThrottle


def init_app(app: Flask) -> None:
    """Attach the admin collaborators (on the app's Redis) and register the routes."""
    sso = app_state(app)
    app.extensions[_EXTENSION] = AdminState(
        clients=sso.settings.admin_clients,
        accounts=AccountAdmin(sso.redis),
        throttle=RedisFailureThrottle(
            sso.redis, sso.settings.max_failed_client_auth_per_ip, prefix="sso:rl:admin"
        ),
    )
    app.register_blueprint(blueprint)


def _admin() -> AdminState:
    return current_app.extensions[_EXTENSION]


def _authenticate() -> None:
    admin = _admin()
    note_client(basic_client(admin.clients, admin.throttle, realm="sso-admin"))


class RevokedSchema(Schema):
    revoked = fields.Integer(
        required=True, metadata={"description": "Tokens of the account made inactive (0 or 1)."}
    )


class CloudStatsSchema(Schema):
    cloud_id = fields.String(required=True)
    accounts = fields.Integer(
        required=True, metadata={"description": "Accounts of the Cloud ID that ever logged in."}
    )
    active_tokens = fields.Integer(
        required=True, metadata={"description": "Accounts holding an active token now."}
    )


@admin_api.route(
    blueprint,
    "/v1/admin/accounts/revoke",
    "POST",
    before=_authenticate,
    body=AccountBodySchema(),
    answers=[Answer(200, RevokedSchema, "Every token of the account is inactive")],
    failures=[*AUTH_FAILURES, Failure(404, "not_found", "The account never logged in")],
    tags=["admin"],
)
def revoke_account(body: dict):
    """Revoke every token of one account.

    From then on introspection answers `{"active": false}` for them, and the account's next
    login gets a new token. One atomic step in Redis."""
    note_account(cloud_id=body["cloud_id"], username=body["username"])
    revoked = _admin().accounts.revoke(body["cloud_id"], body["username"])
    if revoked is None:
        raise ApiError(404, "not_found", "No such account.")
    return jsonify(revoked=revoked)


@admin_api.route(
    blueprint,
    "/v1/admin/clouds/<cloud_id>/stats",
    "GET",
    before=_authenticate,
    path={"cloud_id": CLOUD_ID_PARAMETER},
    answers=[Answer(200, CloudStatsSchema, "The Cloud ID's figures (zeros when unknown)")],
    failures=[
        Failure(400, "invalid_request", "The cloud_id is not a Cloud ID"),
        *AUTH_FAILURES,
    ],
    tags=["admin"],
)
def cloud_stats(cloud_id: str):
    """Figures of one Cloud ID: accounts and active tokens.

    Kept up to date by logins and logouts (no scan of Redis); accounts whose last login
    predates this release count from their next login."""
    admin_api.load(CloudIdSchema(), {"cloud_id": cloud_id})
    note_account(cloud_id=cloud_id)
    return jsonify(_admin().accounts.stats(cloud_id).as_dict())


register_audit(
    blueprint,
    audit_logger("sso_service"),
    {"revoke_account": "accounts.revoke", "cloud_stats": "clouds.stats"},
)
