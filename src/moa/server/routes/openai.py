"""The OpenAI-compatible endpoint: any OpenAI SDK can ask for a blend.

``model`` is ``moa/<strategy>`` or a preset of moa.toml; blend fields go in the body field
``moa``. Streams are OpenAI ``chat.completion.chunk`` objects; the final chunk carries the
usage (and moa's own summary under ``moa``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from moa.catalogue import catalogue
from moa.config import Settings
from moa.engine import stream_blend
from moa.server.admission import admit_blend
from moa.server.auth import AuthenticatedKey, rate_headers
from moa.server.compat import MoaFields, blend_for
from moa.server.metered import Final, metered
from moa.server.respond import respond
from moa.server.routes.api import ERRORS
from moa.server.sse import SSE_HEADERS, EventStreamResponse
from moa.server.state import app_state
from moa.types import (
    STRATEGIES,
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    Message,
)

router = APIRouter(prefix="/v1", tags=["openai"])


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body; fields moa has no use for (top_p, user, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    moa: MoaFields | None = None


def to_blend(body: ChatCompletionRequest, settings: Settings) -> BlendRequest:
    """Resolve ``model`` (strategy or preset) and ``moa`` into a BlendRequest."""
    return blend_for(
        body.model,
        body.moa,
        settings,
        messages=body.messages,
        stream=body.stream,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
    )


def _completion(body: ChatCompletionRequest, done: DoneEvent, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{done.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(done),
        "moa": done.model_dump(mode="json", exclude={"event"}),
    }


def _usage(done: DoneEvent) -> dict[str, int]:
    return {
        "prompt_tokens": done.usage.prompt_tokens,
        "completion_tokens": done.usage.completion_tokens,
        "total_tokens": done.usage.prompt_tokens + done.usage.completion_tokens,
    }


async def _chunks(body: ChatCompletionRequest, events: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    created = int(time.time())
    chunk_id = f"chatcmpl-{int(time.time() * 1000)}"

    def frame(delta: dict[str, str], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    yield frame({"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, ChunkEvent):
            yield frame({"content": event.content})
        elif isinstance(event, DoneEvent):
            yield frame(
                {},
                "stop",
                usage=_usage(event),
                moa=event.model_dump(mode="json", exclude={"event"}),
            )
        elif isinstance(event, ErrorEvent):
            error = {"error": {"code": event.code, "message": event.message}}
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


@router.post("/chat/completions", responses=ERRORS)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: AuthenticatedKey
) -> Response:
    """OpenAI Chat Completions, answered by a blend."""
    state = app_state(request)
    blend = to_blend(body, state.settings)
    charge = await admit_blend(state, key, blend, route="/v1/chat/completions", field_prefix="moa.")
    events = metered(stream_blend(blend, state.runtime), charge)
    if body.stream:
        return EventStreamResponse(
            _chunks(body, events),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **rate_headers(request)},
        )

    def render(done: Final, content: str) -> dict[str, Any]:
        assert isinstance(done, DoneEvent)
        return _completion(body, done, content)

    return await respond(request, events, False, render=render)


@router.get("/models")
async def list_models(request: Request, key: AuthenticatedKey) -> JSONResponse:
    """Strategies as ``moa/<strategy>``, presets, then the catalogue's models."""
    settings = app_state(request).settings
    ids = [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)
    ids += [e.id for e in catalogue(settings)]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "moa"} for i in ids]
    return JSONResponse({"object": "list", "data": data}, headers=rate_headers(request))
