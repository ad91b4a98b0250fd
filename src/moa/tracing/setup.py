"""Build the OpenTelemetry SDK's tracer provider from the standard ``OTEL_*`` variables.

Only moa.tracing imports this, and only when tracing was asked for (and the variables were
checked), so the SDK never loads otherwise. ``OTEL_TRACES_EXPORTER`` picks the exporters;
the SDK and the OTLP exporter read the rest themselves (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ...).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from importlib import import_module

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from moa.tracing import OTLP_PROTOCOLS, exporters, otlp_protocol


def provider_from_env(env: Mapping[str, str]) -> trace.TracerProvider:
    """The process's tracer provider: the one already installed (by moa earlier in this
    process, or by an application that embeds moa), else a new one made the global."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    made = [_exporter(name, env) for name in exporters(env)]
    provider = TracerProvider(resource=_resource())
    for exporter in made:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":  # stderr: stdout carries the CLI's answer (``moa blend --json``)
        return ConsoleSpanExporter(out=sys.stderr)
    module, _ = OTLP_PROTOCOLS[otlp_protocol(env)]
    exporter: type[SpanExporter] = import_module(f"{module}.trace_exporter").OTLPSpanExporter
    return exporter()


def _resource() -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), named ``moa`` when
    the environment gives no service name."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "moa"}))
    return resource
