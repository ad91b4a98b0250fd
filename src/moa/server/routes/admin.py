"""The admin API, ``/admin/v1/keys``: create, list, top up, change and revoke API keys.

Behind ``[server] admin_token`` (or ``MOA_ADMIN_TOKEN``), sent as ``Authorization: Bearer``
and compared in constant time. Unset, every admin route answers 404, as if it did not
exist. Wrong attempts count against the client address's limit for attempts without a
valid key, like a wrong API key. The token is never logged; the log line of an admin
request names no key.

A revocation or a changed limit holds on this server from the key's next request on (it
forgets the key in its auth cache) and on every other server sharing the database within
``[server] auth_cache_s`` (see moa.server.key_cache).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from moa.server.auth import bearer
from moa.server.errors import ApiError
from moa.server.openapi import ADMIN, error_responses
from moa.server.request_scope import request_context
from moa.server.state import app_state
from moa.store import ApiKey, key_limits
from moa.store.keys import MAX_NAME_LEN, UNSET

#: No key's balance is meant to come near this; it keeps every sum far from BigInteger's end.
MAX_CREDITS = 10**12
_KEY_ID = re.compile(r"key_[0-9a-f]{12}")


async def admin_token(request: Request) -> None:
    """404 unless the server has an admin token; 401 unless the request sends it."""
    state = app_state(request)
    expected = state.settings.server.admin_token
    if not expected:
        raise ApiError(404, "not_found", "Not Found")
    context = request_context(request)
    await state.limits.check_ip(context.client)
    presented = bearer(request)
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        context.headers = await state.limits.hit_ip(context.client)
        raise ApiError(
            401, "unauthorized", "send the admin token as 'Authorization: Bearer <admin token>'"
        )


class AdminRoute(APIRoute):
    """Checks the admin token before FastAPI reads the body: as a dependency it would come
    after, and a 400 for a malformed body would tell a caller without the token (or a
    server without one) that the route exists."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            await admin_token(request)
            return await handler(request)

        return guarded


router = APIRouter(
    prefix="/admin/v1",
    tags=["admin"],
    route_class=AdminRoute,
    responses=error_responses(ADMIN),
)


class Limits(BaseModel):
    """A key's optional limits, as the admin API takes them."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: float | None = Field(
        None, ge=0, le=key_limits.MAX_BUDGET_USD, allow_inf_nan=False, strict=True
    )
    # Each entry is checked by the store (moa.store.key_limits), which names it.
    models: list[str] | None = Field(None, max_length=key_limits.MAX_MODELS)


class CreateKey(Limits):
    name: str = Field("", max_length=MAX_NAME_LEN)
    credits: int = Field(ge=0, le=MAX_CREDITS, strict=True)


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: int = Field(ge=1, le=MAX_CREDITS, strict=True)


class UpdateKey(Limits):
    name: str | None = Field(None, max_length=MAX_NAME_LEN)


@contextmanager
def _named_field() -> Iterator[None]:
    """The store's ValueError names the field (``models[2]: ...``): a 400 that says so."""
    try:
        yield
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc


def _listed(models: tuple[str, ...] | None) -> list[str] | None:
    return None if models is None else list(models)


async def known_key(request: Request, id: str) -> ApiKey:
    """The key the path names, revoked or not; 404 for an unknown id, and for one that is
    not even of a key's form (without echoing it)."""
    well_formed = _KEY_ID.fullmatch(id) is not None
    key = await app_state(request).store.get_key(id) if well_formed else None
    if key is None:
        raise ApiError(404, "not_found", f"no key with id {id!r}" if well_formed else "no such key")
    return key


KnownKey = Annotated[ApiKey, Depends(known_key)]


@router.post("/keys", status_code=201)
async def create_key(body: CreateKey, request: Request) -> JSONResponse:
    """A new key; the only response that shows it (``key``), so keep it now."""
    store = app_state(request).store
    with _named_field():
        record, plaintext = await store.create_key(
            credits=body.credits, name=body.name, budget_usd=body.budget_usd, models=body.models
        )
    shown = {"id": record.id, "key": plaintext, "name": record.name, "credits": record.credits}
    limits = {"budget_usd": record.budget_usd, "models": _listed(record.models)}
    return JSONResponse({**shown, **limits}, status_code=201)


@router.get("/keys")
async def list_keys(request: Request) -> JSONResponse:
    """Every key, oldest first: its prefix (never the key), balance, state, limits and the
    USD it has spent."""
    keys = await app_state(request).store.list_keys()
    return JSONResponse({"data": [key.public() for key in keys]})


@router.post("/keys/{id}/credits")
async def top_up(key: KnownKey, body: TopUp, request: Request) -> JSONResponse:
    """Add credits. A revoked key may be topped up (revocation is about access, not the
    account's money), but it stays revoked."""
    balance = await app_state(request).store.top_up(key.id, body.add)
    return JSONResponse({"id": key.id, "credits": balance})


@router.patch("/keys/{id}")
async def update_key(key: KnownKey, body: UpdateKey, request: Request) -> JSONResponse:
    """Change a key's name or limits: only the fields sent; ``null`` lifts a limit."""
    sent = body.model_fields_set
    if not sent:
        raise ApiError(400, "invalid_request", "body: send name, budget_usd or models")
    if "name" in sent and body.name is None:
        raise ApiError(400, "invalid_request", "name: must be a string")
    state = app_state(request)
    with _named_field():
        changed = await state.store.update_key(
            key.id,
            name=body.name if body.name is not None else UNSET,
            budget_usd=body.budget_usd if "budget_usd" in sent else UNSET,
            models=body.models if "models" in sent else UNSET,
        )
    assert changed is not None, "keys are never deleted"
    state.keys.forget(key.id)
    return JSONResponse(changed.public())


@router.delete("/keys/{id}", status_code=204)
async def revoke(key: KnownKey, request: Request) -> Response:
    """Revoke a key: this server refuses it from its next request on, every other server
    sharing the database within ``[server] auth_cache_s``. Revoking twice is fine; the
    balance is kept for auditing."""
    state = app_state(request)
    await state.store.revoke(key.id)
    state.keys.forget(key.id)
    return Response(status_code=204)
