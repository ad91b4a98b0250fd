"""``Authorization: Bearer <key>`` on every /api and /v1 route, with rate limits applied
per client address before the key is even looked up (so key guessing is throttled too)
and per key after; the rate-limit headers go on whatever the request answers, errors
included. Keys are never logged or echoed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moa.server.errors import ApiError
from moa.server.request_scope import request_context
from moa.server.state import app_state
from moa.store import ApiKey


async def authenticated(request: Request) -> ApiKey:
    state = app_state(request)
    context = request_context(request)
    context.headers = await state.limits.hit_ip(context.client)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    key = await state.store.authenticate(token.strip())
    if key is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked")
    context.key_id = key.id
    context.headers = await state.limits.hit_key(key.id)
    return key


AuthenticatedKey = Annotated[ApiKey, Depends(authenticated)]
