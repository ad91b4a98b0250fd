"""Circuit breakers kept in Redis, so every server process sees the same open circuits.

Same state machine as ``MemoryBreakers``. A failure is counted and the circuit opened in
one Lua script (atomic across processes); the half-open trial is a ``SET NX`` key, so
exactly one process wins the trial call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis.asyncio as redis

from moa.routing.breaker import BreakerState

_RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return failures
"""


class RedisBreakers:
    def __init__(
        self,
        url: str,
        *,
        failures: int = 3,
        cooldown_s: float = 30.0,
        prefix: str = "moa:breaker:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis.from_url(url)
        self._clock = clock
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._prefix = prefix
        self._record_failure = self._redis.register_script(_RECORD_FAILURE)

    def _keys(self, model: str) -> tuple[str, str]:
        return f"{self._prefix}{model}", f"{self._prefix}{model}:trial"

    async def state(self, model: str) -> BreakerState:
        opened_at = await self._redis.hget(self._keys(model)[0], "opened_at")
        if opened_at is None:
            return "closed"
        if self._clock() - float(opened_at) >= self._cooldown_s:
            return "half_open"
        return "open"

    async def allow(self, model: str) -> bool:
        state = await self.state(model)
        if state != "half_open":
            return state == "closed"
        trial_ttl = max(1, int(self._cooldown_s))
        return bool(await self._redis.set(self._keys(model)[1], "1", nx=True, ex=trial_ttl))

    async def record_success(self, model: str) -> None:
        await self._redis.delete(*self._keys(model))

    async def release(self, model: str) -> None:
        await self._redis.delete(self._keys(model)[1])

    async def record_failure(self, model: str) -> None:
        ttl = max(60, int(self._cooldown_s * 10))
        await self._record_failure(
            keys=list(self._keys(model)), args=[self._threshold, self._clock(), ttl]
        )

    async def aclose(self) -> None:
        await self._redis.aclose()
