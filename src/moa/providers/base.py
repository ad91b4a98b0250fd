"""The one small interface every wire protocol implements.

A provider turns a ``ChatCall`` into text and token usage, either whole (``complete``) or as
deltas (``stream``). It knows nothing of strategies, retries or breakers: those wrap it in
``moa.routing``. Every upstream failure leaves a provider as ``moa.errors.ProviderError``
(built in ``failures``); a bug in moa propagates as itself, so it is never retried.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from moa.types import Message, TokenUsage


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One chat request to one model, in the provider's own model name.

    ``response_format`` is OpenAI's shape (``{"type": "json_object"}`` or
    ``{"type": "json_schema", "json_schema": {"name", "schema", ...}}``); each provider
    maps it to its own structured-output mechanism. ``stop``, ``seed`` and ``top_p`` pass
    through where the provider supports them.
    """

    model: str
    messages: Sequence[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    top_p: float | None = None

    def system_prompt(self) -> str:
        """The system messages joined by a blank line, for the protocols that take one
        system field (Anthropic, Gemini); empty when there are none."""
        return "\n\n".join(m.content for m in self.messages if m.role == "system")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """A call before the route picks its model: what to send, whichever model on the
    route answers. ``timeout_s`` covers the slot wait and every retry on one model;
    ``shortened`` says the request asked for less than the configured timeout, so timing
    out says nothing about the upstream; ``requested`` says the request set the timeout
    itself (else a local model's call gets ``[engine] local_timeout_s`` instead). ``to``
    addresses it to one model as a ChatCall."""

    messages: Sequence[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    shortened: bool = False
    requested: bool = False
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    top_p: float | None = None

    def to(self, model: str, timeout_s: float) -> ChatCall:
        """This call for ``model`` (the provider's own name), with what is left of it."""
        return ChatCall(
            model=model,
            messages=self.messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout_s=max(0.001, timeout_s),
            response_format=self.response_format,
            stop=self.stop,
            seed=self.seed,
            top_p=self.top_p,
        )


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished answer. ``finish_reason`` uses OpenAI's words: ``stop`` (the model ended,
    or hit a stop sequence), ``length`` (cut at ``max_tokens``), or what the server said;
    None when the provider cannot tell."""

    text: str
    usage: TokenUsage
    latency_ms: int
    finish_reason: str | None = None  # "stop", "length", ... as OpenAI names them
    model: str = ""  # the id as the request named it; the router fills it in


class Provider(ABC):
    """An async chat client for one provider (one base URL and key)."""

    name: str
    # In this process, on this machine's CPU (the embedded model): its calls get
    # ``[engine] local_timeout_s`` when the request sets no timeout of its own.
    runs_locally: bool = False

    @abstractmethod
    async def complete(self, call: ChatCall) -> Completion:
        """The whole answer at once."""

    @abstractmethod
    def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        """Text deltas as they arrive, then one final ``Completion`` with the usage."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most providers hold a client
        """Release sockets or model memory."""


@dataclass(frozen=True, slots=True)
class JsonOutput:
    """What a ``response_format`` asks for, read once for every adapter: JSON, and maybe
    a schema (with the name OpenAI's shape gives it)."""

    name: str
    schema: dict[str, Any] | None


def json_output(response_format: dict[str, Any] | None) -> JsonOutput | None:
    """None when the call asks for plain text (no ``response_format``, or type ``text``)."""
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return JsonOutput("json_reply", None)
    if kind != "json_schema":
        return None
    spec = (response_format or {}).get("json_schema") or {}
    name = spec.get("name")
    schema = spec.get("schema")
    return JsonOutput(
        name if isinstance(name, str) and name else "json_reply",
        schema if isinstance(schema, dict) else None,
    )


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def estimate_tokens(text: str) -> int:
    """A rough count for servers that report no usage: about four characters a token."""
    return max(1, len(text) // 4) if text else 0


def prompt_tokens_estimate(messages: Sequence[Message]) -> int:
    return sum(estimate_tokens(m.content) for m in messages)
