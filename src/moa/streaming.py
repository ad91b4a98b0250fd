"""Turn work that emits events from many tasks into one async iterator of those events.

The work runs in its own task and pushes onto a queue; the iterator drains it. When the
consumer stops early (client gone, ``aclose``), the work task is cancelled and awaited, so
every upstream call under it is cancelled too and nothing is left running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def event_stream(work: Callable[[Callable[[T], None]], Awaitable[None]]) -> AsyncIterator[T]:
    """Yield what ``work(emit)`` emits, in order; re-raise its exception at the end."""
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def run() -> None:
        try:
            await work(queue.put_nowait)
        finally:
            queue.put_nowait(_END)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not _END:
            yield item  # type: ignore[misc]
        await task
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
