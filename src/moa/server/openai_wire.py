"""moa's answers in OpenAI's Chat Completions shapes: the ``chat.completion`` object and
the ``chat.completion.chunk`` stream, for blends and for single models alike.

The stream sends SSE comment lines while sources run (so clients and proxies see bytes
before the first token), the text as deltas, a finish chunk whose ``finish_reason`` is
``length`` when the answer was cut at ``max_tokens``, and, with
``stream_options.include_usage``, a last chunk with ``choices: []`` carrying the usage, as
OpenAI's own stream does.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from moa.types import (
    ChatAnswer,
    ChunkEvent,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    RouteEvent,
    SourceEvent,
)

Final = DoneEvent | ChatAnswer


@dataclass(frozen=True)
class Reply:
    """Who is answering: the id every chunk carries and the ``model`` the client asked."""

    request_id: str
    model: str
    include_usage: bool = False
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.request_id}"


def finish_reason(final: Final) -> str:
    reason = final.synthesis.finish_reason if isinstance(final, DoneEvent) else final.finish_reason
    return "length" if reason == "length" else "stop"


def usage(final: Final) -> dict[str, int]:
    return {
        "prompt_tokens": final.usage.prompt_tokens,
        "completion_tokens": final.usage.completion_tokens,
        "total_tokens": final.usage.prompt_tokens + final.usage.completion_tokens,
    }


def summary(final: Final) -> dict[str, Any]:
    """moa's own account of the answer (sources, credits, ...), under ``moa``."""
    return final.model_dump(mode="json", exclude={"event", "content"})


def completion(reply: Reply, final: Final, content: str) -> dict[str, Any]:
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason(final),
            }
        ],
        "usage": usage(final),
        "moa": summary(final),
    }


def _frame(value: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(value, separators=(",", ":")).encode() + b"\n\n"


def _chunk(reply: Reply, choices: list[dict[str, Any]], **extra: Any) -> bytes:
    head = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created}
    return _frame({**head, "model": reply.model, "choices": choices, **extra})


def _delta(reply: Reply, delta: dict[str, str], finish: str | None = None, **extra: Any) -> bytes:
    return _chunk(reply, [{"index": 0, "delta": delta, "finish_reason": finish}], **extra)


def _progress(event: SourceEvent | RouteEvent) -> bytes:
    """An SSE comment: ignored by every client, seen by every proxy."""
    if isinstance(event, SourceEvent):
        text = f"source {event.model} {event.status}"
    else:
        text = f"route {event.source} -> {event.model} {event.status}"
    return f": {text}\n\n".encode()


async def chunks(reply: Reply, events: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    yield _delta(reply, {"role": "assistant", "content": ""})
    async for event in events:
        if isinstance(event, ChunkEvent | DeltaEvent):
            yield _delta(reply, {"content": event.content})
        elif isinstance(event, SourceEvent | RouteEvent):
            yield _progress(event)
        elif isinstance(event, DoneEvent | ChatAnswer):
            yield _delta(reply, {}, finish_reason(event), moa=summary(event))
            if reply.include_usage:
                yield _chunk(reply, [], usage=usage(event), moa=summary(event))
        elif isinstance(event, ErrorEvent):
            yield _frame({"error": {"code": event.code, "message": event.message}})
    yield b"data: [DONE]\n\n"
