"""Reading a request body (JSON object or form) through a marshmallow schema."""

from __future__ import annotations

from flask import request
from marshmallow import Schema, ValidationError

from shared.errors import ApiError, flatten_validation_messages, json_object

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def load_body(schema: Schema) -> dict:
    """The validated body; 400 invalid_json for a bad JSON body, 400 invalid_request else.

    An empty body is an empty set of fields (so a bodiless revoke is "token missing"), as
    form-encoding clients of RFC 7009/7662 endpoints expect.
    """
    if request.mimetype in _FORMS:
        data = {key: request.form.get(key) for key in request.form}
    elif not request.get_data(cache=True).strip():
        data = {}
    else:
        data = json_object()
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ApiError(
            400,
            "invalid_request",
            "The request has invalid or missing fields.",
            flatten_validation_messages(exc.messages),
        ) from None
