"""Marshmallow schemas: request bodies, the External Authentication definition, and the
response shapes the OpenAPI document describes."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from sso_service.ext_auth import Definition

# The patterns are for the OpenAPI document; the validators apply them with fullmatch/search,
# which (unlike `$` with re.match) do not let a trailing newline through.
# At least one character that is not a dot: `.` and `..` are refused (they are path segments).
CLOUD_ID_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
_CLOUD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("Must not contain control characters.")


def _cloud_id(value: str) -> None:
    if not _CLOUD_ID.fullmatch(value):
        raise ValidationError("Must be 1-64 characters of [A-Za-z0-9_.-].")
    if not value.strip("."):
        # `.` and `..` are path segments of their own: they would walk the portal URL's path.
        raise ValidationError("Must not consist of dots only.")


def _unicode_text(value: str) -> None:
    # JSON can carry unpaired surrogates ("\ud800"); they cannot be encoded for the provider's
    # service or for Redis, so they are a field error, not a crash.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Contains an unpaired surrogate.") from None


class LoginSchema(Schema):
    """POST /v1/tokens body."""

    class Meta:
        unknown = EXCLUDE

    username = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=128), _no_control_characters, _unicode_text],
        metadata={
            "description": "SIP username (1-128 characters, no control characters).",
            "pattern": NO_CONTROL_PATTERN,
        },
    )
    password = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=1024), _unicode_text],
        load_only=True,
        metadata={"description": "SIP password; never logged, stored or echoed."},
    )
    cloud_id = fields.String(
        required=True,
        validate=_cloud_id,
        metadata={
            "description": "The provider's Cloud ID (1-64 characters, not only dots).",
            "pattern": CLOUD_ID_PATTERN,
            "minLength": 1,
            "maxLength": 64,
        },
    )
    host = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=255), _no_control_characters, _unicode_text],
        metadata={
            "description": "SIP domain, optional; fills %host% in the definition.",
            "pattern": NO_CONTROL_PATTERN,
        },
    )


class TokenFieldSchema(Schema):
    """POST /v1/introspect and /v1/revoke body."""

    class Meta:
        unknown = EXCLUDE

    token = fields.String(required=True, metadata={"description": "The access token."})


class AccountSchema(Schema):
    cloud_id = fields.String(required=True)
    username = fields.String(required=True)
    phone_numbers = fields.List(fields.String(), required=True, metadata={"example": ["+1555"]})
    sip_uri = fields.String(allow_none=True, required=True)


class TokenResponseSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Opaque, 256 random bits."})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds left."})
    account = fields.Nested(AccountSchema, required=True)


class IntrospectionResponseSchema(Schema):
    active = fields.Boolean(required=True)
    cloud_id = fields.String(metadata={"description": "Only when active."})
    username = fields.String()
    phone_numbers = fields.List(fields.String())
    sip_uri = fields.String(allow_none=True)
    iat = fields.Integer(metadata={"description": "Issued at, Unix seconds."})
    exp = fields.Integer(metadata={"description": "Expires at, Unix seconds."})


class RevokeResponseSchema(Schema):
    """An empty object: revocation answers 200 whether or not the token was known."""


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "invalid_request"})
    message = fields.String(required=True)
    details = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class DefinitionSchema(Schema):
    """An Acrobits External Authentication web service definition (portal or clouds file)."""

    class Meta:
        unknown = EXCLUDE

    url = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    method = fields.String(
        load_default=None, validate=validate.Regexp(r"[A-Za-z]{1,16}\Z"), allow_none=True
    )
    postData = fields.String(load_default=None, allow_none=True)
    contentType = fields.String(load_default=None, allow_none=True)
    headers = fields.Raw(load_default=None, allow_none=True)
    authUsername = fields.String(load_default=None, allow_none=True)
    authPassword = fields.String(load_default=None, allow_none=True)
    timeout = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0, min_inclusive=False)
    )

    @post_load
    def _to_definition(self, data, **kwargs):
        return Definition.from_fields(data)
