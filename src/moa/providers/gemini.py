"""Google Gemini's generateContent REST API, over ``transport.Upstream`` (aiohttp).

Gemini's SDK is a large dependency for two endpoints, so this adapter speaks the documented
JSON directly: ``models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``. The
model name is percent-encoded into the path, and the URL is sent as built (no decoding, no
dot-segment folding), so no model id can reach another endpoint.

Mapped: system messages to ``systemInstruction``; ``assistant`` to role ``model``;
``temperature``, ``max_tokens`` (``maxOutputTokens``), ``top_p`` (``topP``), ``seed`` and
``stop`` (``stopSequences``) into ``generationConfig``; structured output to
``responseMimeType: application/json`` plus ``responseJsonSchema`` when a schema is given.
Thought parts of thinking models are not part of the answer, but their tokens are billed
as completion tokens. A safety block (``promptFeedback.blockReason``, or a candidate
finished for ``SAFETY`` and its kin) is a ProviderError, never an empty answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from yarl import URL

from moa.providers.base import ChatCall, Completion, Provider, elapsed_ms, json_output
from moa.providers.failures import Failures
from moa.providers.shapes import (
    as_count,
    as_list,
    as_object,
    as_text,
    optional_text,
    parse_json,
)
from moa.providers.transport import Upstream
from moa.types import TokenUsage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
SSE = {"alt": "sse"}


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One GenerateContentResponse: its text, usage (if reported) and finish reason."""

    text: str
    usage: TokenUsage | None
    finish: str | None
    blocked: str | None  # the prompt's block reason


class GeminiProvider(Provider):
    def __init__(
        self, name: str, *, api_key: str, base_url: str | None, connect_timeout_s: float
    ) -> None:
        self.name = name
        base_url = base_url or DEFAULT_BASE_URL
        self._base = str(URL(base_url.rstrip("/")))  # percent-encoded once, here
        self._failures = Failures(name, api_key)
        self._http = Upstream(
            self._failures,
            base_url=base_url,
            headers={"x-goog-api-key": api_key},
            connect_timeout_s=connect_timeout_s,
            retry_after=_retry_delay,
        )

    def _body(self, call: ChatCall) -> dict[str, Any]:
        system = call.system_prompt()
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in call.messages
            if m.role != "system"
        ]
        body: dict[str, Any] = {"contents": contents, "generationConfig": _config(call)}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def _url(self, call: ChatCall, method: str) -> URL:
        """The model's endpoint; ``encoded=True``: sent exactly as built."""
        return URL(f"{self._base}/models/{quote(call.model, safe='')}:{method}", encoded=True)

    async def complete(self, call: ChatCall) -> Completion:
        started = time.perf_counter()
        url = self._url(call, "generateContent")
        async with self._http.reply(call, url, self._body(call)) as response:
            raw = await response.read()
            chunk = _parse(parse_json(raw, "the reply"))
        self._check_blocks(call.model, chunk)
        if chunk.finish is None and not chunk.text:
            raise self._failures.bad_response(call.model, "the reply has no candidates")
        usage = chunk.usage or TokenUsage()
        return Completion(chunk.text, usage, elapsed_ms(started), _finish(chunk.finish))

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        parts: list[str] = []
        usage, finish = TokenUsage(), None
        url = self._url(call, "streamGenerateContent")
        async with self._http.reply(call, url, self._body(call), params=SSE) as response:
            async for data in self._http.events(call.model, response):
                payload = parse_json(data, "a stream event")
                if isinstance(payload, dict) and "error" in payload:
                    raise self._failures.mid_stream(call.model, data)
                chunk = _parse(payload)
                self._check_blocks(call.model, chunk)
                usage, finish = chunk.usage or usage, chunk.finish or finish
                if chunk.text:
                    parts.append(chunk.text)
                    yield chunk.text
        if finish is None:
            raise self._failures.cut_short(call.model)
        yield Completion("".join(parts), usage, elapsed_ms(started), _finish(finish))

    def _check_blocks(self, model: str, chunk: _Chunk) -> None:
        if chunk.blocked is not None:
            raise self._failures.blocked(model, "prompt", chunk.blocked)
        if chunk.finish in BLOCKED:
            raise self._failures.blocked(model, "answer", chunk.finish)

    async def aclose(self) -> None:
        await self._http.aclose()


def _config(call: ChatCall) -> dict[str, Any]:
    config: dict[str, Any] = {
        "temperature": call.temperature,
        "maxOutputTokens": call.max_tokens,
        "topP": call.top_p,
        "seed": call.seed,
        "stopSequences": list(call.stop) if call.stop else None,
    }
    wanted = json_output(call.response_format)
    if wanted is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = wanted.schema
    return {key: value for key, value in config.items() if value is not None}


def _parse(data: object) -> _Chunk:
    """One GenerateContentResponse (a whole reply or one stream event)."""
    reply = as_object(data, "the reply")
    feedback = as_object(reply.get("promptFeedback") or {}, "promptFeedback")
    blocked = optional_text(feedback.get("blockReason"), "blockReason")
    candidates = as_list(reply.get("candidates"), "candidates")
    text, finish = "", None
    if candidates:
        candidate = as_object(candidates[0], "a candidate")
        content = as_object(candidate.get("content") or {}, "a candidate's content")
        for raw in as_list(content.get("parts"), "parts"):
            part = as_object(raw, "a part")
            if not part.get("thought"):
                text += as_text(part.get("text"), "a part's text")
        finish = optional_text(candidate.get("finishReason"), "finishReason")
    return _Chunk(text, _usage(reply.get("usageMetadata")), finish, blocked)


def _usage(value: object) -> TokenUsage | None:
    if value is None:
        return None
    meta = as_object(value, "usageMetadata")
    completion = sum(
        as_count(meta.get(key), key) for key in ("candidatesTokenCount", "thoughtsTokenCount")
    )
    prompt = as_count(meta.get("promptTokenCount"), "promptTokenCount")
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion)


def _finish(reason: str | None) -> str | None:
    """Gemini's finish reason in OpenAI's words: ``length`` when cut, else ``stop``."""
    if reason is None:
        return None
    return "length" if reason == "MAX_TOKENS" else "stop"


def _retry_delay(body: bytes) -> float | None:
    """Google's RetryInfo detail (``"retryDelay": "17s"``); None when absent or unreadable,
    since the status alone still says what failed."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s") and detail.get("@type") == RETRY_INFO:
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None
