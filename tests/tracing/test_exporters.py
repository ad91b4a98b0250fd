"""Tracing as an operator switches it on: ``OTEL_*`` variables on the real ``moa`` command,
spans printed by the console exporter or received over OTLP by a collector on loopback;
and nothing of OpenTelemetry loaded when no variable asks for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from moa.config import settings_from_dict
from moa.routing.router import Router
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.tracing import requested

MOA = str(Path(sys.executable).parent / "moa")


def environment(**otel: str) -> dict[str, str]:
    """This process's environment without any OTEL_*, moa config or provider key, plus ``otel``."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k != "MOA_CONFIG" and not k.endswith("_API_KEY")
    }
    return {**kept, **otel}


@pytest.fixture
def config(tmp_path: Path, upstream: ScriptedUpstream) -> Path:
    path = tmp_path / "moa.toml"
    path.write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{upstream.base_url}"\n'
        'api_key = "sk-fake"\n',
        encoding="utf-8",
    )
    return path


def blend(config: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    args = ["blend", "Capital of France?", "-m", "fake/alpha", "-m", "fake/beta", "--json"]
    command = [sys.executable, *flags, "-c", "from moa.cli import main; main()", *args]
    return subprocess.run(
        [*command, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def console_spans(stderr: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed (one per span, pretty-printed)."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := stderr.find("{", index)) != -1:
        value, index = decoder.raw_decode(stderr, start)
        spans.append(value)
    return spans


def test_the_console_exporter_prints_the_blend_spans_and_keeps_stdout_for_the_answer(
    config: Path,
) -> None:
    result = blend(config, environment(OTEL_TRACES_EXPORTER="console"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"], "stdout is still the answer object alone"
    spans = console_spans(result.stderr)
    names = sorted(str(s["name"]) for s in spans)
    assert names == ["moa.blend", "moa.source", "moa.source", "moa.synthesis"]
    root = next(s for s in spans if s["name"] == "moa.blend")
    assert all(s["context"]["trace_id"] == root["context"]["trace_id"] for s in spans)
    assert root["resource"]["attributes"]["service.name"] == "moa"


class _Collector(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            self.received.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what arrived, not the access log."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP trace receiver on loopback: (endpoint, requests received)."""
    received: list[ExportTraceServiceRequest] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_an_otlp_endpoint_alone_sends_the_spans_to_that_collector(
    config: Path, collector: tuple[str, list[ExportTraceServiceRequest]]
) -> None:
    endpoint, received = collector
    env = environment(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="moa-test")
    result = blend(config, env)
    assert result.returncode == 0, result.stderr
    spans = [
        (resource, span)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(span.name for _, span in spans) == [
        "moa.blend",
        "moa.source",
        "moa.source",
        "moa.synthesis",
    ]
    service = {a.key: a.value.string_value for a in spans[0][0].resource.attributes}
    assert service["service.name"] == "moa-test"


def test_without_otel_variables_the_cli_never_imports_opentelemetry(config: Path) -> None:
    result = blend(config, environment(), "-X", "importtime")
    assert result.returncode == 0, result.stderr
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", result.stderr, re.MULTILINE)
    assert imported, "importtime printed nothing"
    assert not [m for m in imported if m.startswith("opentelemetry")]


def test_without_otel_variables_the_runtime_has_no_tracing_and_the_plain_router() -> None:
    runtime = Runtime(settings_from_dict({}, env={"OTEL_SERVICE_NAME": "moa"}))
    assert runtime.tracing is None
    assert type(runtime.router) is Router


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "moa", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_endpoint_is_named(
    env: dict[str, str], on: bool
) -> None:
    assert requested(env) is on


def test_an_unknown_exporter_is_a_config_error_naming_the_variable(config: Path) -> None:
    result = blend(config, environment(OTEL_TRACES_EXPORTER="jaeger"))
    assert result.returncode == 2
    assert "OTEL_TRACES_EXPORTER: jaeger is not one of otlp, console, none" in result.stderr
