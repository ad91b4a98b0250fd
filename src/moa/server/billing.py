"""Credits for one request: reserved before the work, settled exactly once after it.

Settlement charges the full price when an answer was produced, nothing when nothing was
(total failure), and, when the client left or the deadline passed mid-way, the share of
the planned upstream calls that had finished. Every request leaves one usage record.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field

import anyio

from moa.server.drain import Drain
from moa.server.errors import ApiError
from moa.server.metrics import Metrics
from moa.store import ApiKey, Reservation, Store, UsageRecord
from moa.types import Usage


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
    started: float = field(default_factory=time.perf_counter)
    completed_calls: int = 0
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
        """The share of the price for the calls that finished before the work stopped."""
        if not self.completed_calls or not self.planned_calls:
            return 0
        share = min(1.0, self.completed_calls / self.planned_calls)
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
        latency_ms = int((time.perf_counter() - self.started) * 1000)
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
        self.metrics.observe_request(self.route, self.strategy, status, latency_ms / 1000)
        self.metrics.credits_charged.inc(self.charged)
        return self.remaining
