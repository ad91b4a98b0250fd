"""The router with a span around each logical call, in the spirit of pydantic-ai's
``InstrumentedModel``: the engine and the modes call it exactly as the plain Router.

One span covers a call's whole route (retries and fallbacks); ``gen_ai.request.model`` is
the model the request named, ``gen_ai.response.model`` the one that answered.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from opentelemetry.trace import Tracer

from moa.providers.base import CallOptions, Completion
from moa.routing.router import RouteListener, Router
from moa.tracing.spans import answered, call_attributes, call_failed, span_name
from moa.types import SourceSpec


class TracedRouter(Router):
    def __init__(self, tracer: Tracer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracer = tracer

    async def complete(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> Completion:
        with self._tracer.start_as_current_span(
            span_name(layer),
            attributes=call_attributes(spec, options, layer),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                routed = await super().complete(spec, options, on_route=on_route, layer=layer)
            except BaseException as exc:
                call_failed(span, exc)
                raise
            answered(span, routed)
            return routed

    async def stream(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> AsyncGenerator[str | Completion, None]:
        """Not made current: a generator's context would leak into its consumer. The span
        ends with the final piece, since consumers stop iterating once they have it."""
        span = self._tracer.start_span(
            span_name(layer), attributes=call_attributes(spec, options, layer)
        )
        try:
            async for piece in super().stream(spec, options, on_route=on_route, layer=layer):
                if isinstance(piece, Completion):
                    answered(span, piece)
                    span.end()
                    yield piece
                    return
                yield piece
        except BaseException as exc:
            if span.is_recording():
                call_failed(span, exc)
            raise
        finally:
            if span.is_recording():
                span.end()
