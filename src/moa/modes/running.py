"""What every mode shares around its own work: its providers made ready, its calls under
one ``Sources`` (timeouts, usage, source events), its deadline, and its events as one
stream whose consumer can stop it (which cancels every call)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from pydantic import BaseModel

from moa.errors import RequestFailed
from moa.runtime import Runtime
from moa.sources import Sources
from moa.strategies.base import SourcePlan
from moa.streaming import event_stream
from moa.types import Conversation, Event, SourceSpec


def each_model(models: Sequence[str], request: Conversation) -> list[SourcePlan]:
    """One plan per model named, each asked the request's messages as they are."""
    messages = tuple(request.messages)
    return [
        SourcePlan(i, SourceSpec(model=model), messages, request.temperature)
        for i, model in enumerate(models)
    ]


async def run_mode(
    work: Callable[[Sources], Awaitable[BaseModel]],
    runtime: Runtime,
    models: Sequence[str],
    timeout_s: float | None,
) -> AsyncIterator[Event | BaseModel]:
    """Run ``work`` with the request's ``Sources``; yield its events, then its answer."""
    await runtime.prepare_models(list(models))

    async def produce(emit: Callable[[Event | BaseModel], None]) -> None:
        sources = Sources(runtime, emit)
        try:
            async with asyncio.timeout(timeout_s):
                emit(await work(sources))
        except TimeoutError:
            message = f"the request passed its deadline of {timeout_s:g} s"
            raise RequestFailed(message, code="timeout") from None

    async for event in event_stream(produce):
        yield event
