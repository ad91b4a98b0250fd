"""compare: 2-9 models answer the same messages at once, each streamed as it arrives; the
summary names the fastest (lowest latency) and the longest (most characters) answer. A
model named twice is two columns: every event carries its column's ``index``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from pydantic import BaseModel

from moa.errors import RequestFailed
from moa.modes.running import each_model, run_mode
from moa.providers.base import elapsed_ms
from moa.runtime import Runtime
from moa.sources import Sources
from moa.types import CompareAnswer, CompareRequest, Event, new_request_id


async def run_compare(
    request: CompareRequest, runtime: Runtime, *, request_id: str | None = None
) -> AsyncIterator[Event | BaseModel]:
    started = time.perf_counter()

    async def work(sources: Sources) -> CompareAnswer:
        options = sources.options(
            request.messages, temperature=request.temperature, max_tokens=request.max_tokens
        )
        plans = each_model(request.models, request)
        called = await asyncio.gather(*(sources.call(p, 0, options, deltas=True) for p in plans))
        results = [c.model_result() for c in called]
        ok = [r for r in results if r.status == "ok"]
        if not ok:
            raise RequestFailed(
                "every model failed: " + "; ".join(f"{r.model}: {r.error}" for r in results)
            )
        return CompareAnswer(
            id=request_id or new_request_id(),
            results=results,
            fastest=min(ok, key=lambda r: r.latency_ms).model,
            longest=max(ok, key=lambda r: len(r.content or "")).model,
            usage=sources.usage,
            latency_ms=elapsed_ms(started),
        )

    async for event in run_mode(work, runtime, request.models, request.timeout_s):
        yield event
