"""OpenAI Chat Completions over aiohttp: the hot path of nearly every blend.

One adapter serves every OpenAI-compatible server (OpenAI, OpenRouter, Together, Groq,
DeepSeek, Mistral, Ollama, vLLM, llama.cpp server and any ``kind = "openai"`` in moa.toml).
It speaks the documented JSON itself, as the Gemini adapter does, rather than through the
official SDK: the SDK's typed requests and replies and its transport's pool bookkeeping
cost 1.1-1.4 ms of CPU per call on the bench's machine, aiohttp with plain JSON 0.2 ms,
and the SDK's transport added ~3 ms of latency per call at concurrency 1 (bench/README).
Retries, deadlines and failover belong to ``moa.routing``; nothing here retries, except:

Structured output: ``response_format`` is passed as given. A server that answers a
``json_schema`` request with 400 or 422 (older OpenAI-compatible servers only know
``json_object``) gets the same call once more with ``{"type": "json_object"}``; nothing is
remembered between calls.

Timeouts: ``connect_timeout_s`` to open a connection, and the call's ``timeout_s`` for the
wait for a pooled connection and for each read (a stream may last longer, as long as it
keeps sending), as the SDK's were. aiohttp's errors are translated at this boundary into
the transport errors ``Failures`` maps for every protocol (``raise ... from``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx2

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
from moa.types import TokenUsage

JSON_OBJECT = {"type": "json_object"}
SCHEMA_REFUSALS = frozenset({400, 422})
BLOCKED = "content_filter"
MAX_CONNECTIONS = 1000  # per provider, as the SDK's pool allowed; the engine caps in-flight
MAX_EVENT_BYTES = 1024 * 1024  # one server-sent event; a longer one is a bad response
DONE = b"[DONE]"


class OpenAICompatProvider(Provider):
    def __init__(self, name: str, *, base_url: str, api_key: str, connect_timeout_s: float) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._proxy = _env_proxy(base_url)  # read once here, off the event loop
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._connect_timeout_s = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._failures = Failures(name, api_key)

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
        with self._mapped_errors(call.model):
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
        with self._mapped_errors(call.model):
            async with self._reply(call, body) as response:
                if response.content_type != "text/event-stream":
                    detail = "not a usable event stream"
                    raise self._failures.bad_response(call.model, detail, response.content_type)
                # Read to the end of the body, past [DONE]: a connection released before
                # its body ends cannot go back to the pool, and every stream would reconnect.
                async for data in _event_data(response):
                    if data.strip() == DONE:
                        continue
                    chunk = as_object(parse_json(data, "a stream event"), "a stream chunk")
                    if chunk.get("error"):
                        raise self._failures.mid_stream(call.model, data.decode(errors="replace"))
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
        """The upstream's 2xx reply, released on exit (its connection pooled if read to the
        end, closed if not); an error status raises; a refused ``json_schema`` is asked
        once more as ``json_object``."""
        response = await self._send(call, body)
        try:
            asked = body.get("response_format") or {}
            if response.status in SCHEMA_REFUSALS and asked.get("type") == "json_schema":
                what = f"HTTP {response.status} to json_schema, retrying with json_object"
                self._failures.note(call.model, what, await _error_text(response))
                response.release()
                response = await self._send(call, body | {"response_format": JSON_OBJECT})
            if response.status >= 400:
                raise self._failures.status(
                    call.model, response.status, await _error_text(response), response.headers
                )
            yield response
        finally:
            response.release()

    async def _send(self, call: ChatCall, body: dict[str, Any]) -> aiohttp.ClientResponse:
        # ensure_ascii=False, then UTF-8: a lone surrogate fails here, before anything is
        # sent (UnicodeEncodeError, mapped to the request's own fault).
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=call.timeout_s,
            sock_connect=min(self._connect_timeout_s, call.timeout_s),
            sock_read=call.timeout_s,
        )
        return await self._open_session().post(
            self._url, data=data, headers=self._headers, timeout=timeout, proxy=self._proxy
        )

    def _open_session(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use: aiohttp binds it to the running loop,
        and providers are built off the loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    @contextmanager
    def _mapped_errors(self, model: str) -> Iterator[None]:
        """aiohttp's errors as the transport errors Failures maps; anything else is a bug."""
        with self._failures.transport(model):
            try:
                yield
            except aiohttp.ClientConnectorError as exc:
                raise httpx2.ConnectError(str(exc)) from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
                raise httpx2.RemoteProtocolError(str(exc)) from exc
            except TimeoutError as exc:  # aiohttp's read and connect timeouts
                raise httpx2.ReadTimeout(str(exc) or "timed out") from exc
            except aiohttp.ClientError as exc:
                raise httpx2.TransportError(str(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _env_proxy(base_url: str) -> str | None:
    """HTTP(S)_PROXY and NO_PROXY for this base URL, as the SDK's client honoured them."""
    parts = urlsplit(base_url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def _error_text(response: aiohttp.ClientResponse) -> str:
    return (await response.read()).decode(errors="replace")


async def _event_data(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event, until the body ends (other fields and
    comments are skipped; a multi-line data field is joined with newlines)."""
    pending = b""
    data: list[bytes] = []
    async for block in response.content.iter_any():
        pending += block
        *lines, pending = pending.split(b"\n")
        if len(pending) > MAX_EVENT_BYTES:
            raise BadShape("a stream event is too large")
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    yield b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)


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
