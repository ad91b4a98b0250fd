"""Small helpers for tests: collect a blend's events, build requests."""

from __future__ import annotations

from typing import Any

from moa.engine import stream_blend
from moa.runtime import Runtime
from moa.types import BlendRequest, ChunkEvent, DoneEvent, ErrorEvent, Event


def request(
    *models: str | dict[str, Any], prompt: str = "What is the capital of France?", **fields: Any
) -> BlendRequest:
    return BlendRequest.model_validate(
        {"models": list(models), "messages": [{"role": "user", "content": prompt}], **fields}
    )


async def collect(req: BlendRequest, runtime: Runtime) -> list[Event]:
    return [event async for event in stream_blend(req, runtime)]


def done_of(events: list[Event]) -> DoneEvent:
    done = [e for e in events if isinstance(e, DoneEvent)]
    assert done, f"no done event in {[e.event for e in events]}: {events[-1]}"
    return done[0]


def error_of(events: list[Event]) -> ErrorEvent:
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors, f"no error event in {[e.event for e in events]}"
    return errors[0]


def content_of(events: list[Event]) -> str:
    return "".join(e.content for e in events if isinstance(e, ChunkEvent))


def system_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m["content"]) for m in messages if m["role"] == "system")
