"""Turn a metered event stream into an HTTP response: SSE when the body asked to stream,
else one JSON object. A non-streaming request whose client hangs up is cancelled too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from moa.errors import http_status
from moa.server.billing import FINAL_TYPES, Final
from moa.server.errors import error_response
from moa.server.sse import sse_response
from moa.types import ChunkEvent, DoneEvent, ErrorEvent

T = TypeVar("T")


async def respond(
    request: Request,
    events: AsyncIterator[BaseModel],
    stream: bool,
    render: Callable[[Final, str], dict[str, object]] | None = None,
) -> Response:
    if stream:
        return sse_response(events)
    final = await until_disconnect(request, collect(events))
    if final is None:
        return error_response(499, "client_closed", "the client closed the connection")
    if isinstance(final, ErrorEvent):
        return error_response(http_status(final.code), final.code, final.message)
    event, content = final
    body = render(event, content) if render else _default_body(event, content)
    return JSONResponse(body)


def _default_body(event: Final, content: str) -> dict[str, object]:
    if isinstance(event, DoneEvent):
        return event.answer(content).model_dump(mode="json")
    return event.model_dump(mode="json")


async def collect(
    events: AsyncIterator[BaseModel],
) -> ErrorEvent | tuple[Final, str]:
    parts: list[str] = []
    try:
        async for event in events:
            if isinstance(event, ChunkEvent):
                parts.append(event.content)
            elif isinstance(event, ErrorEvent):
                return event
            elif isinstance(event, FINAL_TYPES):
                return event, "".join(parts)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return ErrorEvent(code="internal_error", message="the work ended without an answer")


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """Run ``work``; if the client disconnects first, cancel it and return None."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)
    return None if task.cancelled() else task.result()
