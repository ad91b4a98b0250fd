"""OpenAI Chat Completions over the official ``openai`` SDK.

One adapter serves every OpenAI-compatible server (OpenAI, OpenRouter, Together, Groq,
DeepSeek, Mistral, Ollama, vLLM, llama.cpp server and any ``kind = "openai"`` in moa.toml).
The SDK's own retries are off (``max_retries=0``) and its timeouts explicit: retries,
deadlines and failover belong to ``moa.routing``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import openai

from moa.errors import ProviderError
from moa.providers.base import (
    ChatCall,
    Completion,
    Provider,
    elapsed_ms,
    estimate_tokens,
    prompt_tokens_estimate,
)
from moa.providers.retry_after import parse_retry_after
from moa.types import TokenUsage


class OpenAICompatProvider(Provider):
    def __init__(self, name: str, *, base_url: str, api_key: str, connect_timeout_s: float) -> None:
        self.name = name
        self._connect_timeout_s = connect_timeout_s
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)

    def _timeout(self, call: ChatCall) -> openai.Timeout:
        return openai.Timeout(call.timeout_s, connect=min(self._connect_timeout_s, call.timeout_s))

    def _params(self, call: ChatCall) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": call.model,
            "messages": [{"role": m.role, "content": m.content} for m in call.messages],
            "timeout": self._timeout(call),
        }
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.max_tokens is not None:
            params["max_tokens"] = call.max_tokens
        return params

    async def complete(self, call: ChatCall) -> Completion:
        """Post through the SDK (its auth, errors, timeouts) but read the reply as plain
        JSON: building the SDK's typed request and reply models cost a third of the CPU
        of every source call."""
        started = time.perf_counter()
        params = self._params(call)
        timeout = params.pop("timeout")
        with _mapped_errors(call.model):
            response = await self._client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body=params,
                options={"timeout": timeout},
            )
            text, usage = _parse_completion(json.loads(response.content))
        if usage is None:
            usage = TokenUsage(
                prompt_tokens=prompt_tokens_estimate(call.messages),
                completion_tokens=estimate_tokens(text),
            )
        return Completion(text=text, usage=usage, latency_ms=elapsed_ms(started))

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        """Stream through the SDK's transport and read the SSE lines as plain JSON: the
        SDK's typed chunk parsing cost 3.4 ms of CPU per synthesis against 1.3 ms."""
        started = time.perf_counter()
        parts: list[str] = []
        usage: TokenUsage | None = None
        finished = False
        params = self._params(call)
        timeout = params.pop("timeout")
        body = {**params, "stream": True, "stream_options": {"include_usage": True}}
        with _mapped_errors(call.model):
            response = await self._client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body=body,
                options={"timeout": timeout},
                stream=True,
            )
            try:
                async for line in response.aiter_lines():
                    chunk = _sse_json(line)
                    if chunk is None:
                        continue
                    usage = _chunk_usage(chunk) or usage
                    for choice in chunk.get("choices") or ():
                        finished = finished or choice.get("finish_reason") is not None
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            parts.append(delta)
                            yield delta
            finally:
                await response.aclose()
        text = "".join(parts)
        if not finished and usage is None:
            raise ProviderError("stream ended before the answer finished", model=call.model)
        if usage is None:
            usage = TokenUsage(
                prompt_tokens=prompt_tokens_estimate(call.messages),
                completion_tokens=estimate_tokens(text),
            )
        yield Completion(text=text, usage=usage, latency_ms=elapsed_ms(started))

    async def aclose(self) -> None:
        await self._client.close()


def _parse_completion(data: Any) -> tuple[str, TokenUsage | None]:
    """Text and usage of a ``chat.completion`` object; a shape error is a bad response."""
    try:
        choices = data["choices"]
        text = (choices[0]["message"].get("content") or "") if choices else ""
        usage = data.get("usage")
        if not usage:
            return str(text), None
        return str(text), TokenUsage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"the reply is not a chat.completion object: {exc!r}") from exc


def _sse_json(line: str) -> dict[str, Any] | None:
    """The JSON of one ``data:`` line; None for other lines and ``[DONE]``. An error sent
    mid-stream raises it."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    chunk = json.loads(data)
    if not isinstance(chunk, dict):
        raise ValueError("a stream chunk is not a JSON object")
    error = chunk.get("error")
    if error:
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        raise ProviderError(f"the upstream failed mid-stream: {message}")
    return chunk


def _chunk_usage(chunk: dict[str, Any]) -> TokenUsage | None:
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return None
    return TokenUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


@contextmanager
def _mapped_errors(model: str) -> Iterator[None]:
    """Translate SDK and transport errors into ProviderError, the one error above here."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise ProviderError(
            _status_message(exc),
            model=model,
            status=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers),
        ) from exc
    except openai.APITimeoutError as exc:
        raise ProviderError("timed out waiting for the upstream", model=model) from exc
    except openai.APIConnectionError as exc:
        raise ProviderError(f"connection failed: {exc}", model=model) from exc
    except (openai.APIError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ProviderError(f"bad response from upstream: {exc}", model=model) from exc
    except Exception as exc:
        if type(exc).__module__.startswith(("httpx", "httpcore", "h11")):
            raise ProviderError(f"connection failed: {exc!r}", model=model) from exc
        raise


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message
