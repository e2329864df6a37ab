"""Schemas both services share: the one error body."""

from __future__ import annotations

from marshmallow import Schema, fields


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
