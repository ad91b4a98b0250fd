"""The OpenAI-compatible endpoint: any OpenAI SDK can ask for a blend, or for one model.

``model`` is ``moa/<strategy>``, a preset of moa.toml, or a plain ``provider/model`` (that
model answers, at chat's price, with failover from ``moa.fallback``); blend fields go in
the body field ``moa``. The wire shapes live in ``moa.server.openai_wire``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa.catalogue import catalogue
from moa.config import Settings
from moa.engine import stream_blend
from moa.modes.chat import run_chat
from moa.server.admission import admit, admit_blend, listed
from moa.server.auth import AuthenticatedKey
from moa.server.errors import ApiError, describe_validation
from moa.server.metered import Final, metered
from moa.server.openai_wire import Reply, chunks, completion
from moa.server.openapi import FREE, PAID, error_responses
from moa.server.respond import respond
from moa.server.sse import SSE_HEADERS, EventStreamResponse
from moa.server.state import app_state
from moa.types import (
    STRATEGIES,
    BlendRequest,
    ChatAnswer,
    ChatRequest,
    DoneEvent,
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
    fallback: list[str] | None = None  # a single model's failover route


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

    def shared_fields(self) -> dict[str, Any]:
        """What a blend and a single model both take from the OpenAI body."""
        fields: dict[str, Any] = {"messages": self.messages, "stream": self.stream}
        if self.temperature is not None:
            fields["temperature"] = self.temperature
        if (max_tokens := self.max_completion_tokens or self.max_tokens) is not None:
            fields["max_tokens"] = max_tokens
        if self.stop is not None:
            fields["stop"] = [self.stop] if isinstance(self.stop, str) else self.stop
        for name in ("response_format", "seed", "top_p"):
            if getattr(self, name) is not None:
                fields[name] = getattr(self, name)
        return fields


Work = BlendRequest | ChatRequest


def plan(body: ChatCompletionRequest, settings: Settings) -> Work:
    """``model`` names a strategy (``moa/<strategy>``), a preset, or one model."""
    strategy, _, rest = body.model.partition("/")
    if strategy == "moa" or body.model in settings.presets:
        if body.tools:
            raise ApiError(400, "invalid_request", "tools: blends do not call tools")
        return _blend(body, settings)
    if rest:
        if body.tools:
            raise ApiError(400, "invalid_request", "tools: moa does not pass tool calls to a model")
        return _one_model(body)
    choices = [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)
    raise ApiError(
        400,
        "invalid_request",
        f"model: {body.model[:80]!r} is not available; use one of {', '.join(choices)}, "
        "or a model id 'provider/model'",
    )


def _blend(body: ChatCompletionRequest, settings: Settings) -> BlendRequest:
    fields: dict[str, Any] = {}
    strategy = body.model.partition("/")[2]
    if body.model in settings.presets:
        fields.update(settings.presets[body.model].model_dump(exclude_none=True))
    elif strategy in STRATEGIES:
        fields["strategy"] = strategy
        fields["models"] = settings.defaults.models
    else:
        choices = [f"moa/{s}" for s in STRATEGIES]
        raise ApiError(
            400,
            "invalid_request",
            f"model: {body.model[:80]!r} names no strategy; use one of {', '.join(choices)}",
        )
    moa = body.moa.model_dump(exclude_none=True) if body.moa else {}
    if "fallback" in moa:
        raise ApiError(
            400,
            "invalid_request",
            "moa.fallback: only for a single model; in a blend give each of moa.models as "
            '{"model", "fallback"}',
        )
    fields.update(moa)
    fields.update(body.shared_fields())
    return _validated(BlendRequest, fields, MoaFields.model_fields)


def _one_model(body: ChatCompletionRequest) -> ChatRequest:
    moa = body.moa.model_dump(exclude_none=True) if body.moa else {}
    others = sorted(set(moa) - {"fallback"})
    if others:
        raise ApiError(
            400,
            "invalid_request",
            f"moa.{others[0]}: a blend field; with a single model only moa.fallback applies",
        )
    fields = {"model": body.model, "routing": {"fallback": moa.get("fallback", [])}}
    fields.update(body.shared_fields())
    return _validated(ChatRequest, fields, {"routing"})


W = TypeVar("W", BlendRequest, ChatRequest)


def _validated(kind: type[W], fields: dict[str, Any], moa_fields: Iterable[str]) -> W:
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation(list(exc.errors()))
        field = message.partition(":")[0].partition("[")[0].partition(".")[0]
        if field == "routing":  # a single model's fallbacks came in moa.fallback
            message = "moa." + message.removeprefix("routing.")
        elif field in moa_fields:  # say where the client put it
            message = f"moa.{message}"
        raise ApiError(400, "invalid_request", message) from exc


@router.post("/chat/completions", responses=error_responses(PAID, streams=True))
async def chat_completions(
    body: ChatCompletionRequest, request: Request, key: AuthenticatedKey
) -> Response:
    """OpenAI Chat Completions, answered by a blend or by one model."""
    state = app_state(request)
    work = plan(body, state.settings)
    route = "/v1/chat/completions"
    events: AsyncIterator[BaseModel]
    if isinstance(work, BlendRequest):
        charge = await admit_blend(request, key, work, route=route, field_prefix="moa.")
        blending = stream_blend(work, state.runtime, request_id=charge.request_id)
        events = metered(blending, charge)
    else:
        charge = await admit(
            request,
            key,
            route=route,
            cost=state.settings.server.credits.chat,
            messages=work.messages,
            models=[("model", work.model), *listed("moa.fallback", work.routing.fallback)],
            planned_calls=1,
        )
        events = metered(run_chat(work, state.runtime, request_id=charge.request_id), charge)
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
    ready to answer (a model whose key is missing would only be refused)."""
    settings = app_state(request).settings
    ids = [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)
    ids += [e.id for e in catalogue(settings) if e.ready]
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "moa"} for i in ids]
    return JSONResponse({"object": "list", "data": data})
