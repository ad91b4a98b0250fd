"""moa's own API: blend, compare, chat, judge, models, usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from moa.catalogue import CatalogueEntry
from moa.config import Settings
from moa.engine import stream_blend
from moa.modes.chat import run_chat
from moa.modes.compare import run_compare
from moa.modes.judge import run_judge
from moa.server.admission import (
    admit_blend,
    admit_chat,
    admit_compare,
    admit_judge,
    usable,
)
from moa.server.auth import AuthenticatedKey
from moa.server.billing import metered
from moa.server.openapi import FREE, PAID, error_responses
from moa.server.replies import respond
from moa.server.state import app_state
from moa.server.usage_pages import decode_cursor, encode_cursor, period, record_json
from moa.types import (
    STRATEGIES,
    BlendAnswer,
    BlendRequest,
    ChatAnswer,
    ChatRequest,
    CompareAnswer,
    CompareRequest,
    JudgeAnswer,
    JudgeRequest,
)

router = APIRouter(prefix="/api/v1", tags=["moa"])
ERRORS = error_responses(PAID, streams=True)


@router.post("/blend", response_model=BlendAnswer, responses=ERRORS)
async def blend(body: BlendRequest, request: Request, key: AuthenticatedKey) -> Response:
    """Blend: the sources answer, the synthesizer combines. ``stream: true`` for SSE."""
    state = app_state(request)
    charge = await admit_blend(request, key, body, route="/api/v1/blend")
    return await respond(
        request,
        metered(stream_blend(body, state.runtime, request_id=charge.request_id), charge),
        body.stream,
    )


@router.post("/compare", response_model=CompareAnswer, responses=ERRORS)
async def compare(body: CompareRequest, request: Request, key: AuthenticatedKey) -> Response:
    """2-9 models answer the same messages, streamed side by side."""
    state = app_state(request)
    charge = await admit_compare(request, key, body, route="/api/v1/compare")
    return await respond(
        request,
        metered(run_compare(body, state.runtime, request_id=charge.request_id), charge),
        body.stream,
    )


@router.post("/chat", response_model=ChatAnswer, responses=ERRORS)
async def chat(body: ChatRequest, request: Request, key: AuthenticatedKey) -> Response:
    """One model, with an optional ``routing.fallback`` chain."""
    state = app_state(request)
    charge = await admit_chat(request, key, body, route="/api/v1/chat")
    return await respond(
        request,
        metered(run_chat(body, state.runtime, request_id=charge.request_id), charge),
        body.stream,
    )


@router.post("/judge", response_model=JudgeAnswer, responses=ERRORS)
async def judge(body: JudgeRequest, request: Request, key: AuthenticatedKey) -> Response:
    """2-4 contestants answer; a judge that is not one of them scores each 0-10."""
    state = app_state(request)
    charge = await admit_judge(request, key, body, route="/api/v1/judge")
    return await respond(
        request,
        metered(run_judge(body, state.runtime, request_id=charge.request_id), charge),
        body.stream,
    )


@router.get("/models", responses=error_responses(FREE))
async def models(request: Request, key: AuthenticatedKey) -> JSONResponse:
    """The model catalogue (with prices), the strategies, the presets and the defaults of
    moa.toml: everything the playground needs to fill its model picker; a key with an
    allow-list sees only the models and presets it may use."""
    settings = app_state(request).settings
    shown = usable(key, settings)
    body = {
        "models": [_catalogued(e, settings) for e in shown.models],
        "strategies": list(STRATEGIES),
        "presets": {n: settings.presets[n].model_dump() for n in shown.presets},
        "defaults": {
            "models": settings.defaults.models,
            "strategy": settings.defaults.strategy or BlendRequest.model_fields["strategy"].default,
        },
    }
    return JSONResponse(body)


def _catalogued(entry: CatalogueEntry, settings: Settings) -> dict[str, Any]:
    price = settings.price(entry.id)
    return {
        "id": entry.id,
        "kind": entry.kind,
        "ready": entry.ready,
        "needs": entry.needs or None,
        "input_usd_per_mtok": price.input_usd_per_mtok,
        "output_usd_per_mtok": price.output_usd_per_mtok,
    }


@router.get("/usage", responses=error_responses(("invalid_request", *FREE)))
async def usage(
    request: Request,
    key: AuthenticatedKey,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    """This key's balance and its requests, newest first, a page at a time: pass
    ``next_cursor`` back as ``cursor`` for the next page (null on the last)."""
    state = app_state(request)
    after = None if cursor is None else decode_cursor(cursor)
    start, end = period(since, until)
    page = await state.store.usage_page(key.id, limit=limit, since=start, until=end, after=after)
    body = {
        "key_id": key.id,
        "credits_remaining": await state.store.balance(key.id),
        "requests": [record_json(r) for r in page.records],
        "next_cursor": None if page.next is None else encode_cursor(page.next),
    }
    return JSONResponse(body)
