"""Schemas both services share: the one error body."""

from __future__ import annotations

from marshmallow import Schema, fields

from shared import text
from shared.text import validator


class ErrorSchema(Schema):
    """Every 4xx/5xx body of both services."""

    error = fields.String(
        required=True, metadata={"description": "snake_case code", "example": "not_found"}
    )
    message = fields.String(required=True, metadata={"description": "One sentence for a human."})
    details = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field path → problems (validation errors name each field)."},
    )


def cloud_id_field() -> fields.String:
    """A required Cloud ID (shared/text.py's rule), as every body that names one declares it."""
    return fields.String(
        required=True,
        validate=validator(text.cloud_id),
        metadata={
            "description": "The provider's Cloud ID (1-64 characters of [A-Za-z0-9_.-], not only"
            " dots).",
            "pattern": text.CLOUD_ID_PATTERN,
            "minLength": 1,
            "maxLength": 64,
        },
    )


def username_field() -> fields.String:
    """A required SIP username (shared/text.py's rule)."""
    return fields.String(
        required=True,
        validate=validator(text.username),
        metadata={
            "description": "SIP username (1-128 characters, no control characters).",
            "pattern": text.NO_CONTROL_PATTERN,
            "minLength": 1,
            "maxLength": 128,
        },
    )
