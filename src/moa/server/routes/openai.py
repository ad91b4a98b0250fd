"""The OpenAI-compatible endpoint: any OpenAI SDK can ask for a blend, or for one model.

``model`` is ``moa/<strategy>``, a preset of moa.toml, or a plain ``provider/model`` (that
model answers, at chat's price, with failover from ``moa.fallback``; see
``moa.server.compat``); blend fields go in the body field ``moa``. The wire shapes live in
``moa.server.openai_wire``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from moa.engine import stream_blend
from moa.modes.chat import run_chat
from moa.server.admission import admit_blend, admit_chat, usable
from moa.server.auth import AuthenticatedKey
from moa.server.billing import Final, metered
from moa.server.compat import MoaFields, is_blend, resolve
from moa.server.errors import ApiError
from moa.server.openai_wire import Reply, chunks, completion
from moa.server.openapi import FREE, PAID, error_responses
from moa.server.replies import respond
from moa.server.sse import SSE_HEADERS, EventStreamResponse
from moa.server.state import app_state
from moa.types import STRATEGIES, BlendRequest, ChatAnswer, DoneEvent, Message

router = APIRouter(prefix="/v1", tags=["openai"])


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body. ``response_format``, ``stop``, ``seed`` and ``top_p`` reach
    the call whose text the client reads; fields moa has no use for (``user``, ...) are
    ignored; ``tools`` are refused, since moa calls none."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(max_length=300)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    top_p: float | None = None
    tools: list[Any] | None = None
    moa: MoaFields | None = None

    def conversation(self) -> dict[str, Any]:
        """The fields a blend and a single model both take from the OpenAI body."""
        return {
            "messages": self.messages,
            "stream": self.stream,
            "temperature": self.temperature,
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "stop": [self.stop] if isinstance(self.stop, str) else self.stop,
            "response_format": self.response_format,
            "seed": self.seed,
            "top_p": self.top_p,
        }


@router.post("/chat/completions", responses=error_responses(PAID, streams=True))
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: AuthenticatedKey
) -> Response:
    """OpenAI Chat Completions, answered by a blend or by one model."""
    state = app_state(request)
    if body.tools:
        refusal = (
            "blends do not call tools"
            if is_blend(body.model, state.settings)
            else "moa does not pass tool calls to a model"
        )
        raise ApiError(400, "invalid_request", f"tools: {refusal}")
    target = resolve(body.model, body.moa, state.settings, **body.conversation())
    route = "/v1/chat/completions"
    events: AsyncIterator[BaseModel]
    if isinstance(target, BlendRequest):
        charge = await admit_blend(request, key, target, route=route, field_prefix="moa.")
        blending = stream_blend(target, state.runtime, request_id=charge.request_id)
        events = metered(blending, charge)
    else:
        charge = await admit_chat(request, key, target, route=route, fallback_field="moa.fallback")
        events = metered(run_chat(target, state.runtime, request_id=charge.request_id), charge)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    reply = Reply(charge.request_id, body.model, include_usage=include_usage)
    if body.stream:
        return EventStreamResponse(
            chunks(reply, events), media_type="text/event-stream", headers=SSE_HEADERS
        )

    def render(final: Final, content: str) -> dict[str, Any]:
        assert isinstance(final, DoneEvent | ChatAnswer)
        return completion(reply, final, content if isinstance(final, DoneEvent) else final.content)

    return await respond(request, events, False, render=render)


@router.get("/models", responses=error_responses(FREE))
async def list_models(request: Request, key: AuthenticatedKey) -> JSONResponse:
    """Strategies as ``moa/<strategy>``, presets, then the catalogue's models that are
    ready to answer (a model whose key is missing would only be refused), leaving out
    what the key's allow-list refuses."""
    shown = usable(key, app_state(request).settings)
    ids = [f"moa/{s}" for s in STRATEGIES] if shown.strategies else []
    ids += sorted(shown.presets) + [e.id for e in shown.models if e.ready]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "moa"} for i in ids]
    return JSONResponse({"object": "list", "data": data})
