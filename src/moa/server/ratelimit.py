"""Rate limits per API key and per client IP: a per-minute window plus a burst window of
10 s, on the ``limits`` package. In memory by default; in Redis when ``redis_url`` is set,
so every server process counts against the same windows."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as redis
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from moa.config import ServerConfig
from moa.server.errors import ApiError

BURST_SECONDS = 10


@dataclass(frozen=True, slots=True)
class _Rule:
    scope: str
    item: RateLimitItem


class RateLimits:
    def __init__(self, config: ServerConfig) -> None:
        self._pool: redis.ConnectionPool | None = None
        self._storage: Storage
        if config.redis_url:
            # Our own pool, so the server can close its connections when it stops.
            self._pool = redis.ConnectionPool.from_url(config.redis_url)
            self._storage = RedisStorage(
                _async_uri(config.redis_url),
                implementation="redispy",
                connection_pool=self._pool,  # type: ignore[arg-type]  # limits types **options narrowly
            )
        else:
            self._storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        burst = RateLimitItemPerSecond(config.rate_limit_burst, BURST_SECONDS)
        self._key_rules = (
            _Rule("key", RateLimitItemPerMinute(config.rate_limit_per_minute)),
            _Rule("key", burst),
        )
        ip_minute = config.ip_rate_limit_per_minute or config.rate_limit_per_minute
        self._ip_rules = (_Rule("ip", RateLimitItemPerMinute(ip_minute)), _Rule("ip", burst))

    async def check_ip(self, ip: str) -> None:
        """Refuse (429) an address that used up its window of refused attempts, before its
        key is even looked up; a good key's requests count against the key, not here, so
        tenants behind one address (a NAT, a proxy) do not share a window."""
        who = address_window(ip)
        for rule in self._ip_rules:
            if not await self._limiter.test(rule.item, rule.scope, who):
                stats = await self._limiter.get_window_stats(rule.item, rule.scope, who)
                reset_in = max(1, math.ceil(stats.reset_time - time.time()))
                window = f"{rule.item.amount} requests per {_window(rule.item)}"
                raise ApiError(
                    429,
                    "rate_limited",
                    f"rate limit of {window} without a valid key for this IP address "
                    f"exceeded; retry in {reset_in} s",
                    {
                        "X-RateLimit-Limit": str(rule.item.amount),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(reset_in),
                        "Retry-After": str(reset_in),
                    },
                )

    async def hit_ip(self, ip: str) -> dict[str, str]:
        """Count one refused attempt (no key, or not a valid one) from this address."""
        return await self._hit(self._ip_rules, address_window(ip), "this IP address")

    async def hit_key(self, key_id: str) -> dict[str, str]:
        return await self._hit(self._key_rules, key_id, "this API key")

    async def _hit(self, rules: tuple[_Rule, ...], who: str, label: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        for rule in rules:
            allowed = await self._limiter.hit(rule.item, rule.scope, who)
            stats = await self._limiter.get_window_stats(rule.item, rule.scope, who)
            reset_in = max(0, math.ceil(stats.reset_time - time.time()))
            if not headers or stats.remaining < int(headers["X-RateLimit-Remaining"]):
                headers = {
                    "X-RateLimit-Limit": str(rule.item.amount),
                    "X-RateLimit-Remaining": str(stats.remaining),
                    "X-RateLimit-Reset": str(reset_in),
                }
            if not allowed:
                window = f"{rule.item.amount} requests per {_window(rule.item)}"
                raise ApiError(
                    429,
                    "rate_limited",
                    f"rate limit of {window} for {label} exceeded; retry in {max(1, reset_in)} s",
                    {**headers, "Retry-After": str(max(1, reset_in))},
                )
        return headers

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def address_window(ip: str) -> str:
    """Whose window an address counts in: itself, or its /64 for IPv6 (an IPv6 subscriber
    holds a whole /64, 2^64 addresses to spread guesses over)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return ip


def _window(item: RateLimitItem) -> str:
    seconds = item.get_expiry()
    return "minute" if seconds == 60 else f"{seconds} s"


def _async_uri(url: str) -> str:
    return url if url.startswith("async+") else f"async+{url}"


class KeyInflight:
    """Concurrent paid requests per key, in this process: one key holding many slow
    streams must not take the provider slots and the workers every other key shares."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, key_id: str) -> Callable[[], Awaitable[None]]:
        """Take a slot or refuse with 429; returns the (idempotent) release."""
        held = self._held.get(key_id, 0)
        if held >= self._limit:
            raise ApiError(
                429,
                "rate_limited",
                f"this API key already has {held} requests in flight, the most this server "
                "allows per key ([server] key_inflight); retry when one finishes",
                {"Retry-After": "1"},
            )
        self._held[key_id] = held + 1
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                left = self._held[key_id] - 1
                if left:
                    self._held[key_id] = left
                else:
                    del self._held[key_id]

        return release
