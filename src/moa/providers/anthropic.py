"""Anthropic Messages over the official ``anthropic`` SDK (retries off, timeouts explicit).

Anthropic takes the system prompt as a separate field and requires ``max_tokens``; both
differences are absorbed here so callers only ever build OpenAI-style messages.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from moa.errors import ProviderError
from moa.providers.base import ChatCall, Completion, Provider, elapsed_ms
from moa.providers.retry_after import parse_retry_after
from moa.types import TokenUsage

DEFAULT_MAX_TOKENS = 4096


class AnthropicProvider(Provider):
    def __init__(
        self, name: str, *, api_key: str, base_url: str | None, connect_timeout_s: float
    ) -> None:
        self.name = name
        self._connect_timeout_s = connect_timeout_s
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)

    def _params(self, call: ChatCall) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in call.messages if m.role == "system")
        params: dict[str, Any] = {
            "model": call.model,
            "messages": [
                {"role": m.role, "content": m.content} for m in call.messages if m.role != "system"
            ],
            "max_tokens": call.max_tokens or DEFAULT_MAX_TOKENS,
            "timeout": anthropic.Timeout(
                call.timeout_s, connect=min(self._connect_timeout_s, call.timeout_s)
            ),
        }
        if system:
            params["system"] = system
        if call.temperature is not None:
            params["temperature"] = min(call.temperature, 1.0)  # Anthropic's range is 0..1
        return params

    async def complete(self, call: ChatCall) -> Completion:
        started = time.perf_counter()
        with _mapped_errors(call.model):
            message = await self._client.messages.create(**self._params(call))
        text = "".join(getattr(block, "text", "") for block in message.content)
        usage = TokenUsage(
            prompt_tokens=message.usage.input_tokens, completion_tokens=message.usage.output_tokens
        )
        return Completion(text=text, usage=usage, latency_ms=elapsed_ms(started))

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        with _mapped_errors(call.model):
            async with self._client.messages.stream(**self._params(call)) as stream:
                async for text in stream.text_stream:
                    yield text
                message = await stream.get_final_message()
        text = "".join(getattr(block, "text", "") for block in message.content)
        usage = TokenUsage(
            prompt_tokens=message.usage.input_tokens, completion_tokens=message.usage.output_tokens
        )
        yield Completion(text=text, usage=usage, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        await self._client.close()


@contextmanager
def _mapped_errors(model: str) -> Iterator[None]:
    try:
        yield
    except anthropic.APIStatusError as exc:
        raise ProviderError(
            exc.message,
            model=model,
            status=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers),
        ) from exc
    except anthropic.APITimeoutError as exc:
        raise ProviderError("timed out waiting for the upstream", model=model) from exc
    except anthropic.APIError as exc:
        raise ProviderError(f"connection failed: {exc}", model=model) from exc
