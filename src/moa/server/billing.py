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

from moa.providers.base import elapsed_ms
from moa.server.errors import ApiError
from moa.server.metrics import Metrics
from moa.store import ApiKey, Store, UsageRecord
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
    started: float = field(default_factory=time.perf_counter)
    completed_calls: int = 0
    remaining: int | None = None
    settled: bool = False
    charged: int = 0

    async def reserve(self) -> None:
        remaining = await self.store.reserve(self.key.id, self.cost, request_id=self.request_id)
        if remaining is None:
            balance = await self.store.balance(self.key.id)
            raise ApiError(
                402,
                "insufficient_credits",
                f"this request costs {self.cost} credits and the key has {balance}; "
                "top up with `moa keys top-up`",
            )
        self.remaining = remaining

    def partial_charge(self) -> int:
        """The share of the price for the calls that finished before the work stopped."""
        if not self.completed_calls or not self.planned_calls:
            return 0
        share = min(1.0, self.completed_calls / self.planned_calls)
        return min(self.cost, math.ceil(self.cost * share))

    async def settle(self, charged: int, status: str, usage: Usage | None = None) -> int:
        """Give back what was not charged and record the request; safe to call twice and
        shielded from cancellation, so a client that hangs up cannot skip it."""
        if self.settled:
            return self.remaining or 0
        self.settled = True
        self.charged = charged
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
            self.remaining = await self.store.settle(
                self.key.id, self.cost, charged, request_id=self.request_id, record=record
            )
        self.metrics.observe_request(self.route, self.strategy, status, latency_ms / 1000)
        self.metrics.credits_charged.inc(charged)
        return self.remaining or 0
