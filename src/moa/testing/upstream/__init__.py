"""A scripted upstream that stands in for real LLM providers, speaking three protocols.

Why it exists: everything hard in moa (timeouts, retries, partial failures, cancelling
calls nobody needs any more) happens on the wire, so mocking the SDK would hide the very
bugs the tests are for. This package runs a real HTTP server on 127.0.0.1 that speaks
OpenAI Chat Completions (``/v1/chat/completions``), Anthropic Messages (``/v1/messages``)
and Gemini (``/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``),
each as JSON and SSE. One ``Behavior`` scripts a model on every protocol (latency, errors,
stalls, cut streams, bad JSON, safety blocks, per-prompt answers), faults are injected at a
seeded rate, and every request is recorded the same way, including *when* the client hung
up, so tests can prove that moa cancels upstream calls.

    script.py         Behavior, FaultPlan, RecordedRequest, the shared State
    wire.py           what a protocol must say: parse a request, write errors, replies, events
    openai_wire.py    anthropic_wire.py    gemini_wire.py: the three protocols
    exchange.py       writing one reply: timing, errors, stalls, cuts, bad JSON, streams
    app.py            the ASGI app: endpoints and the control routes
    server.py         ScriptedUpstream (in-process, on a free port) and ``main``

In-process: ``with ScriptedUpstream() as up: ...``. As its own process (benchmarks):
``python -m moa.testing.upstream --port 9100`` and script it via ``POST /_script``.
"""

from moa.testing.upstream.app import UpstreamApp
from moa.testing.upstream.script import (
    Behavior,
    FaultPlan,
    RecordedRequest,
    default_reply,
    tokens_of,
)
from moa.testing.upstream.server import ScriptedUpstream, main

__all__ = [
    "Behavior",
    "FaultPlan",
    "RecordedRequest",
    "ScriptedUpstream",
    "UpstreamApp",
    "default_reply",
    "main",
    "tokens_of",
]
