"""OpenAI Chat Completions: the hot path of nearly every blend.

One adapter serves every OpenAI-compatible server (OpenAI, OpenRouter, Together, Groq,
DeepSeek, Mistral, Ollama, vLLM, llama.cpp server and any ``kind = "openai"`` in moa.toml).
It speaks the documented JSON itself over ``transport.Upstream`` (aiohttp), as the other
adapters do, rather than through the official SDK (see ``transport`` for why). Retries,
deadlines and failover belong to ``moa.routing``; nothing here retries, except:

Structured output: ``response_format`` is passed as given. A server that answers a
``json_schema`` request with 400 or 422 (older OpenAI-compatible servers only know
``json_object``) gets the same call once more with ``{"type": "json_object"}``; nothing is
remembered between calls.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from moa.providers.base import (
    ChatCall,
    Completion,
    Provider,
    elapsed_ms,
    estimate_tokens,
    prompt_tokens_estimate,
)
from moa.providers.failures import Failures
from moa.providers.shapes import BadShape, as_count, as_list, as_object, optional_text, parse_json
from moa.providers.transport import Upstream, error_text
from moa.types import TokenUsage

if TYPE_CHECKING:  # aiohttp itself is transport.py's
    import aiohttp

JSON_OBJECT = {"type": "json_object"}
SCHEMA_REFUSALS = frozenset({400, 422})
BLOCKED = "content_filter"
DONE = b"[DONE]"


class OpenAICompatProvider(Provider):
    def __init__(self, name: str, *, base_url: str, api_key: str, connect_timeout_s: float) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._failures = Failures(name, api_key)
        self._http = Upstream(
            self._failures,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            connect_timeout_s=connect_timeout_s,
        )

    def _body(self, call: ChatCall) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [{"role": m.role, "content": m.content} for m in call.messages],
        }
        options = {
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
            "response_format": call.response_format,
            "stop": list(call.stop) if call.stop else None,
            "seed": call.seed,
            "top_p": call.top_p,
        }
        return body | {key: value for key, value in options.items() if value is not None}

    async def complete(self, call: ChatCall) -> Completion:
        started = time.perf_counter()
        async with self._reply(call, self._body(call)) as response:
            raw = await response.read()
            text, usage, finish = _parse_completion(parse_json(raw, "the reply"))
        if finish == BLOCKED:
            raise self._failures.blocked(call.model, "answer")
        usage = usage or _estimated_usage(call, text)
        return Completion(text, usage, elapsed_ms(started), finish)

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        """Text deltas as the server-sent events arrive, read as plain JSON."""
        started = time.perf_counter()
        parts: list[str] = []
        usage: TokenUsage | None = None
        finish: str | None = None
        body = {**self._body(call), "stream": True, "stream_options": {"include_usage": True}}
        async with self._reply(call, body) as response:
            async for data in self._http.events(call.model, response):
                if data.strip() == DONE:
                    continue
                chunk = as_object(parse_json(data, "a stream event"), "a stream chunk")
                if chunk.get("error"):
                    raise self._failures.mid_stream(call.model, data)
                usage = _usage(chunk.get("usage")) or usage
                for delta, reason in _chunk_choices(chunk):
                    finish = reason or finish
                    if delta:
                        parts.append(delta)
                        yield delta
        text = "".join(parts)
        if finish is None and usage is None:
            raise self._failures.cut_short(call.model)
        if finish == BLOCKED:
            raise self._failures.blocked(call.model, "answer")
        usage = usage or _estimated_usage(call, text)
        yield Completion(text, usage, elapsed_ms(started), finish)

    @asynccontextmanager
    async def _reply(
        self, call: ChatCall, body: dict[str, Any]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The upstream's 2xx reply; a refused ``json_schema`` is asked once more as
        ``json_object``."""
        asked = body.get("response_format") or {}
        refusals = SCHEMA_REFUSALS if asked.get("type") == "json_schema" else frozenset()
        async with self._http.reply(call, self._url, body, allow=refusals) as response:
            if response.status < 300:
                yield response
                return
            what = f"HTTP {response.status} to json_schema, retrying with json_object"
            self._failures.note(call.model, what, await error_text(response))
        retry = body | {"response_format": JSON_OBJECT}
        async with self._http.reply(call, self._url, retry) as response:
            yield response

    async def aclose(self) -> None:
        await self._http.aclose()


def _parse_completion(data: object) -> tuple[str, TokenUsage | None, str | None]:
    """Text, usage and finish reason of a ``chat.completion`` object."""
    reply = as_object(data, "the reply")
    if "choices" not in reply:
        raise BadShape("the reply is not a chat.completion object")
    choices = as_list(reply["choices"], "choices")
    if not choices:
        return "", _usage(reply.get("usage")), None
    choice = as_object(choices[0], "a choice")
    message = as_object(choice.get("message"), "a choice's message")
    text = optional_text(message.get("content"), "a message's content") or ""
    finish = optional_text(choice.get("finish_reason"), "finish_reason")
    return text, _usage(reply.get("usage")), finish


def _chunk_choices(chunk: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Each choice of a stream chunk as (text delta, finish reason)."""
    for raw in as_list(chunk.get("choices"), "choices"):
        choice = as_object(raw, "a choice")
        delta = as_object(choice.get("delta") or {}, "a choice's delta")
        text = optional_text(delta.get("content"), "a delta's content") or ""
        yield text, optional_text(choice.get("finish_reason"), "finish_reason")


def _usage(value: object) -> TokenUsage | None:
    if value is None:
        return None
    usage = as_object(value, "usage")
    return TokenUsage(
        prompt_tokens=as_count(usage.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=as_count(usage.get("completion_tokens"), "completion_tokens"),
    )


def _estimated_usage(call: ChatCall, text: str) -> TokenUsage:
    """For servers that report no usage."""
    return TokenUsage(
        prompt_tokens=prompt_tokens_estimate(call.messages),
        completion_tokens=estimate_tokens(text),
    )
