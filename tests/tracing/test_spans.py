"""Spans of real blends against the scripted upstream, read back from the SDK's in-memory
exporter: one moa.blend per blend, its calls nested under it, GenAI attributes, statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from moa.config import Settings
from moa.engine import blend
from moa.errors import RequestFailed
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.tracing.spans import Tracing
from tests.helpers import request


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


@pytest.fixture
async def traced(settings: Settings, exporter: InMemorySpanExporter) -> AsyncIterator[Runtime]:
    """A runtime tracing into memory (not the process-global provider, so tests stay apart)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with Runtime(settings, tracing=Tracing(provider)) as runtime:
        yield runtime
    provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """A span's attributes (the SDK types them as an optional mapping of unions)."""
    return dict(span.attributes or {})


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def source_of(spans: tuple[ReadableSpan, ...], model: str) -> ReadableSpan:
    """The moa.source span of the call that asked for ``model``."""
    return next(s for s in named(spans, "moa.source") if attrs(s)["gen_ai.request.model"] == model)


async def test_a_blend_is_one_moa_blend_span_with_its_calls_nested_under_it(
    traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), traced)
    spans = exporter.get_finished_spans()
    (root,) = named(spans, "moa.blend")
    sources = named(spans, "moa.source")
    (synthesis,) = named(spans, "moa.synthesis")
    assert len(sources) == 2
    assert root.parent is None
    for child in [*sources, synthesis]:
        assert child.parent is not None and child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id


async def test_call_spans_carry_the_genai_model_usage_layer_and_status(
    traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), traced)
    spans = exporter.get_finished_spans()
    alpha = next(
        s for s in named(spans, "moa.source") if attrs(s)["gen_ai.request.model"] == "fake/alpha"
    )
    assert attrs(alpha)["gen_ai.operation.name"] == "chat"
    assert attrs(alpha)["gen_ai.provider.name"] == "fake"
    assert attrs(alpha)["gen_ai.response.model"] == "fake/alpha"
    assert attrs(alpha)["gen_ai.usage.input_tokens"] > 0
    assert attrs(alpha)["gen_ai.usage.output_tokens"] > 0
    assert attrs(alpha)["moa.layer"] == 0
    assert attrs(alpha)["moa.status"] == "ok"
    (synthesis,) = named(spans, "moa.synthesis")
    assert attrs(synthesis)["gen_ai.request.model"] == "fake/judge"
    assert attrs(synthesis)["moa.layer"] == -1
    assert attrs(synthesis)["gen_ai.usage.output_tokens"] > 0


async def test_the_blend_span_totals_the_usage_and_names_the_strategy(
    traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    answer = await blend(request("fake/alpha", "fake/beta", strategy="chain"), traced)
    (root,) = named(exporter.get_finished_spans(), "moa.blend")
    assert attrs(root)["gen_ai.request.model"] == "moa/chain"
    assert attrs(root)["moa.models"] == ("fake/alpha", "fake/beta")
    assert attrs(root)["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attrs(root)["moa.calls"] == answer.usage.calls
    assert attrs(root)["moa.status"] == "ok"
    assert root.status.status_code is StatusCode.UNSET


async def test_a_failed_source_span_has_error_status_and_the_blend_still_succeeds(
    upstream: ScriptedUpstream, traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    upstream.script("beta", status=400, error_message="bad request")
    await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), traced)
    spans = exporter.get_finished_spans()
    beta = source_of(spans, "fake/beta")
    assert beta.status.status_code is StatusCode.ERROR
    assert attrs(beta)["moa.status"] == "error"
    assert attrs(beta)["error.type"] == "400"
    assert "gen_ai.usage.output_tokens" not in attrs(beta)
    (root,) = named(spans, "moa.blend")
    assert attrs(root)["moa.status"] == "ok"


async def test_a_blend_whose_sources_all_fail_ends_its_span_with_the_error_code(
    upstream: ScriptedUpstream, traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    with pytest.raises(RequestFailed):
        await blend(request("fake/alpha", "fake/beta"), traced)
    (root,) = named(exporter.get_finished_spans(), "moa.blend")
    assert attrs(root)["moa.status"] == "all_sources_failed"
    assert root.status.status_code is StatusCode.ERROR
    assert "every source failed" in (root.status.description or "")


async def test_moa_layers_show_in_the_source_spans(
    traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    await blend(request("fake/alpha", "fake/beta", strategy="moa", layers=2), traced)
    sources = named(exporter.get_finished_spans(), "moa.source")
    layers = sorted(attrs(s)["moa.layer"] for s in sources)
    assert layers == [0, 0, 1, 1, 2, 2]


async def test_a_fallback_span_names_the_requested_and_the_answering_model(
    upstream: ScriptedUpstream, traced: Runtime, exporter: InMemorySpanExporter
) -> None:
    upstream.script("alpha", status=400)
    models: list[str | dict[str, Any]] = [
        {"model": "fake/alpha", "fallback": ["spare/alpha2"]},
        "fake/beta",
    ]
    await blend(request(*models, synthesizer="fake/judge"), traced)
    routed = source_of(exporter.get_finished_spans(), "fake/alpha")
    assert attrs(routed)["gen_ai.response.model"] == "spare/alpha2"
    assert attrs(routed)["moa.fallback"] == ("spare/alpha2",)
    assert attrs(routed)["moa.status"] == "ok"
