"""The spans moa emits, named as docs/tracing.md says, with the OpenTelemetry GenAI
semantic-convention attributes.

    moa.blend                one per blend; current while the blend runs, so the tasks it
    ├── moa.source           starts (which copy the context) nest their calls under it
    └── moa.synthesis        the synthesizer's call(s) (layer -1)

Every span carries ``moa.status``: ``ok``, ``error`` / ``skipped`` (a call), an error code
(a blend), or ``cancelled``; failures also set the span status to ERROR with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from moa import __version__
from moa.config import EngineConfig
from moa.errors import CircuitOpen, ProviderError
from moa.providers.base import CallOptions, Completion
from moa.providers.registry import ProviderRegistry
from moa.routing.breaker import Breakers
from moa.routing.router import Router
from moa.types import BlendRequest, DoneEvent, ErrorEvent, Event, SourceSpec

Emit = Callable[[Event], None]
SYNTHESIS_LAYER = -1


class Tracing:
    """What the runtime holds when tracing is on: a tracer, the traced router, blend spans."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.tracer = provider.get_tracer("moa", __version__)

    def router(
        self,
        registry: ProviderRegistry,
        config: EngineConfig,
        breakers: Breakers | None = None,
        provider_caps: dict[str, int] | None = None,
    ) -> Router:
        from moa.tracing.router import TracedRouter

        return TracedRouter(self.tracer, registry, config, breakers, provider_caps)

    @contextmanager
    def blend(self, request: BlendRequest, emit: Emit) -> Iterator[Emit]:
        """The ``moa.blend`` span, current for the body; the emit it yields also records the
        blend's outcome (its done or error event) on the span."""
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": f"moa/{request.strategy}",
            "moa.strategy": request.strategy,
            "moa.models": [spec.model for spec in request.sources],
            "moa.synthesizer": request.synthesizer_spec.model,
            **_sampling(request.temperature, request.max_tokens),
        }
        with self.tracer.start_as_current_span(
            "moa.blend",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            ended = False

            def observe(event: Event) -> None:
                nonlocal ended
                if isinstance(event, DoneEvent):
                    ended = True
                    _blend_done(span, event)
                elif isinstance(event, ErrorEvent):
                    ended = True
                    failed(span, event.code, event.message)
                emit(event)

            try:
                yield observe
            finally:
                if not ended:
                    span.set_attribute("moa.status", "cancelled")


def call_attributes(spec: SourceSpec, options: CallOptions, layer: int) -> dict[str, Any]:
    """What is known before a call: the model as the request named it, its layer, sampling."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": spec.model.partition("/")[0],
        "gen_ai.request.model": spec.model,
        "moa.layer": layer,
        **_sampling(options.temperature, options.max_tokens),
    }
    if spec.fallback:
        attributes["moa.fallback"] = list(spec.fallback)
    return attributes


def span_name(layer: int) -> str:
    return "moa.synthesis" if layer == SYNTHESIS_LAYER else "moa.source"


def answered(span: Span, routed: Completion) -> None:
    usage = routed.usage
    span.set_attributes(
        {
            "gen_ai.response.model": routed.model,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "moa.status": "ok",
        }
    )


def call_failed(span: Span, exc: BaseException) -> None:
    """A call that raised: a provider failure (error, or skipped by its breaker), or cancelled
    (a straggler cut by the quorum, a client that left)."""
    if not isinstance(exc, ProviderError):
        span.set_attribute("moa.status", "cancelled")
        return
    status = "skipped" if isinstance(exc, CircuitOpen) else "error"
    kind = str(exc.status) if exc.status is not None else type(exc).__name__
    failed(span, kind, str(exc), status=status)


def failed(span: Span, kind: str, message: str, *, status: str | None = None) -> None:
    span.set_attributes({"moa.status": status or kind, "error.type": kind})
    span.set_status(Status(StatusCode.ERROR, message))


def _blend_done(span: Span, done: DoneEvent) -> None:
    span.set_attributes(
        {
            "gen_ai.response.id": done.id,
            "gen_ai.usage.input_tokens": done.usage.prompt_tokens,
            "gen_ai.usage.output_tokens": done.usage.completion_tokens,
            "moa.calls": done.usage.calls,
            "moa.cost_usd": done.usage.cost_usd,
            "moa.early_stopped": done.early_stopped,
            "moa.status": "ok",
        }
    )


def _sampling(temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = temperature
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    return attributes
