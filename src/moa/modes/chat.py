"""chat: one model, with an optional failover route (``routing.fallback``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from moa.errors import BlendFailed, ProviderError
from moa.routing.router import CallOptions, Routed
from moa.runtime import Runtime
from moa.tally import Tally
from moa.types import ChatAnswer, ChatRequest, DeltaEvent, RouteEvent, new_request_id

ChatEvent = DeltaEvent | RouteEvent | ChatAnswer


async def run_chat(
    request: ChatRequest, runtime: Runtime, *, request_id: str | None = None
) -> AsyncIterator[ChatEvent]:
    """Stream the model's answer as deltas, then the answer object."""
    await runtime.prepare_models([request.model, *request.routing.fallback])
    started = time.perf_counter()
    options = CallOptions(
        messages=request.messages,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        timeout_s=runtime.settings.engine.source_timeout_s,
        response_format=request.response_format.for_call() if request.response_format else None,
        stop=tuple(request.stop) if request.stop else None,
        seed=request.seed,
        top_p=request.top_p,
    )
    routes: list[RouteEvent] = []
    answering = request.model  # the model whose text the deltas carry
    try:
        async for piece in runtime.router.stream(request.spec, options, on_route=routes.append):
            while routes:
                route = routes.pop(0)
                answering = route.model if route.status == "trying" else answering
                yield route
            if isinstance(piece, Routed):
                tally = Tally(runtime.settings)
                tally.add(piece.model, piece.completion.usage)
                yield ChatAnswer(
                    id=request_id or new_request_id(),
                    model=piece.model,
                    content=piece.completion.text,
                    usage=tally.usage,
                    latency_ms=int((time.perf_counter() - started) * 1000),
                    finish_reason=piece.completion.finish_reason,
                )
                return
            yield DeltaEvent(model=answering, content=piece)
    except ProviderError as exc:
        raise BlendFailed(f"{request.model}: {exc}") from exc
