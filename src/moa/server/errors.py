"""Every error leaves the server as ``{"error": {"code", "message"}}`` with the status of
DESIGN.md; a validation error names the field and what is allowed. Never a traceback."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from moa.errors import MoaError

log = logging.getLogger("moa.server")
HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
_NAMES_A_FIELD = re.compile(r"^[a-z_]+(\[\d+\])?(\.[a-z_]+)*: ")


class ApiError(Exception):
    """An HTTP error with a public code, raised by routes and dependencies."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def describe_validation(errors: Sequence[Any]) -> str:
    """``field: what is wrong`` for the first problem, with body/query prefixes dropped."""
    first = errors[0] if errors else {}
    if not isinstance(first, dict):
        return "invalid request"
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
    where = ".".join(loc)
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return f"body is not valid JSON: {message}"
    if first.get("type") == "missing":
        return f"{where}: field required" if where else "body: a JSON object is required"
    if first.get("type") == "extra_forbidden":
        return f"{where}: unknown field"
    if not where:  # a whole-body check: its message names its field, else blame the body
        return message if _NAMES_A_FIELD.match(message) else f"body: {message}"
    if message.startswith(f"{where.split('.')[0]}:"):
        return message
    return f"{where}: {message}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", describe_validation(list(exc.errors())))

    @app.exception_handler(ValidationError)
    async def _invalid_model(_: Request, exc: ValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", describe_validation(list(exc.errors())))

    @app.exception_handler(MoaError)
    async def _moa_error(_: Request, exc: MoaError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, exc.message)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred")
