"""Server-Sent Events for moa's own routes: ``data: {json}`` per event, each with an
``event`` field, then ``data: [DONE]``. Answer objects go out as the ``done`` event."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from moa.server.billing import is_final

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def encode(event: BaseModel) -> bytes:
    if is_final(event) and "event" not in type(event).model_fields:
        payload = '{"event":"done",' + event.model_dump_json()[1:]
    else:
        payload = event.model_dump_json(exclude_none=False)
    return b"data: " + payload.encode() + b"\n\n"


async def _frames(events: AsyncIterator[BaseModel]) -> AsyncIterator[bytes]:
    async for event in events:
        yield encode(event)
    yield b"data: [DONE]\n\n"


class EventStreamResponse(StreamingResponse):
    """A streaming response that notices a client hanging up even while nothing is being
    written (Starlette only notices on the next write under ASGI 2.4), so a stalled blend
    is cancelled at once instead of at its next event."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def stream() -> None:
                with contextlib.suppress(OSError):  # the client left mid-write
                    await self.stream_response(send)
                group.cancel_scope.cancel()

            group.start_soon(stream)
            await self.listen_for_disconnect(receive)
            group.cancel_scope.cancel()


def sse_response(
    events: AsyncIterator[BaseModel], headers: dict[str, str] | None = None
) -> StreamingResponse:
    return EventStreamResponse(
        _frames(events), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )
