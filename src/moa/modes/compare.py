"""compare: 2-9 models answer the same messages at once, each streamed as it arrives; the
summary names the fastest (lowest latency) and the longest (most characters) answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from moa.errors import BlendFailed, ProviderError
from moa.routing.router import CallOptions, Routed
from moa.runtime import Runtime
from moa.streaming import event_stream
from moa.tally import Tally
from moa.types import (
    CompareAnswer,
    CompareRequest,
    DeltaEvent,
    ModelResult,
    SourceEvent,
    SourceSpec,
    TokenUsage,
    new_request_id,
)

CompareEvent = DeltaEvent | SourceEvent | CompareAnswer
Emit = Callable[[CompareEvent], None]


async def _one(
    model: str, request: CompareRequest, runtime: Runtime, emit: Emit, tally: Tally
) -> ModelResult:
    started = time.perf_counter()
    first_token: int | None = None
    options = CallOptions(
        messages=request.messages,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        timeout_s=runtime.settings.engine.source_timeout_s,
    )
    try:
        async for piece in runtime.router.stream(SourceSpec(model=model), options):
            if isinstance(piece, Routed):
                latency = int((time.perf_counter() - started) * 1000)
                usage = piece.completion.usage
                tally.add(model, usage)
                emit(
                    SourceEvent(
                        model=model,
                        layer=0,
                        status="complete",
                        tokens=usage.completion_tokens,
                        latency_ms=latency,
                    )
                )
                return ModelResult(
                    model=model,
                    status="ok",
                    content=piece.completion.text,
                    latency_ms=latency,
                    first_token_ms=first_token,
                    usage=usage,
                )
            if first_token is None:
                first_token = int((time.perf_counter() - started) * 1000)
            emit(DeltaEvent(model=model, content=piece))
    except ProviderError as exc:
        latency = int((time.perf_counter() - started) * 1000)
        tally.add(model, TokenUsage())
        emit(SourceEvent(model=model, layer=0, status="failed", error=str(exc), latency_ms=latency))
        return ModelResult(model=model, status="error", error=str(exc), latency_ms=latency)
    raise AssertionError("a stream always ends with its completion or an error")


async def run_compare(
    request: CompareRequest, runtime: Runtime, *, request_id: str | None = None
) -> AsyncIterator[CompareEvent]:
    await runtime.prepare_models(request.models)
    started = time.perf_counter()
    tally = Tally(runtime.settings)

    async def work(emit: Emit) -> None:
        results = await asyncio.gather(
            *(_one(m, request, runtime, emit, tally) for m in request.models)
        )
        ok = [r for r in results if r.status == "ok"]
        if not ok:
            raise BlendFailed(
                "every model failed: " + "; ".join(f"{r.model}: {r.error}" for r in results)
            )
        emit(
            CompareAnswer(
                id=request_id or new_request_id(),
                results=list(results),
                fastest=min(ok, key=lambda r: r.latency_ms).model,
                longest=max(ok, key=lambda r: len(r.content or "")).model,
                usage=tally.usage,
                latency_ms=int((time.perf_counter() - started) * 1000),
            )
        )

    async for event in event_stream(work):
        yield event
