"""chat: one model, with an optional failover route (``routing.fallback``); for a streaming
client its text streams as deltas naming the model that is answering."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from pydantic import BaseModel

from moa.errors import RequestFailed
from moa.modes.running import run_mode
from moa.providers.base import elapsed_ms
from moa.runtime import Runtime
from moa.sources import Sources
from moa.strategies.base import SourcePlan
from moa.types import ChatAnswer, ChatRequest, Event, new_request_id


async def run_chat(
    request: ChatRequest, runtime: Runtime, *, request_id: str | None = None
) -> AsyncIterator[Event | BaseModel]:
    """Stream the model's answer as deltas, then the answer object."""
    started = time.perf_counter()

    async def work(sources: Sources) -> ChatAnswer:
        options = sources.options(
            request.messages,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            response_format=request.response_format.for_call() if request.response_format else None,
            stop=tuple(request.stop) if request.stop else None,
            seed=request.seed,
            top_p=request.top_p,
        )
        plan = SourcePlan(0, request.spec, tuple(request.messages), request.temperature)
        # A JSON client reads the whole answer: ask the upstream for it whole, which costs
        # both sides less than a stream of chunks.
        called = await sources.call(plan, 0, options, deltas=request.stream, report=False)
        if not called.answered:
            raise RequestFailed(f"{request.model}: {called.error}")
        return ChatAnswer(
            id=request_id or new_request_id(),
            model=called.model,
            content=called.text or "",
            usage=sources.usage,
            latency_ms=elapsed_ms(started),
            finish_reason=called.finish_reason,
        )

    models = [request.model, *request.routing.fallback]
    async for event in run_mode(work, runtime, models, request.timeout_s):
        yield event
