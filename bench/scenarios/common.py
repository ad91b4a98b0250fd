"""What the HTTP scenarios share: the blend body moa gets and how to call it."""

from __future__ import annotations

from typing import Any

from bench.control import SOURCES, SYNTH
from bench.direct import QUESTION
from bench.load import Call, Clients, json_blend, sse_blend
from bench.servers import SOURCE_PROVIDERS, SYNTH_PROVIDER, Lab

SOURCE_IDS = [f"{p}/{m}" for p, m in zip(SOURCE_PROVIDERS, SOURCES, strict=True)]
SYNTH_ID = f"{SYNTH_PROVIDER}/{SYNTH}"


def blend_body(strategy: str, *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    """3 sources (self_moa: 1 model x 3 samples) and a separate synthesizer model."""
    body: dict[str, Any] = {
        "models": SOURCE_IDS[:1] if strategy == "self_moa" else SOURCE_IDS,
        "synthesizer": SYNTH_ID,
        "strategy": strategy,
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
    }
    if strategy == "moa":
        body["layers"] = 1
    if strategy == "self_moa":
        body["samples"] = 3
    return body | extra


def blend_call(
    clients: Clients, lab: Lab, strategy: str, *, stream: bool = True, **extra: Any
) -> Call:
    """A zero-argument coroutine factory that runs one blend through moa's HTTP API."""
    url = f"{lab.moa_url}/api/v1/blend"
    headers = {"Authorization": f"Bearer {lab.key}"}
    body = blend_body(strategy, stream=stream, **extra)
    send = sse_blend if stream else json_blend
    return lambda: send(clients.next(), url, headers, body)
