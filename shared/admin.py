"""What the admin routes and commands of both services share: the one gate of the routes
(`AdminGate`: HTTP Basic, the failure throttle, the audit line), their contract's common parts,
the account body, the Cloud ID path parameter, and the `accounts` command's arguments.

Audit lines go to the `<service>.admin` logger at INFO whatever LOG_LEVEL says (an operator
action is never filtered out), as JSON with an `audit` object: client id, action, cloud_id,
username, result (`ok` or the error code) and, over HTTP, the status and client address.
Nothing else of the request is logged: no header, no body, so no secret.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from marshmallow import RAISE, Schema, ValidationError, fields

from shared import text
from shared.client_auth import FailureThrottle, basic_client
from shared.contract import Api, Failure
from shared.schemas import cloud_id_field, username_field
from shared.text import validator

CLOUD_ID_PARAMETER = {
    "type": "string",
    "pattern": text.CLOUD_ID_PATTERN,
    "minLength": 1,
    "maxLength": 64,
}


AUTH_FAILURES = [
    Failure(401, "invalid_client", "Missing or wrong admin client credentials"),
    Failure(429, "too_many_attempts", "Too many failed authentications from this address"),
]


def admin_contract(unavailable: str) -> Api:
    """The contract of a service's admin routes: field errors are 400 invalid_request (as at
    the SSO, not the Contacts /v1 422), and 503 when `unavailable` (the service's store) is."""
    return Api(
        validation_status=400,
        validation_error="invalid_request",
        validation_message="The request has invalid or missing fields.",
        common_failures=[Failure(503, "unavailable", unavailable)],
        security="admin",
    )


class AccountBodySchema(Schema):
    """An admin body naming one account; other keys are a 400."""

    class Meta:
        unknown = RAISE

    cloud_id = cloud_id_field()
    username = username_field()


class CloudIdSchema(Schema):
    """A Cloud ID from a path (GET .../clouds/{cloud_id}/stats)."""

    cloud_id = fields.String(required=True, validate=validator(text.cloud_id))


def audit_logger(service: str) -> logging.Logger:
    """The service's audit logger: INFO always reaches the log handler, whatever LOG_LEVEL."""
    log = logging.getLogger(f"{service}.admin")
    log.setLevel(logging.INFO)
    return log


def write_audit(
    log: logging.Logger,
    *,
    client: str | None,
    action: str,
    result: str,
    cloud_id: str | None = None,
    username: str | None = None,
    **extra: Any,
) -> None:
    """One structured line for one admin action."""
    entry = {
        "client": client,
        "action": action,
        "cloud_id": cloud_id,
        "username": username,
        "result": result,
        **extra,
    }
    log.info("admin %s: %s", action, result, extra={"audit": entry})


def note_account(**fields_: str) -> None:
    """Name the account (or cloud) the current admin request acts on, for its audit line."""
    g.admin_target = fields_


def note_client(client_id: str) -> None:
    g.admin_client = client_id


def register_audit(bp: Blueprint, log: logging.Logger, actions: dict[str, str]) -> None:
    """After every answer of the blueprint's routes (errors included: failed authentication,
    invalid fields, unknown account), write the request's one audit line. `actions` maps a
    view name to the action it logs as."""

    @bp.after_request
    def _audit(response: Response) -> Response:
        view = (request.endpoint or "").rpartition(".")[2]
        action = actions.get(view)
        if action is None or request.method == "OPTIONS":
            return response
        if response.status_code < 400:
            result = "ok"
        else:
            body = response.get_json(silent=True)
            result = body.get("error", "error") if isinstance(body, dict) else "error"
        write_audit(
            log,
            client=g.get("admin_client"),
            action=action,
            result=result,
            status=response.status_code,
            remote=request.remote_addr,
            **g.get("admin_target", {}),
        )
        return response


class AdminGate:
    """The one gate in front of a service's /v1/admin routes.

    `authenticate` (a route's `before`) checks HTTP Basic against the operators' clients with
    `shared.client_auth.basic_client` (constant-time compare, failures counted by the service's
    throttle, 401 or 429) and notes the client for the audit line; `audit` registers the one
    audit line per request on the routes' blueprint. The clients and the throttle are per app
    (`init_app`), so one module-level gate serves every app built in a process.
    """

    def __init__(self, service: str, realm: str):
        self.realm = realm
        self.log = audit_logger(service)
        self._extension = f"{service}.admin_gate"

    def init_app(self, app: Flask, clients: Mapping[str, str], throttle: FailureThrottle) -> None:
        app.extensions[self._extension] = (clients, throttle)

    def authenticate(self) -> None:
        clients, throttle = current_app.extensions[self._extension]
        note_client(basic_client(clients, throttle, realm=self.realm))

    def audit(self, bp: Blueprint, actions: dict[str, str]) -> None:
        """One audit line after every answer of `bp`'s routes (see register_audit)."""
        register_audit(bp, self.log, actions)


# --- the `accounts` command -----------------------------------------------------------------


def cli_client() -> str:
    """The client id audit lines of the command line carry: `cli:<operating-system user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cli_account(prog: str, args: argparse.Namespace) -> dict | None:
    """The account the command names, validated like an admin body; None (problems printed
    to stderr) when a field is invalid."""
    try:
        return AccountBodySchema().load({"cloud_id": args.cloud_id, "username": args.username})
    except ValidationError as exc:
        for name, problems in sorted(exc.messages.items()):
            print(f"{prog}: --{name.replace('_', '-')}: {' '.join(problems)}", file=sys.stderr)
        return None
