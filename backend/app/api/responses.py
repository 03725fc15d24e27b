"""What the OpenAPI document says about errors, so that it matches what `app.core.errors` sends.

Every error leaves as JSON `{"success": false, "detail": "..."}` (validation errors add `errors`, one entry
per invalid field). Routes list the errors they can answer with through the helpers here, each with the
error model, so a client generated from `/api/v1/openapi.json` gets the right types; the schema fuzz test
(`backend/tests/test_openapi.py`) checks every response against the document.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from app.core.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS


class ErrorResponse(BaseModel):
    """The body of every error response."""

    success: Literal[False] = False
    detail: str = Field(description="What went wrong, and what to do about it")


class ValidationIssue(BaseModel):
    loc: list[str] = Field(
        description="Where: the part of the request, then the field", examples=[["query", "limit"]]
    )
    msg: str
    type: str | None = Field(
        default=None, description="A machine-readable kind, e.g. `missing`, `uuid_parsing`"
    )


class ValidationErrorResponse(ErrorResponse):
    """A request the API cannot accept as sent (422)."""

    errors: list[ValidationIssue] = Field(
        default_factory=list,
        description="One entry per invalid field; absent when the reason is not about one field (e.g. a cursor "
        "that was not returned by this API)",
    )


Responses = dict[int | str, dict[str, Any]]


def error(description: str) -> dict[str, Any]:
    """One documented error response, with the error body's schema."""
    return {"model": ErrorResponse, "description": description}


RETRY_AFTER = {
    "Retry-After": {
        "description": f"Seconds to wait before trying again ({RETRY_AFTER_SECONDS})",
        "schema": {"type": "integer"},
    }
}


def unavailable(description: str) -> dict[str, Any]:
    """A 503: the error body and the `Retry-After` header every 503 carries."""
    return {**error(description), "headers": RETRY_AFTER}


DATABASE_DOWN: Responses = {503: unavailable(DATABASE_UNAVAILABLE)}
"""Every operation that reads or writes the database (all but liveness)."""

TOKEN_OPTIONAL: Responses = {
    401: error(
        "The token sent is invalid or expired, or its member was deleted since; log in again "
        "(or send no Authorization header, to be anonymous)"
    )
}
"""Operations that anonymous callers may use too: a token that is sent must be valid."""
TOKEN_REQUIRED: Responses = {
    401: error("Not logged in, or the token is invalid or expired, or its member was deleted since; log in")
}

UNREADABLE_BODY: Responses = {
    400: error("The body could not be read (send UTF-8 JSON)"),
    413: error("The body is larger than MAX_REQUEST_BODY_BYTES (64 KiB): JSON only, images go to S3"),
}
"""Operations with a JSON body: a body that is not text, or too large, fails before validation."""

OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}
"""`openapi_extra` of operations that take a token but do not need one: FastAPI documents the bearer scheme
as required; the empty alternative (appended to its list) says anonymous calls are allowed too."""


def install_openapi(app: FastAPI) -> None:
    """Serve the OpenAPI document with this API's validation error body instead of FastAPI's default.

    FastAPI documents a 422 of its own shape (`{"detail": [...]}`) on every operation with parameters;
    the API answers `ValidationErrorResponse`. The document is built once, on first request.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            ref = "#/components/schemas/ValidationErrorResponse"
            for name, model in (
                ("ValidationIssue", ValidationIssue),
                ("ValidationErrorResponse", ValidationErrorResponse),
            ):
                schemas[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas[name].pop("$defs", None)
            for operation in _operations(document):
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = {"application/json": {"schema": {"$ref": ref}}}
                    if invalid.get("description") == "Validation Error":
                        invalid["description"] = "The request is not valid: `detail` says why, `errors` where"
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    return [op for item in document.get("paths", {}).values() for m, op in item.items() if m in methods]
