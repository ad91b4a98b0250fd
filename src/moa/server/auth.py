"""``Authorization: Bearer <key>`` on every /api and /v1 route (``x-api-key`` too on
/v1/messages, as Anthropic's SDKs send it), with rate limits applied per client address
for attempts without a valid key (checked before the key is even looked up, so guessing is
throttled; an IPv6 client counts per /64) and per key for the rest;
the rate-limit headers go on whatever the request answers, errors included. Keys are
never logged or echoed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moa.server.errors import ApiError
from moa.server.request_scope import request_context
from moa.server.state import app_state
from moa.store import ApiKey


async def authenticated(request: Request) -> ApiKey:
    return await _authenticate(request, bearer(request), "'Authorization: Bearer <key>'")


async def authenticated_anthropic(request: Request) -> ApiKey:
    """/v1/messages: Anthropic's SDKs send the key as ``x-api-key``; Bearer works too."""
    token = bearer(request) or request.headers.get("x-api-key", "").strip()
    return await _authenticate(
        request, token, "'x-api-key: <key>' or 'Authorization: Bearer <key>'"
    )


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _authenticate(request: Request, token: str, how: str) -> ApiKey:
    state = app_state(request)
    context = request_context(request)
    await state.limits.check_ip(context.client)
    key = await state.keys.authenticate(token) if token else None
    if key is None:
        context.headers = await state.limits.hit_ip(context.client)
        if not token:
            raise ApiError(401, "unauthorized", f"missing API key: send {how}")
        raise ApiError(401, "unauthorized", "the API key is not valid or has been revoked")
    context.key_id = key.id
    context.headers = await state.limits.hit_key(key.id)
    return key


AuthenticatedKey = Annotated[ApiKey, Depends(authenticated)]
AnthropicKey = Annotated[ApiKey, Depends(authenticated_anthropic)]
