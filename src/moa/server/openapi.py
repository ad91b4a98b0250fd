"""The OpenAPI document says what the server does: 400 (never FastAPI's 422) for bad
input, each route's error codes from ``moa.errors.ERROR_CODES``, and the Server-Sent
Events a ``stream: true`` request gets."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from moa.errors import ERROR_CODES


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


PAID = (
    "invalid_request",
    "unauthorized",
    "insufficient_credits",
    "budget_exceeded",
    "model_not_allowed",
    "request_too_large",
    "rate_limited",
    "internal_error",
    "all_sources_failed",
    "synthesis_failed",
    "shutting_down",
    "timeout",
)
FREE = ("unauthorized", "rate_limited", "internal_error")
ADMIN = ("invalid_request", "unauthorized", "not_found", "rate_limited", "internal_error")

SSE_DESCRIPTION = (
    "With `stream: true`: Server-Sent Events, each `data: {json}` with an `event` field "
    "(source, route, layer, synthesis, chunk, delta, done, error), then `data: [DONE]`."
)


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str
    code: str


class AnthropicErrorBody(BaseModel):
    """Errors on /v1/messages, in Anthropic's shape (moa's code rides along)."""

    type: str
    error: AnthropicErrorDetail


def error_responses(
    codes: tuple[str, ...], *, streams: bool = False, body: type[BaseModel] = ErrorBody
) -> dict[int | str, Any]:
    """The ``responses`` of a route: its error statuses, and its event stream if any."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        status, meaning = ERROR_CODES[code]
        by_status.setdefault(status, []).append(f"`{code}`: {meaning}")
    responses: dict[int | str, Any] = {
        status: {"model": body, "description": "; ".join(lines)}
        for status, lines in sorted(by_status.items())
    }
    if streams:
        responses[200] = {
            "description": "The answer object, or " + SSE_DESCRIPTION,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    return responses


def install_openapi(app: FastAPI) -> None:
    """Build the document once, without the 422 FastAPI adds to every route: moa answers
    validation errors with 400 ``invalid_request``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
