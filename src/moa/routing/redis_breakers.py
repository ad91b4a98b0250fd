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

# KEYS: the circuit, its trial, the tenants of its failure streak. ARGV: threshold, now,
# ttl, this failure's tenant ("" for none: the CLI's or the Python API's one user), the
# tenants needed. Counting, judging and opening are one script: atomic across processes.
_RECORD_FAILURE = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('SADD', KEYS[3], ARGV[4])
local proven = redis.call('SISMEMBER', KEYS[3], '') == 1
  or redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[5])
if (failures >= tonumber(ARGV[1]) and proven) or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
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
        keys: int = 2,
    ) -> None:
        self._keys = keys
        self._redis = redis.from_url(url)
        self._clock = clock
        self._threshold = failures
        self._cooldown_s = cooldown_s
        self._prefix = prefix
        self._record_failure = self._redis.register_script(_RECORD_FAILURE)

    def _names(self, model: str) -> tuple[str, str, str]:
        """The circuit, its half-open trial, and the tenants of its failure streak."""
        base = f"{self._prefix}{model}"
        return base, f"{base}:trial", f"{base}:tenants"

    async def state(self, model: str) -> BreakerState:
        opened_at = await self._redis.hget(self._names(model)[0], "opened_at")
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
        return bool(await self._redis.set(self._names(model)[1], "1", nx=True, ex=trial_ttl))

    async def record_success(self, model: str) -> None:
        await self._redis.delete(*self._names(model))

    async def release(self, model: str) -> None:
        await self._redis.delete(self._names(model)[1])

    async def record_failure(self, model: str, tenant: str | None = None) -> None:
        ttl = max(60, int(self._cooldown_s * 10))
        args: list[str | int | float] = [
            self._threshold,
            self._clock(),
            ttl,
            tenant or "",
            self._keys,
        ]
        await self._record_failure(keys=list(self._names(model)), args=args)

    async def aclose(self) -> None:
        await self._redis.aclose()
