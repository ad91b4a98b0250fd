"""Concurrency slots every call takes before it goes out: one of moa's global in-flight
cap, one of its provider's cap, and, on a server, one of its tenant's share of that
provider. Bursts queue instead of piling up on an upstream, and one key (one request of
self_moa with eight samples, say) can hold at most its share of a provider's slots, so
other keys' calls still find one free.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager


class _Share:
    """How many of one provider's slots each tenant holds, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: self._held.get(tenant, 0) < self.limit)
            self._held[tenant] = self._held.get(tenant, 0) + 1
        try:
            yield
        finally:
            async with self._changed:
                left = self._held[tenant] - 1
                if left:
                    self._held[tenant] = left
                else:
                    del self._held[tenant]
                self._changed.notify_all()


class NoSlot(Exception):
    """The deadline passed while the call waited for its slots."""


class Slots:
    def __init__(
        self, total: int, per_provider: int, caps: dict[str, int], tenant_share: float
    ) -> None:
        self._total = asyncio.Semaphore(total)
        self._per_provider = per_provider
        self._caps = caps
        self._tenant_share = tenant_share
        self._providers: dict[str, asyncio.Semaphore] = {}
        self._shares: dict[str, _Share] = {}

    def _provider(self, name: str) -> tuple[asyncio.Semaphore, _Share]:
        slots = self._providers.get(name)
        if slots is None:
            cap = self._caps.get(name, self._per_provider)
            slots = self._providers[name] = asyncio.Semaphore(cap)
            self._shares[name] = _Share(max(1, math.ceil(cap * self._tenant_share)))
        return slots, self._shares[name]

    @asynccontextmanager
    async def hold(self, provider: str, tenant: str | None, deadline: float) -> AsyncIterator[None]:
        """Take the slots a call to ``provider`` needs, waiting at most until ``deadline``
        (else ``NoSlot``); they are given back when the block ends."""
        slots, share = self._provider(provider)
        async with AsyncExitStack() as held:
            try:
                async with asyncio.timeout_at(deadline):
                    if tenant is not None:
                        await held.enter_async_context(share.hold(tenant))
                    await held.enter_async_context(self._total)
                    await held.enter_async_context(slots)
            except TimeoutError as exc:
                raise NoSlot from exc
            yield
