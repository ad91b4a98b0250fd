"""Credits for one request: reserved before the work, settled exactly once after it.

Settlement charges the full price when an answer was produced, nothing when nothing was
(total failure), and, when the client left, the deadline passed or the server's drain
ended the request mid-way, the share of the planned upstream calls that had finished.
Every request leaves one usage record.

:class:`Charge` holds one request's credits; :func:`metered` runs the request's event
stream under it: it counts finished calls as they happen and settles on the final event,
so the done event carries the real balance.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import BaseModel

from moa.errors import MoaError
from moa.providers.base import elapsed_ms
from moa.server.drain import MESSAGE, SHUTTING_DOWN, Drain, ShuttingDown
from moa.server.errors import ApiError
from moa.server.metrics import Metrics
from moa.store import ApiKey, Reservation, Store, UsageRecord
from moa.types import (
    ChatAnswer,
    ChunkEvent,
    CompareAnswer,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    JudgeAnswer,
    SourceEvent,
    Usage,
)


@dataclass
class Charge:
    store: Store
    metrics: Metrics
    key: ApiKey
    route: str
    cost: int
    planned_calls: int
    strategy: str | None = None
    models: list[str] = field(default_factory=list)
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex[:24]}")
    drain: Drain | None = None
    # Told the id of a key with a budget once spending was recorded against it, so this
    # process's auth cache reads the key afresh and its budget check sees the spending.
    spent: Callable[[str], None] = lambda key_id: None
    started: float = field(default_factory=time.perf_counter)
    completed_calls: int = 0
    # Calls whose text already reached the client but that had not finished: paid for too.
    delivering: set[object] = field(default_factory=set)
    reservation: Reservation | None = None
    remaining: int | None = None
    charged: int = 0
    settled: bool = False

    async def reserve(self) -> None:
        reservation = await self.store.reserve(
            self.key.id,
            self.cost,
            request_id=self.request_id,
            route=self.route,
            strategy=self.strategy,
            models=self.models,
        )
        if reservation is None:
            balance = await self.store.balance(self.key.id)
            raise ApiError(
                402,
                "insufficient_credits",
                f"this request costs {self.cost} credits and the key has {balance}; "
                "top up with `moa keys top-up`",
            )
        self.reservation = reservation
        self.remaining = reservation.remaining

    def partial_charge(self) -> int:
        """The share of the price for the calls that finished (or whose text the client
        already had) before the work stopped."""
        finished = self.completed_calls + len(self.delivering)
        if not finished or not self.planned_calls:
            return 0
        share = min(1.0, finished / self.planned_calls)
        return min(self.cost, math.ceil(self.cost * share))

    async def settle(self, charged: int, status: str, usage: Usage | None = None) -> int:
        """Give back what was not charged and record the request; safe to call twice and
        shielded from cancellation, so a client that hangs up cannot skip it. ``charged``
        afterwards says what was taken: less than asked only if this process stalled past
        its lease and the key could not cover it (see ``moa.store.reservations``)."""
        if self.settled or self.reservation is None:
            return self.remaining or 0
        self.settled = True
        usage = usage or Usage()
        latency_ms = elapsed_ms(self.started)
        record = UsageRecord(
            request_id=self.request_id,
            key_id=self.key.id,
            route=self.route,
            strategy=self.strategy,
            models=self.models,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
            credits_charged=charged,
            latency_ms=latency_ms,
            status=status,
        )
        with anyio.CancelScope(shield=True):
            settlement = await self.store.settle(self.reservation, charged, record=record)
        self.charged, self.remaining = settlement.charged, settlement.remaining
        if usage.cost_usd and self.key.budget_usd is not None:
            self.spent(self.key.id)
        self.metrics.observe_request(self.route, self.strategy, status, latency_ms / 1000)
        self.metrics.credits_charged.inc(self.charged)
        return self.remaining


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
                _count(event, charge)
                if isinstance(event, ErrorEvent):
                    status = event.code
                    failure = event.exception
                    await charge.settle(_charge_for_error(failure, charge), status, failure.usage)
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
            await charge.settle(_charge_for_error(exc, charge), status, exc.usage)
            yield ErrorEvent.of(exc)
        except ShuttingDown:
            status = SHUTTING_DOWN
            await charge.settle(charge.partial_charge(), status)
            yield ErrorEvent(code=SHUTTING_DOWN, message=MESSAGE)
        finally:
            if not charge.settled:
                await charge.settle(charge.partial_charge(), status)


def _count(event: object, charge: Charge) -> None:
    """Follow the calls as they end, and those whose text reached the client already."""
    if isinstance(event, DeltaEvent):
        charge.delivering.add(("source", event.index))
    elif isinstance(event, ChunkEvent):
        charge.delivering.add("synthesis")
    elif isinstance(event, SourceEvent) and event.status == "complete":
        charge.completed_calls += 1
        charge.delivering.discard(("source", event.index))
    elif isinstance(event, SourceEvent) and event.status == "failed":
        charge.metrics.source_failed(event.model)


def _charge_for_error(failure: MoaError, charge: Charge) -> int:
    """The work that finished is paid for, whatever stopped the rest (a synthesizer that
    failed after every source answered, a deadline): nothing finished, nothing charged. A
    bug in moa is never the client's to pay."""
    return 0 if failure.code == "internal_error" else charge.partial_charge()


def is_final(event: BaseModel) -> bool:
    return isinstance(event, FINAL_TYPES)
