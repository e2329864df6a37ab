"""/v1/admin/...: operator actions (API.md "Admin"), for the clients in SSO_ADMIN_CLIENTS.

The gate both services share (shared/admin.py `AdminGate`): HTTP Basic, compared in constant
time; failed authentications are throttled per client address like introspection clients'
(SSO_MAX_FAILED_CLIENT_AUTH_PER_IP, counted separately). Field errors are 400 invalid_request;
bodies are JSON only. Every request writes one audit line.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, jsonify
from marshmallow import Schema, fields

from shared.admin import (
    AUTH_FAILURES,
    CLOUD_ID_PARAMETER,
    AccountBodySchema,
    AdminGate,
    CloudIdSchema,
    admin_contract,
    note_account,
)
from shared.contract import Answer, Failure
from shared.errors import ApiError
from shared.metrics import register_collector
from sso_service.admin import AccountAdmin, cloud_gauges
from sso_service.rate_limit import RedisFailureThrottle
from sso_service.state import app_state

blueprint = Blueprint("admin", __name__)

admin_api = admin_contract("Redis, the token store, is unreachable")
gate = AdminGate("sso_service", realm="sso-admin")

_EXTENSION = "sso_admin"


@dataclass(frozen=True)
class AdminState:
    accounts: AccountAdmin


def init_app(app: Flask) -> None:
    """Attach the admin collaborators (on the app's Redis) and register the routes."""
    sso = app_state(app)
    gate.init_app(
        app,
        sso.settings.admin_clients,
        RedisFailureThrottle(
            sso.redis, sso.settings.max_failed_client_auth_per_ip, prefix="sso:rl:admin"
        ),
    )
    accounts = AccountAdmin(
        sso.redis, sso.settings.redis_min_replicas_ack, sso.settings.redis_wait_timeout_ms
    )
    app.extensions[_EXTENSION] = AdminState(accounts=accounts)
    register_collector(app, cloud_gauges(accounts))
    app.register_blueprint(blueprint)


def _admin() -> AdminState:
    return current_app.extensions[_EXTENSION]


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
    before=gate.authenticate,
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
    before=gate.authenticate,
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


gate.audit(blueprint, {"revoke_account": "accounts.revoke", "cloud_stats": "clouds.stats"})
