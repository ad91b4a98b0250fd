"""Request bodies and readers shared by the server tests."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from openai.types.chat import ChatCompletionMessageParam

QUESTION = "What is the capital of France?"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
PAIR: list[str] = ["fake/alpha", "fake/beta"]

# docs/api.md, the blend answer, field by field.
ANSWER_FIELDS = {
    "id",
    "strategy",
    "content",
    "council",
    "best_of_pick",
    "sources",
    "synthesis",
    "usage",
    "early_stopped",
    "credits_charged",
    "credits_remaining",
    "latency_ms",
}
SOURCE_FIELDS = {"model", "layer", "status", "content", "error", "latency_ms", "usage"}
SYNTHESIS_FIELDS = {"model", "latency_ms", "usage"}
USAGE_FIELDS = {"calls", "prompt_tokens", "completion_tokens", "cost_usd"}


def blend_body(*models: str | dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A blend of ``models`` (default alpha + beta) asking the usual question."""
    return {"models": list(models or PAIR), "messages": USER, **fields}


def error_of(response: httpx.Response) -> dict[str, str]:
    """The ``error`` object of an error response, after checking its shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message"}, body
    error: dict[str, str] = body["error"]
    return error


async def timed_events(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> AsyncIterator[tuple[float, dict[str, Any]]]:
    """Read an SSE response as it arrives: (seconds since the request was sent, event);
    ``data: [DONE]`` comes out as {"done": True}."""
    started = time.perf_counter()
    async with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                event = {"done": True} if data == "[DONE]" else json.loads(data)
                yield time.perf_counter() - started, event


async def key_guesses(url: str, forwarded_for: Callable[[int], str], count: int = 8) -> list[int]:
    """The statuses of ``count`` requests with wrong keys, the n-th sent with the
    ``X-Forwarded-For`` header ``forwarded_for(n)``: how the window for key guesses per
    client address is probed."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as guesser:
        return [
            (
                await guesser.get(
                    "/api/v1/usage",
                    headers={
                        "Authorization": f"Bearer moa_sk_guess{n}",
                        "X-Forwarded-For": forwarded_for(n),
                    },
                )
            ).status_code
            for n in range(count)
        ]


async def assert_victim_blend_succeeds(victim: httpx.AsyncClient) -> None:
    """Another key's blend of two healthy models is served in full: the attack just
    played did not reach it."""
    response = await victim.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200, response.text
    assert [s["status"] for s in response.json()["sources"]] == ["ok", "ok"]
