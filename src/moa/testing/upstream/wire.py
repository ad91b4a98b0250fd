"""One wire protocol of the scripted upstream: how a request reads and a reply looks.

The timing and failure script (latency, stalls, cuts, bad JSON, errors) is the same for
every protocol and lives in ``exchange``; a ``Wire`` only knows its protocol's shapes: how
to read a request into a ``RecordedRequest``, and how an error, a whole reply and each
stream event are written.
"""

from __future__ import annotations

import itertools
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from moa.testing.upstream.script import RecordedRequest

Finish = Literal["stop", "length", "blocked"]


@dataclass
class Reply:
    """One successful reply being written: its text as tokens and how it ends."""

    record: RecordedRequest
    tokens: list[str]
    finish: Finish
    blocked: Literal["prompt", "answer"] | None
    prompt_tokens: int
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.text.split())


class Wire(ABC):
    """A protocol's request and reply shapes."""

    name: ClassVar[Literal["openai", "anthropic", "gemini"]]
    id_prefix: ClassVar[str]
    done: ClassVar[bytes] = b""  # written after the last stream event (OpenAI's [DONE])
    retry_after_header: ClassVar[bool] = True  # Gemini says it in the error body instead
    _ids = itertools.count(1)

    def new_id(self) -> str:
        return f"{self.id_prefix}{next(self._ids)}"

    @abstractmethod
    def parse(
        self, payload: dict[str, Any], headers: dict[str, str], target: str
    ) -> RecordedRequest:
        """The request as recorded; ValueError (with the reason) for one the protocol refuses.
        ``target`` is the model named by the path, for protocols that put it there."""

    @abstractmethod
    def error(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        """The protocol's error body."""

    def answer_text(self, record: RecordedRequest, text: str) -> str:
        """The text as the protocol carries it (Anthropic's forced tool call: JSON)."""
        return text

    @abstractmethod
    def whole(self, reply: Reply) -> dict[str, Any]:
        """The non-streaming reply."""

    @abstractmethod
    def head(self, reply: Reply) -> list[dict[str, Any]]:
        """Stream events before the first token."""

    @abstractmethod
    def delta(self, reply: Reply, token: str) -> dict[str, Any]:
        """The stream event carrying one token."""

    @abstractmethod
    def tail(self, reply: Reply) -> list[dict[str, Any]]:
        """Stream events after the last token: finish reason, usage, end marker."""

    @abstractmethod
    def stream_error(self, message: str) -> dict[str, Any]:
        """The event a stream that fails midway ends with."""

    def frame(self, event: dict[str, Any]) -> bytes:
        """One server-sent event."""
        return b"data: " + dumps(event) + b"\n\n"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def number(payload: dict[str, Any], key: str, low: float, high: float) -> float | None:
    """An optional sampling parameter, refused (as real servers do) outside its range."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{key}: must be a number from {low:g} to {high:g}")
    return float(value)


def count(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key}: must be a positive integer")
    return value
