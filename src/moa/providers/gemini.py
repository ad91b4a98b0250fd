"""Google Gemini's generateContent REST API over httpx.

Gemini's SDK is a large dependency for two endpoints, so this adapter speaks the documented
JSON directly: ``models/{m}:generateContent`` and ``:streamGenerateContent?alt=sse``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from moa.errors import ProviderError
from moa.providers.base import ChatCall, Completion, Provider, elapsed_ms
from moa.providers.retry_after import parse_retry_after
from moa.types import TokenUsage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class GeminiProvider(Provider):
    def __init__(
        self, name: str, *, api_key: str, base_url: str | None, connect_timeout_s: float
    ) -> None:
        self.name = name
        self._connect_timeout_s = connect_timeout_s
        self._client = httpx.AsyncClient(
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            headers={"x-goog-api-key": api_key},
        )

    def _body(self, call: ChatCall) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in call.messages if m.role == "system")
        contents = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in call.messages
            if m.role != "system"
        ]
        config: dict[str, Any] = {}
        if call.temperature is not None:
            config["temperature"] = call.temperature
        if call.max_tokens is not None:
            config["maxOutputTokens"] = call.max_tokens
        body: dict[str, Any] = {"contents": contents, "generationConfig": config}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def _timeout(self, call: ChatCall) -> httpx.Timeout:
        return httpx.Timeout(call.timeout_s, connect=min(self._connect_timeout_s, call.timeout_s))

    async def complete(self, call: ChatCall) -> Completion:
        started = time.perf_counter()
        with _mapped_errors(call.model):
            response = await self._client.post(
                f"/models/{call.model}:generateContent",
                json=self._body(call),
                timeout=self._timeout(call),
            )
            _raise_for_status(response, call.model)
            data = response.json()
        text, usage = _parse(data)
        return Completion(text=text, usage=usage, latency_ms=elapsed_ms(started))

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        parts: list[str] = []
        usage = TokenUsage()
        with _mapped_errors(call.model):
            async with self._client.stream(
                "POST",
                f"/models/{call.model}:streamGenerateContent",
                params={"alt": "sse"},
                json=self._body(call),
                timeout=self._timeout(call),
            ) as response:
                if response.is_error:
                    await response.aread()
                    _raise_for_status(response, call.model)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    text, chunk_usage = _parse(json.loads(line[5:]))
                    if chunk_usage.prompt_tokens or chunk_usage.completion_tokens:
                        usage = chunk_usage
                    if text:
                        parts.append(text)
                        yield text
        yield Completion(text="".join(parts), usage=usage, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        await self._client.aclose()


def _parse(data: dict[str, Any]) -> tuple[str, TokenUsage]:
    candidates = data.get("candidates") or [{}]
    parts = candidates[0].get("content", {}).get("parts", [])
    text = "".join(p.get("text", "") for p in parts)
    meta = data.get("usageMetadata", {})
    usage = TokenUsage(
        prompt_tokens=int(meta.get("promptTokenCount", 0)),
        completion_tokens=int(meta.get("candidatesTokenCount", 0)),
    )
    return text, usage


def _raise_for_status(response: httpx.Response, model: str) -> None:
    if response.is_error:
        try:
            message = response.json().get("error", {}).get("message", response.text)
        except ValueError:
            message = response.text
        raise ProviderError(
            str(message)[:500],
            model=model,
            status=response.status_code,
            retry_after=parse_retry_after(response.headers),
        )


@contextmanager
def _mapped_errors(model: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ProviderError("timed out waiting for the upstream", model=model) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"connection failed: {exc!r}", model=model) from exc
    except (json.JSONDecodeError, AttributeError, KeyError) as exc:
        raise ProviderError(f"bad response from upstream: {exc}", model=model) from exc
