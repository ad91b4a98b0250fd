"""``Authorization: Bearer <key>`` on every /api and /v1 route, with rate limits applied
per client IP before the key is even looked up (so key guessing is throttled too) and per
key after. Keys are never logged or echoed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moa.server.errors import ApiError
from moa.server.state import app_state
from moa.store import ApiKey


async def authenticated(request: Request) -> ApiKey:
    state = app_state(request)
    ip = request.client.host if request.client else "unknown"
    request.state.rate_headers = await state.limits.hit_ip(ip)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    key = await state.store.authenticate(token.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked")
    request.state.rate_headers = await state.limits.hit_key(key.id)
    return key


AuthenticatedKey = Annotated[ApiKey, Depends(authenticated)]


def rate_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = getattr(request.state, "rate_headers", {})
    return headers
