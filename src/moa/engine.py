"""The blend pipeline: fan-out, failure filtering, layers, early stop, quorum, events.

``stream_blend`` yields typed events as things happen; everything else (``blend``, the CLI,
SSE, JSON) is a renderer of that one stream. A blend runs in its own task feeding a queue,
so a consumer that stops listening cancels every upstream call of the blend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from moa.errors import MoaError, ProviderError, RequestFailed
from moa.providers.base import CallOptions, Completion, elapsed_ms
from moa.references import FenceFilter, strip_fences
from moa.runtime import Runtime
from moa.sources import Called, Sources
from moa.strategies import get_strategy
from moa.strategies.base import Answer, DeltaFilter, SourcePlan
from moa.streaming import event_stream
from moa.types import (
    BlendAnswer,
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    LayerEvent,
    Message,
    SourceSpec,
    SynthesisEvent,
    SynthesisInfo,
    TokenUsage,
    new_request_id,
)

Emit = Callable[[Event], None]
log = logging.getLogger("moa.engine")


class _Synth:
    """The synthesizer as strategies see it: calls routed, streamed text sent as chunks."""

    def __init__(self, blend: _Blend, spec: SourceSpec) -> None:
        self._blend = blend
        self.spec = spec
        self.model = self.spec.model
        self.usage = TokenUsage()
        self.latency_ms = 0
        self.finish_reason: str | None = None

    def _options(
        self, messages: Sequence[Message], response_format: dict[str, Any] | None = None
    ) -> CallOptions:
        request = self._blend.request
        asked = request.response_format.for_call() if request.response_format else None
        return self._blend.sources.options(
            messages,
            synthesis=True,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            response_format=response_format or asked,  # a strategy's own format comes first
            stop=tuple(request.stop) if request.stop else None,
            seed=request.seed,
            top_p=request.top_p,
        )

    def _account(self, routed: Completion) -> None:
        self.model = routed.model
        self.finish_reason = routed.finish_reason
        self.usage = self.usage + routed.usage
        self.latency_ms += routed.latency_ms
        self._blend.sources.spent(routed.model, routed.usage)

    async def complete(
        self, messages: Sequence[Message], *, response_format: dict[str, Any] | None = None
    ) -> str:
        routed = await self._blend.runtime.router.complete(
            self.spec,
            self._options(messages, response_format),
            on_route=self._blend.emit,
            layer=-1,
        )
        self._account(routed)
        return strip_fences(routed.text)

    async def stream(self, messages: Sequence[Message], shown: DeltaFilter | None = None) -> str:
        router = self._blend.runtime.router
        streaming = router.stream(
            self.spec, self._options(messages), on_route=self._blend.emit, layer=-1
        )
        fences = FenceFilter()
        async with aclosing(streaming) as pieces:
            async for piece in pieces:
                if isinstance(piece, Completion):
                    self._account(piece)
                    tail = fences.flush()
                    self.show(shown(tail) if shown and tail else tail)
                    return strip_fences(piece.text)
                text = fences(piece)
                self.show(shown(text) if shown and text else text)
        raise ProviderError("synthesis stream ended without an answer", model=self.model)

    def show(self, text: str) -> None:
        if text:
            self._blend.emit(ChunkEvent(content=text))


class _Blend:
    def __init__(
        self, request: BlendRequest, runtime: Runtime, emit: Emit, request_id: str
    ) -> None:
        self.request = request
        self.request_id = request_id
        self.runtime = runtime
        self.emit = emit
        self.sources = Sources(
            runtime,
            emit,
            source_timeout_s=request.source_timeout_s,
            synthesis_timeout_s=request.synthesis_timeout_s,
        )
        self.started = time.perf_counter()

    async def run(self) -> DoneEvent:
        strategy = get_strategy(self.request.strategy)
        answers = await self._layer(strategy.first_layer(self.request), 0)
        if not answers:
            raise RequestFailed(f"every source failed: {self._failures(0)}")
        early_stopped = False
        for layer in range(1, strategy.refinement_layers(self.request) + 1):
            refined = await self._layer(strategy.refine(self.request, layer, answers), layer)
            if not refined:
                early_stopped = True
                break
            answers = refined
        synth = _Synth(self, self._synthesizer(answers))
        if not strategy.calls_synthesizer:
            synth.model = f"moa/{strategy.name}"
        self.emit(SynthesisEvent(strategy=self.request.strategy, model=synth.model))
        try:
            outcome = await strategy.synthesize(self.request, answers, synth)
        except ProviderError as exc:
            raise RequestFailed(f"the synthesizer failed: {exc}", code="synthesis_failed") from exc
        ended = self.sources.in_order()
        degraded = [d for called in ended if (d := called.degraded()) is not None]
        return DoneEvent(
            id=self.request_id,
            strategy=self.request.strategy,
            council=outcome.council,
            best_of_pick=outcome.best_of_pick,
            vote=outcome.vote,
            sources=[called.source_result() for called in ended],
            synthesis=SynthesisInfo(
                model=synth.model,
                latency_ms=synth.latency_ms,
                usage=synth.usage,
                finish_reason=synth.finish_reason,
            ),
            usage=self.sources.usage,
            early_stopped=early_stopped,
            degraded=bool(degraded),
            degraded_sources=degraded,
            latency_ms=elapsed_ms(self.started),
        )

    def _synthesizer(self, answers: Sequence[Answer]) -> SourceSpec:
        """The synthesizer the request named, else the first source that answered: a
        model that just failed would most likely fail the synthesis too."""
        if self.request.synthesizer is not None:
            return self.request.synthesizer_spec
        return min(answers, key=lambda a: a.index).spec

    def _failures(self, layer: int) -> str:
        failed = [c for c in self.sources.called if c.layer == layer and not c.answered]
        return "; ".join(f"{c.model}: {c.error}" for c in failed)

    async def _layer(self, plans: Sequence[SourcePlan], layer: int) -> list[Answer]:
        """Run one layer's calls concurrently; wait for all, or for the quorum plus grace."""
        tasks = [asyncio.create_task(self._source(plan, layer)) for plan in plans]
        try:
            await self._wait(tasks)
        finally:
            stragglers = [t for t in tasks if not t.done()]
            for task in stragglers:
                task.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)
        for plan, task in zip(plans, tasks, strict=True):
            if task.cancelled():
                self.sources.ended(plan, layer, "cut", "cut (straggler)", self.started)
        called = [t.result() for t in tasks if not t.cancelled()]
        answers = [c.answer() for c in called if c.answered]
        if get_strategy(self.request.strategy).refinement_layers(self.request):
            self.emit(LayerEvent(layer=layer, successes=len(answers)))
        return sorted(answers, key=lambda a: a.index)

    async def _wait(self, tasks: list[asyncio.Task[Called]]) -> None:
        quorum = self.request.quorum
        if quorum is None or quorum >= len(tasks):
            await asyncio.wait(tasks)
            return
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[Called]] = set(tasks)
        deadline: float | None = None
        while pending:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            answered = sum(1 for t in tasks if t.done() and t.result().answered)
            if deadline is None and answered >= quorum:
                deadline = loop.time() + self.request.grace_ms / 1000
            if deadline is not None and loop.time() >= deadline:
                return

    async def _source(self, plan: SourcePlan, layer: int) -> Called:
        options = self.sources.options(
            plan.messages,
            temperature=plan.temperature,
            max_tokens=self.request.max_tokens,
            seed=None if self.request.seed is None else self.request.seed + plan.index,
        )
        return await self.sources.call(plan, layer, options)


async def stream_blend(
    request: BlendRequest, runtime: Runtime | None = None, *, request_id: str | None = None
) -> AsyncGenerator[Event, None]:
    """Run a blend, yielding its events: source, route, layer, synthesis, chunk, then done
    or error. Stop iterating (or cancel) and every upstream call is cancelled. The answer's
    ``id`` is ``request_id`` (a server passes its request's), else a new one."""
    rt = runtime if runtime is not None else Runtime.from_settings()

    async def work(emit: Emit) -> None:
        blend_id = request_id or new_request_id()
        if rt.tracing is None:
            await _produce(request, rt, emit, blend_id)
            return
        with rt.tracing.blend(request, emit) as traced:  # current span: the blend's tasks nest
            await _produce(request, rt, traced, blend_id)

    try:
        async for event in event_stream(work):
            yield event
    finally:
        if runtime is None:
            await rt.aclose()


async def _produce(request: BlendRequest, runtime: Runtime, emit: Emit, request_id: str) -> None:
    """Run the blend; a failure becomes the stream's last event (with what the blend had
    used, which billing records), never an exception."""
    request = runtime.local_defaults(request)
    blend = _Blend(request, runtime, emit, request_id)
    try:
        await runtime.prepare(request)
        async with asyncio.timeout(request.timeout_s):
            emit(await blend.run())
    except TimeoutError:
        deadline = f"{request.timeout_s:g} s"
        failed = RequestFailed(f"the blend passed its deadline of {deadline}", code="timeout")
        failed.usage = blend.sources.usage
        emit(ErrorEvent.of(failed))
    except MoaError as exc:
        exc.usage = blend.sources.usage
        emit(ErrorEvent.of(exc))
    except Exception:  # a bug must end the stream cleanly, not hang or leak a traceback
        log.exception("blend failed unexpectedly")
        failed = RequestFailed("the blend failed unexpectedly", code="internal_error")
        emit(ErrorEvent.of(failed))


async def blend(request: BlendRequest, runtime: Runtime | None = None) -> BlendAnswer:
    """Run a blend to the end and return the answer object; raise MoaError if it fails."""
    parts: list[str] = []
    async for event in stream_blend(request, runtime):
        if isinstance(event, ChunkEvent):
            parts.append(event.content)
        elif isinstance(event, DoneEvent):
            return event.answer("".join(parts))
        elif isinstance(event, ErrorEvent):
            raise event.exception
    raise RequestFailed("the blend ended without an answer", code="internal_error")
