"""Run a request's event stream under its Charge: count finished calls as they happen,
settle on the final event (so the done event carries the real balance), refund on total
failure, and settle the finished share if the client leaves, the work is cancelled or the
server's drain ends it (SIGTERM)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from moa.errors import MoaError
from moa.server.billing import Charge
from moa.server.drain import MESSAGE, SHUTTING_DOWN, ShuttingDown
from moa.types import ChatAnswer, CompareAnswer, DoneEvent, ErrorEvent, JudgeAnswer, SourceEvent

Final = DoneEvent | ChatAnswer | CompareAnswer | JudgeAnswer
FINAL_TYPES = (DoneEvent, ChatAnswer, CompareAnswer, JudgeAnswer)


async def metered(events: AsyncIterator[Any], charge: Charge) -> AsyncIterator[BaseModel]:
    """The same events, with credits filled into the final one; errors become ErrorEvent."""
    status = "cancelled"
    async with contextlib.AsyncExitStack() as closing:
        if charge.drain is not None:
            events = await closing.enter_async_context(
                contextlib.aclosing(charge.drain.guarded(events))
            )
        try:
            async for event in events:
                if isinstance(event, SourceEvent):
                    _count(event, charge)
                if isinstance(event, ErrorEvent):
                    status = event.code
                    await charge.settle(_charge_for_error(event.code, charge), status)
                    yield event
                    return
                if isinstance(event, FINAL_TYPES):
                    status = "ok"
                    remaining = await charge.settle(charge.cost, status, event.usage)
                    yield event.model_copy(
                        update={"credits_charged": charge.charged, "credits_remaining": remaining}
                    )
                    return
                yield event
        except MoaError as exc:
            status = exc.code
            await charge.settle(_charge_for_error(exc.code, charge), status)
            yield ErrorEvent(code=exc.code, message=exc.message)
        except ShuttingDown:
            status = SHUTTING_DOWN
            await charge.settle(charge.partial_charge(), status)
            yield ErrorEvent(code=SHUTTING_DOWN, message=MESSAGE)
        finally:
            if not charge.settled:
                await charge.settle(charge.partial_charge(), status)


def _count(event: SourceEvent, charge: Charge) -> None:
    if event.status == "complete":
        charge.completed_calls += 1
    elif event.status == "failed":
        charge.metrics.source_failed(event.model)


def _charge_for_error(code: str, charge: Charge) -> int:
    """Nothing produced, nothing charged: failures and invalid requests are refunded; a
    timeout pays only for the calls that had finished."""
    return charge.partial_charge() if code == "timeout" else 0


def is_final(event: BaseModel) -> bool:
    return isinstance(event, FINAL_TYPES)
