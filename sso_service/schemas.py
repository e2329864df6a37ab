"""Marshmallow schemas: request bodies, the External Authentication definition, and the
response shapes the OpenAPI document describes."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from shared import text
from shared.schemas import cloud_id_field, username_field
from shared.text import validator
from sso_service.ext_auth import Definition


class LoginSchema(Schema):
    """POST /v1/tokens body."""

    class Meta:
        unknown = EXCLUDE

    username = username_field()
    password = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1024),
        load_only=True,
        metadata={"description": "SIP password; never logged, stored or echoed."},
    )
    cloud_id = cloud_id_field()
    host = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=255), validator(text.control_characters)],
        metadata={
            "description": "SIP domain, optional; fills %host% in the definition.",
            "pattern": text.NO_CONTROL_PATTERN,
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
