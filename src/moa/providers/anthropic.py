"""Anthropic Messages (``POST {base_url}/v1/messages``), spoken as documented JSON.

Sent over ``transport.Upstream`` (aiohttp) like every protocol, with the headers the
official SDK sends (``x-api-key``, ``anthropic-version``); the reply is read as plain JSON,
so every shape is checked here and a reply of the wrong shape is a bad response.

Anthropic differs from OpenAI in ways absorbed here, so callers only build OpenAI-style
calls: the system prompt is a separate field; ``max_tokens`` is required; ``temperature``
is 0..1 (clamped); current models refuse ``temperature`` together with ``top_p``, so an
explicit ``top_p`` is sent alone; ``stop`` is ``stop_sequences``; there is no ``seed``.
Structured output is a forced tool call: one tool whose ``input_schema`` is the requested
schema (any object for ``json_object``), ``tool_choice`` that tool, and the tool's input
returned as the answer's JSON text (streamed as its ``input_json_delta`` pieces).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from moa.providers.base import ChatCall, Completion, Provider, elapsed_ms, json_output
from moa.providers.failures import Failures
from moa.providers.shapes import (
    BadShape,
    as_count,
    as_list,
    as_object,
    as_text,
    optional_text,
    parse_json,
)
from moa.providers.transport import Upstream
from moa.types import TokenUsage

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
LENGTH = frozenset({"max_tokens", "model_context_window_exceeded"})
REFUSAL = "refusal"


class AnthropicProvider(Provider):
    def __init__(
        self, name: str, *, api_key: str, base_url: str | None, connect_timeout_s: float
    ) -> None:
        self.name = name
        base_url = base_url or DEFAULT_BASE_URL
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._failures = Failures(name, api_key)
        self._http = Upstream(
            self._failures,
            base_url=base_url,
            headers={
                "x-api-key": api_key,
                "anthropic-version": API_VERSION,
                "Accept": "application/json",
            },
            connect_timeout_s=connect_timeout_s,
        )

    def _body(self, call: ChatCall) -> dict[str, Any]:
        system = call.system_prompt()
        body: dict[str, Any] = {
            "model": call.model,
            "messages": [
                {"role": m.role, "content": m.content} for m in call.messages if m.role != "system"
            ],
            "max_tokens": call.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            body["system"] = system
        if call.top_p is not None:
            body["top_p"] = call.top_p
        elif call.temperature is not None:
            body["temperature"] = min(max(call.temperature, 0.0), 1.0)
        if call.stop:
            body["stop_sequences"] = list(call.stop)
        return body | _forced_tool(call)

    async def complete(self, call: ChatCall) -> Completion:
        started = time.perf_counter()
        async with self._http.reply(call, self._url, self._body(call)) as response:
            raw = await response.read()
            text, usage, stop = _parse_message(parse_json(raw, "the reply"))
        if stop == REFUSAL:
            raise self._failures.blocked(call.model, "answer")
        return Completion(text, usage, elapsed_ms(started), _finish(stop))

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        reading = _MessageStream()
        body = {**self._body(call), "stream": True}
        async with self._http.reply(call, self._url, body) as response:
            async for data in self._http.events(call.model, response):
                payload = as_object(parse_json(data, "a stream event"), "a stream event")
                if payload.get("type") == "error":
                    raise self._failures.mid_stream(call.model, data)
                delta = reading.read(payload)
                if delta:
                    yield delta
        if not reading.ended:
            raise self._failures.cut_short(call.model)
        if reading.stop == REFUSAL:
            raise self._failures.blocked(call.model, "answer")
        text = "".join(reading.parts)
        yield Completion(text, reading.usage(), elapsed_ms(started), _finish(reading.stop))

    async def aclose(self) -> None:
        await self._http.aclose()


def _forced_tool(call: ChatCall) -> dict[str, Any]:
    """The body fields that make the model answer through one tool whose input is the JSON."""
    wanted = json_output(call.response_format)
    if wanted is None:
        return {}
    name = wanted.name if TOOL_NAME.fullmatch(wanted.name) else "json_reply"
    schema = wanted.schema or {"type": "object"}
    tool = {"name": name, "description": "Answer with this JSON.", "input_schema": schema}
    return {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}


def _parse_message(data: object) -> tuple[str, TokenUsage, str | None]:
    """Text, usage and stop reason of a whole ``message``; a tool call's input is its text."""
    message = as_object(data, "the reply")
    if message.get("type") != "message":
        raise BadShape("the reply is not a message object")
    parts = []
    for raw in as_list(message.get("content"), "content"):
        block = as_object(raw, "a content block")
        if block.get("type") == "text":
            parts.append(as_text(block.get("text"), "a text block"))
        elif block.get("type") == "tool_use":
            parts.append(json.dumps(as_object(block.get("input"), "a tool call's input")))
    usage = as_object(message.get("usage"), "usage")
    tokens = TokenUsage(
        prompt_tokens=_input_tokens(usage),
        completion_tokens=as_count(usage.get("output_tokens"), "output_tokens"),
    )
    return "".join(parts), tokens, optional_text(message.get("stop_reason"), "stop_reason")


class _MessageStream:
    """Reads Anthropic's stream events: text and tool-input deltas, usage, the stop reason."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.stop: str | None = None
        self.ended = False

    def read(self, event: dict[str, Any]) -> str:
        """Take one event; return the text it adds (empty for most events)."""
        kind = event.get("type")
        if kind == "message_start":
            usage = as_object(as_object(event.get("message"), "a message").get("usage"), "usage")
            self.prompt_tokens = _input_tokens(usage)
            self.completion_tokens = as_count(usage.get("output_tokens"), "output_tokens")
        elif kind == "content_block_delta":
            return self._delta(as_object(event.get("delta"), "a delta"))
        elif kind == "message_delta":
            delta = as_object(event.get("delta"), "a delta")
            self.stop = optional_text(delta.get("stop_reason"), "stop_reason") or self.stop
            usage = as_object(event.get("usage") or {}, "usage")
            if usage.get("output_tokens") is not None:  # cumulative, per Anthropic
                self.completion_tokens = as_count(usage["output_tokens"], "output_tokens")
        elif kind == "message_stop":
            self.ended = True
        return ""

    def _delta(self, delta: dict[str, Any]) -> str:
        if delta.get("type") == "text_delta":
            text = as_text(delta.get("text"), "a text delta")
        elif delta.get("type") == "input_json_delta":
            text = as_text(delta.get("partial_json"), "a tool input delta")
        else:
            return ""  # thinking and signature deltas are not part of the answer
        self.parts.append(text)
        return text

    def usage(self) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens
        )


def _input_tokens(usage: dict[str, Any]) -> int:
    """Every prompt token, cached or not: cache reads and writes are input too."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(as_count(usage.get(key), key) for key in keys)


def _finish(stop: str | None) -> str | None:
    """Anthropic's stop reason in OpenAI's words: ``length`` when cut, else ``stop``."""
    if stop is None:
        return None
    return "length" if stop in LENGTH else "stop"
