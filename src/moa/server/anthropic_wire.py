"""Anthropic's Messages wire shapes for moa's answers: the ``message`` object, the stream's
events, the error body, and where a stop sequence cuts the text.

The renderers take moa's final event (a blend's DoneEvent or one model's ChatAnswer) and
never build prompts or touch credits; the route does that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from moa.errors import http_status
from moa.server.openai_wire import finish_reason
from moa.types import ChatAnswer, ChunkEvent, DeltaEvent, DoneEvent, ErrorEvent, SourceEvent

Answered = DoneEvent | ChatAnswer  # a blend's final event, or one model's answer

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Anthropic's error object; moa's own code rides along as ``error.code``."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message, "code": code}}


class StopScanner:
    """Cuts text at the first stop sequence, even one split across streamed pieces, holding
    back only the tail that could still become one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.hit: str | None = None

    def feed(self, text: str) -> str:
        if self.hit is not None:
            return ""
        self.pending += text
        found = [(i, s) for s in self.stops if (i := self.pending.find(s)) != -1]
        if found:
            index, self.hit = min(found, key=lambda f: (f[0], -len(f[1])))
            shown, self.pending = self.pending[:index], ""
            return shown
        keep = max(
            (n for s in self.stops for n in range(1, len(s)) if self.pending.endswith(s[:n])),
            default=0,
        )
        shown = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(shown) :]
        return shown

    def flush(self) -> str:
        shown, self.pending = ("" if self.hit is not None else self.pending), ""
        return shown


@dataclass(frozen=True)
class Reply:
    """What the route knows of the message before the work starts."""

    id: str
    model: str
    max_tokens: int
    stop_sequences: Sequence[str]


def stop_reason(reply: Reply, final: Answered, scanner: StopScanner) -> str:
    """``stop_sequence`` if one cut the text; ``max_tokens`` if the answering call was cut
    at its budget (the finish reason its upstream gave); else ``end_turn``."""
    if scanner.hit is not None:
        return "stop_sequence"
    return "max_tokens" if finish_reason(final) == "length" else "end_turn"


def _usage(final: Answered) -> dict[str, int]:
    usage = final.usage
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def _summary(final: Answered) -> dict[str, Any]:
    return final.model_dump(mode="json", exclude={"event"})


def message(reply: Reply, final: Answered, content: str) -> dict[str, Any]:
    """The non-streaming answer: an Anthropic ``message`` with moa's summary under ``moa``."""
    scanner = StopScanner(reply.stop_sequences)
    whole = final.content if isinstance(final, ChatAnswer) else content  # a blend's was streamed
    text = scanner.feed(whole) + scanner.flush()
    return {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason(reply, final, scanner),
        "stop_sequence": scanner.hit,
        "usage": _usage(final),
        "moa": _summary(final),
    }


def _event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def _delta(text: str) -> bytes:
    delta = {"type": "text_delta", "text": text}
    return _event("content_block_delta", index=0, delta=delta)


async def stream(reply: Reply, events: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    """Anthropic's stream: message_start, content_block_start, ping, text deltas (a ping as
    each source finishes, so bytes flow before the first token), content_block_stop,
    message_delta with the stop reason and usage, message_stop; or an ``error`` event."""
    start: dict[str, Any] = {"id": reply.id, "type": "message", "role": "assistant"}
    start |= {"model": reply.model, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {"input_tokens": 0, "output_tokens": 0}  # known at the end: message_delta
    yield _event("message_start", message=start)
    yield _event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    yield _event("ping")
    scanner = StopScanner(reply.stop_sequences)
    async for event in events:
        if isinstance(event, ChunkEvent | DeltaEvent):
            if text := scanner.feed(event.content):
                yield _delta(text)
        elif isinstance(event, SourceEvent):
            yield _event("ping")
        elif isinstance(event, ErrorEvent):
            status = http_status(event.code)
            yield _event("error", error=error_body(status, event.code, event.message)["error"])
            return
        elif isinstance(event, DoneEvent | ChatAnswer):
            if text := scanner.flush():
                yield _delta(text)
            yield _event("content_block_stop", index=0)
            reason = stop_reason(reply, event, scanner)
            delta = {"stop_reason": reason, "stop_sequence": scanner.hit}
            yield _event("message_delta", delta=delta, usage=_usage(event), moa=_summary(event))
            yield _event("message_stop")
            return
