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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa.catalogue import catalogue
from moa.config import Settings
from moa.engine import stream_blend
from moa.server.admission import admit_blend
from moa.server.auth import AuthenticatedKey
from moa.server.billing import Final, metered
from moa.server.errors import ApiError, describe_validation
from moa.server.openapi import FREE, PAID, error_responses
from moa.server.respond import respond
from moa.server.sse import SSE_HEADERS, EventStreamResponse
from moa.server.state import app_state
from moa.types import (
    STRATEGIES,
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    Message,
    ModelRef,
)

router = APIRouter(prefix="/v1", tags=["openai"])


class MoaFields(BaseModel):
    """Blend fields an OpenAI client sends in the body field ``moa``."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelRef] | None = None
    synthesizer: ModelRef | None = None
    layers: int | None = None
    samples: int | None = None
    quorum: int | None = None
    grace_ms: int | None = None
    timeout_s: float | None = None
    source_timeout_s: float | None = None
    synthesis_timeout_s: float | None = None


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
    fields: dict[str, Any] = {}
    strategy, _, rest = body.model.partition("/")
    if strategy == "moa" and rest in STRATEGIES:
        fields["strategy"] = rest
        fields["models"] = settings.defaults.models
    elif body.model in settings.presets:
        fields.update(settings.presets[body.model].model_dump(exclude_none=True))
    else:
        choices = [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)
        raise ApiError(
            400,
            "invalid_request",
            f"model: {body.model!r} is not available; use one of {', '.join(choices)}",
        )
    if body.moa is not None:
        fields.update(body.moa.model_dump(exclude_none=True))
    fields["messages"] = body.messages
    fields["stream"] = body.stream
    if body.temperature is not None:
        fields["temperature"] = body.temperature
    if (max_tokens := body.max_completion_tokens or body.max_tokens) is not None:
        fields["max_tokens"] = max_tokens
    try:
        return BlendRequest.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation(list(exc.errors()))
        field = message.partition(":")[0].partition("[")[0]
        moa_field = field in MoaFields.model_fields  # say where the client put it
        raise ApiError(400, "invalid_request", f"moa.{message}" if moa_field else message) from exc


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


@router.post("/chat/completions", responses=error_responses(PAID, streams=True))
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: AuthenticatedKey
) -> Response:
    """OpenAI Chat Completions, answered by a blend."""
    state = app_state(request)
    blend = to_blend(body, state.settings)
    charge = await admit_blend(
        request, key, blend, route="/v1/chat/completions", field_prefix="moa."
    )
    events = metered(stream_blend(blend, state.runtime, request_id=charge.request_id), charge)
    if body.stream:
        return EventStreamResponse(
            _chunks(body, events),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )

    def render(done: Final, content: str) -> dict[str, Any]:
        assert isinstance(done, DoneEvent)
        return _completion(body, done, content)

    return await respond(request, events, False, render=render)


@router.get("/models", responses=error_responses(FREE))
async def list_models(request: Request, key: AuthenticatedKey) -> JSONResponse:
    """Strategies as ``moa/<strategy>``, presets, then the catalogue's models."""
    settings = app_state(request).settings
    ids = [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)
    ids += [e.id for e in catalogue(settings)]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "moa"} for i in ids]
    return JSONResponse({"object": "list", "data": data})
