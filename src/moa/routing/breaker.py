"""Circuit breakers, one per model: closed -> open after N consecutive failures -> half-open
after a cooldown, when exactly one trial call may pass -> closed on its success, open again
on its failure. An open model is skipped at once instead of costing a timeout.

Every key shares a model's breaker, so one key alone must not open it: on a server the
streak's failures must come from at least ``keys`` different tenants (API keys), whatever
one key's requests do (ask for answers too long to finish in time, say). Calls with no
tenant (the CLI, the Python API: one user) open it by count alone.

``MemoryBreakers`` keeps state in this process; ``moa.routing.redis_breakers`` shares it
between server processes. Both implement ``Breakers``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

BreakerState = Literal["closed", "open", "half_open"]


class Breakers(Protocol):
    async def allow(self, model: str) -> bool:
        """May a call to ``model`` go out now? (Claims the half-open trial if it is free.)"""
        ...

    async def record_success(self, model: str) -> None: ...

    async def record_failure(self, model: str, tenant: str | None = None) -> None: ...

    async def release(self, model: str) -> None:
        """A call ended without a verdict on the upstream (cancelled, or failed for the
        request's own reasons): free the half-open trial it may hold, judge nothing."""
        ...

    async def state(self, model: str) -> BreakerState: ...

    async def aclose(self) -> None: ...


def enough_tenants(tenants: set[str | None], needed: int) -> bool:
    """Do a streak's failures come from enough tenants to judge a model every key shares?"""
    return None in tenants or len(tenants) >= needed


@dataclass
class _Circuit:
    failures: int = 0
    tenants: set[str | None] = field(default_factory=set)
    opened_at: float | None = None
    trial_in_flight: bool = False


class MemoryBreakers:
    def __init__(
        self,
        failures: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        keys: int = 2,
    ) -> None:
        self._threshold = failures
        self._keys = keys
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}

    async def aclose(self) -> None:
        """Nothing to release: the state lives in this process."""

    def _circuit(self, model: str) -> _Circuit:
        return self._circuits.setdefault(model, _Circuit())

    async def state(self, model: str) -> BreakerState:
        circuit = self._circuits.get(model)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self._clock() - circuit.opened_at >= self._cooldown_s:
            return "half_open"
        return "open"

    async def allow(self, model: str) -> bool:
        state = await self.state(model)
        if state == "closed":
            return True
        if state == "open":
            return False
        circuit = self._circuit(model)
        if circuit.trial_in_flight:
            return False
        circuit.trial_in_flight = True
        return True

    async def record_success(self, model: str) -> None:
        self._circuits.pop(model, None)

    async def release(self, model: str) -> None:
        circuit = self._circuits.get(model)
        if circuit is not None:
            circuit.trial_in_flight = False

    async def record_failure(self, model: str, tenant: str | None = None) -> None:
        circuit = self._circuit(model)
        circuit.failures += 1
        circuit.tenants.add(tenant)
        proven = enough_tenants(circuit.tenants, self._keys)
        if circuit.trial_in_flight or (circuit.failures >= self._threshold and proven):
            circuit.opened_at = self._clock()
            circuit.trial_in_flight = False
