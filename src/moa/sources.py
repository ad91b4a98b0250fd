"""One request's calls to its sources, whoever makes them: a blend's layers, compare's
columns, judge's contestants and chat's one model.

Each call goes through the router under the request's own timeout (never below the
configured floor, which admission checks), is priced into the request's usage, timed, and
reported the moment it ends as a ``source`` event (with its streamed text as ``delta``
events when the caller shows it). What a call came to is a ``Called``, which each caller
turns into its own public shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal

from moa.errors import CircuitOpen, ProviderError
from moa.providers.base import CallOptions, Completion, elapsed_ms
from moa.routing.router import with_timeout
from moa.runtime import Runtime
from moa.strategies.base import Answer, SourcePlan
from moa.types import (
    DegradedSource,
    DeltaEvent,
    Event,
    Message,
    ModelResult,
    RouteEvent,
    SourceEvent,
    SourceResult,
    TokenUsage,
    Usage,
)

Emit = Callable[[Event], None]
Status = Literal["complete", "failed", "skipped", "cut"]


@dataclass(frozen=True, slots=True)
class Called:
    """What one source call came to. ``model`` is who answered (a fallback's id when the
    route failed over), else the model the plan named."""

    plan: SourcePlan
    layer: int
    status: Status
    model: str
    latency_ms: int
    text: str | None = None
    error: str | None = None
    first_token_ms: int | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str | None = None

    @property
    def answered(self) -> bool:
        return self.status == "complete"

    def answer(self) -> Answer:
        return Answer(
            index=self.plan.index,
            model=self.model,
            text=self.text or "",
            spec=self.plan.spec,
            sample=self.plan.sample,
        )

    def source_result(self) -> SourceResult:
        return SourceResult(
            model=self.model,
            layer=self.layer,
            status="ok" if self.answered else "error",
            content=self.text,
            error=self.error,
            latency_ms=self.latency_ms,
            usage=self.usage,
            sample=self.plan.sample,
        )

    def model_result(self) -> ModelResult:
        return ModelResult(
            model=self.model,
            status="ok" if self.answered else "error",
            content=self.text,
            error=self.error,
            latency_ms=self.latency_ms,
            first_token_ms=self.first_token_ms,
            usage=self.usage,
        )

    def degraded(self) -> DegradedSource | None:
        if self.status == "complete":
            return None
        return DegradedSource(
            model=self.model,
            layer=self.layer,
            sample=self.plan.sample,
            status=self.status,
            error=self.error or "",
        )


class Sources:
    """The source calls of one request, with its usage so far and every call's end."""

    def __init__(
        self,
        runtime: Runtime,
        emit: Emit,
        *,
        source_timeout_s: float | None = None,
        synthesis_timeout_s: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.emit = emit
        self.usage = Usage()
        self.called: list[Called] = []
        self._source_timeout_s = source_timeout_s
        self._synthesis_timeout_s = synthesis_timeout_s

    def options(
        self, messages: Sequence[Message], *, synthesis: bool = False, **fields: Any
    ) -> CallOptions:
        """Call options under the request's timeout for a source (or a synthesizer)."""
        engine = self.runtime.settings.engine
        if synthesis:
            own, configured = self._synthesis_timeout_s, engine.synthesis_timeout_s
        else:
            own, configured = self._source_timeout_s, engine.source_timeout_s
        return with_timeout(CallOptions(messages=messages, timeout_s=0, **fields), own, configured)

    def spent(self, model: str, tokens: TokenUsage, calls: int = 1) -> None:
        """Add a call's tokens, priced for ``model``, to the request's usage."""
        self.usage = self.usage + self.runtime.settings.usage_of(model, tokens, calls)

    async def call(
        self,
        plan: SourcePlan,
        layer: int,
        options: CallOptions,
        *,
        deltas: bool = False,
        report: bool = True,
    ) -> Called:
        """Call one source and (``report``) say how it ended; with ``deltas``, stream its
        text. Chat, whose one answer is the whole reply, reports no source event."""
        started = time.perf_counter()
        first_token: int | None = None
        try:
            if deltas:
                routed, first_token = await self._streamed(plan, layer, options, started)
            else:
                routed = await self.runtime.router.complete(
                    plan.spec, options, on_route=self.emit, layer=layer
                )
        except ProviderError as exc:
            skipped = isinstance(exc, CircuitOpen)  # never called: no call, no latency
            status: Status = "skipped" if skipped else "failed"
            error = "skipped (circuit_open)" if skipped else str(exc)
            return self.ended(
                plan, layer, status, error, started, calls=0 if skipped else 1, report=report
            )
        self.spent(routed.model, routed.usage)
        called = Called(
            plan=plan,
            layer=layer,
            status="complete",
            model=routed.model,
            latency_ms=elapsed_ms(started),
            text=routed.text,
            first_token_ms=first_token,
            usage=routed.usage,
            finish_reason=routed.finish_reason,
        )
        self._report(called, report)
        return called

    async def _streamed(
        self, plan: SourcePlan, layer: int, options: CallOptions, started: float
    ) -> tuple[Completion, int | None]:
        """Stream a call's text as deltas naming the model that is answering (a fallback's
        once the route has failed over); the routed completion and its first-token time."""
        answering = plan.spec.model
        first_token: int | None = None

        def on_route(event: RouteEvent) -> None:
            nonlocal answering
            answering = event.model if event.status == "trying" else answering
            self.emit(event)

        streaming = self.runtime.router.stream(plan.spec, options, on_route=on_route, layer=layer)
        async with aclosing(streaming) as pieces:
            async for piece in pieces:
                if isinstance(piece, Completion):
                    return piece, first_token
                first_token = elapsed_ms(started) if first_token is None else first_token
                self.emit(DeltaEvent(model=answering, content=piece, index=plan.index))
        raise ProviderError("the stream ended without an answer", model=plan.spec.model)

    def ended(
        self,
        plan: SourcePlan,
        layer: int,
        status: Status,
        error: str,
        started: float,
        *,
        calls: int = 1,
        report: bool = True,
    ) -> Called:
        """A source that gave no answer (failed, skipped, or cut as a straggler)."""
        self.spent(plan.spec.model, TokenUsage(), calls)
        called = Called(
            plan=plan,
            layer=layer,
            status=status,
            model=plan.spec.model,
            latency_ms=elapsed_ms(started),
            error=error,
        )
        self._report(called, report)
        return called

    def _report(self, called: Called, report: bool) -> None:
        self.called.append(called)
        if not report:
            return
        shown = "straggler" if called.status == "cut" else called.error
        self.emit(
            SourceEvent(
                model=called.model,
                layer=called.layer,
                status=called.status,
                tokens=called.usage.completion_tokens,
                latency_ms=called.latency_ms,
                error=shown,
                sample=called.plan.sample,
                index=called.plan.index,
            )
        )

    def in_order(self) -> list[Called]:
        """Every call that ended, by layer then by its place in the plan."""
        return sorted(self.called, key=lambda c: (c.layer, c.plan.index))
