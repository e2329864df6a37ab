"""One declaration per route: what it takes (body, query, path parameters), what it answers and
which errors it can give. Validation, error answers and the OpenAPI document
(shared/openapi.py) all follow from that one declaration, so they cannot disagree.

    api = Api(validation_status=422, validation_error="validation_error")

    @api.route(bp, "/devices/<device_id>/contacts", "PATCH",
               path={"device_id": DEVICE_ID_PARAMETER},
               body=PatchContactsSchema(),
               answers=[Answer(200, WriteResultSchema, "Applied")],
               errors=[NOT_FOUND])
    def patch_contacts(device_id, body): ...

The view gets the validated `body` and `query` as keyword arguments. Routes that validate
nothing themselves (/healthz, /metrics) are declared with `declare()`.

Why not flask-smorest or APIFairy: both parse through webargs, whose error shapes, form/JSON
handling and body reading would have to be bent back to this contract (one error shape,
400 vs 422 per service, JSON or form bodies at the SSO, bounded chunked bodies, a fast path
for 50,000-contact uploads). apispec's marshmallow plugin, which both use underneath, builds
the document here from the same schema objects that validate.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, request
from marshmallow import Schema, ValidationError

from shared.body import read_body, request_stream
from shared.errors import ApiError, flatten_validation_messages


@dataclass(frozen=True)
class Answer:
    """A success answer: status, body schema (None for no body), description, media type and
    response headers (name → description)."""

    status: int
    schema: Schema | type[Schema] | None
    description: str
    media: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """An error answer a route can give: status, error code and when."""

    status: int
    error: str
    description: str


@dataclass(frozen=True)
class Contract:
    summary: str
    description: str
    answers: tuple[Answer, ...]
    failures: tuple[Failure, ...] = ()
    body: Schema | None = None
    body_required: bool = True
    body_media: tuple[str, ...] = ("application/json",)
    query: Schema | None = None
    path: dict[str, dict] = field(default_factory=dict)
    headers: dict[str, dict] = field(default_factory=dict)
    security: str | None = None
    tags: tuple[str, ...] = ()


def _doc(view: Callable) -> tuple[str, str]:
    text = inspect.getdoc(view) or view.__name__.replace("_", " ")
    summary, _, rest = text.partition("\n\n")
    return " ".join(summary.split()), rest.strip()


def declare(
    *,
    answers: Iterable[Answer],
    failures: Iterable[Failure] = (),
    tags: Iterable[str] = (),
    **extra: Any,
) -> Callable[[Callable], Callable]:
    """Record a contract on a view that validates nothing itself (documentation only)."""

    def decorator(view: Callable) -> Callable:
        summary, description = _doc(view)
        view.contract = Contract(
            summary, description, tuple(answers), tuple(failures), tags=tuple(tags), **extra
        )
        return view

    return decorator


def contract_of(view: Callable) -> Contract | None:
    return getattr(view, "contract", None)


class Api:
    """How one service's routes validate: the status and code of a validation failure, the
    errors every route shares (authentication, a dependency down), and whether bodies may be
    forms as well as JSON."""

    def __init__(
        self,
        *,
        validation_status: int,
        validation_error: str,
        validation_message: str,
        forms: bool = False,
        common_failures: Iterable[Failure] = (),
        security: str | None = None,
    ):
        self.validation = Failure(
            validation_status, validation_error, "A field is missing or invalid (`details`)"
        )
        self.validation_message = validation_message
        self.forms = forms
        self.common_failures = tuple(common_failures)
        self.security = security

    def route(
        self,
        target: Blueprint | Flask,
        rule: str,
        method: str,
        *,
        answers: Iterable[Answer],
        failures: Iterable[Failure] = (),
        body: Schema | None = None,
        body_required: bool = True,
        query: Schema | None = None,
        path: dict[str, dict] | None = None,
        headers: dict[str, dict] | None = None,
        before: Callable[[], None] | None = None,
        security: str | None = ...,  # type: ignore[assignment]
        tags: Iterable[str] = (),
    ) -> Callable[[Callable], Callable]:
        """Register the view for `method` on `rule` with its contract. `before` runs first
        (client authentication), then the query and body are validated."""
        declared = list(self.common_failures)
        if body is not None:
            declared += [
                Failure(400, "invalid_json", "The body is not a JSON object (or not gzip)"),
                Failure(413, "payload_too_large", "The body is larger than the limit"),
                Failure(415, "unsupported_media_type", "A Content-Encoding other than gzip"),
            ]
        if body is not None or query is not None:
            declared.append(self.validation)
        declared += list(failures)
        media = ("application/json", "application/x-www-form-urlencoded")
        body_media = media if self.forms else media[:1]

        def decorator(view: Callable) -> Callable:
            summary, description = _doc(view)
            contract = Contract(
                summary=summary,
                description=description,
                answers=tuple(answers),
                failures=tuple(declared),
                body=body,
                body_required=body_required,
                body_media=body_media,
                query=query,
                path=dict(path or {}),
                headers=dict(headers or {}),
                security=self.security if security is ... else security,
                tags=tuple(tags),
            )

            @functools.wraps(view)
            def endpoint(**kwargs):
                if before is not None:
                    before()
                if query is not None:
                    kwargs["query"] = self.load(query, _single_values(request.args))
                if body is not None:
                    kwargs["body"] = self.load_body(body, body_required)
                return view(**kwargs)

            endpoint.contract = contract
            target.add_url_rule(rule, view.__name__, endpoint, methods=[method])
            return endpoint

        return decorator

    def load_body(self, schema: Schema, required: bool) -> Any:
        """The request body validated by `schema`. A schema with `load_json_body(body)` reads
        the body itself as it arrives (large uploads parsed piece by piece, the body never
        whole in memory); its ValidationError is reported like any other, and whatever it
        refuses, the rest of the body is read first, so an error of the body as a whole (too
        large, broken gzip) wins as it does for a body read at once."""
        streaming = getattr(schema, "load_json_body", None)
        if streaming is None:
            return self.load(schema, read_body(forms=self.forms, required=required))
        body = request_stream()
        try:
            return self.load(schema, body, loader=streaming)
        except Exception:
            body.drain()
            raise

    def load(self, schema: Schema, data: Any, loader: Callable | None = None) -> Any:
        """`data` validated by `schema`, or the service's validation error naming each field."""
        try:
            return (loader or schema.load)(data)
        except ValidationError as exc:
            raise ApiError(
                self.validation.status,
                self.validation.error,
                self.validation_message,
                error_details(exc.messages),
            ) from None


MAX_DETAILS = 100


def error_details(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested messages keyed by path from the body root; an error about a whole
    object belongs to the object's own path (`upsert.3`, `body` for the root). At most
    MAX_DETAILS paths are listed: a body of a million bad items gets a short answer."""
    details: dict[str, list[str]] = {}
    flat = flatten_validation_messages(messages)
    for path, problems in flat.items():
        key = "body" if path == "_schema" else path.removesuffix("._schema")
        if key not in details and len(details) >= MAX_DETAILS:
            details["_more"] = [f"{len(flat) - MAX_DETAILS} more fields are invalid."]
            break
        details.setdefault(key, []).extend(problems)
    return details


def _single_values(args) -> dict[str, Any]:
    """Query parameters, each given once: a repeated one is kept as a list, so a scalar field
    refuses it instead of silently taking the first."""
    return {key: values[0] if len(values) == 1 else values for key, values in args.lists()}
