"""Readiness, as distinct from liveness: ``/healthz`` says the process answers (restart it
if not); ``/healthz/ready`` says it can serve paid requests now: the database answers a
trivial query and Redis (when ``redis_url`` is set) answers PING. A load balancer or
Kubernetes stops sending traffic while it is 503, without restarting anything.

``local_model`` says whether the embedded model's contexts are loaded (``moa serve`` loads
them before it serves). It is information, not a condition: a model not loaded yet loads
on its first call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as redis

from moa.server.state import AppState

CHECK_TIMEOUT_S = 2.0
Check = Callable[[], Awaitable[object]]


async def readiness(state: AppState) -> tuple[bool, dict[str, str]]:
    """(ready, {dependency: "ok" | "down: <reason>" | "not configured"})."""
    configured: dict[str, Check | None] = {
        "database": state.store.ping,
        "redis": _redis_ping(state.settings.server.redis_url),
    }
    checks = {name: check for name, check in configured.items() if check is not None}
    results = await asyncio.gather(*(_probe(check) for check in checks.values()))
    report = dict.fromkeys(configured, "not configured") | dict(zip(checks, results, strict=True))
    report["local_model"] = state.runtime.local_model_status()
    return all(r == "ok" for r in results), report


async def _probe(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await check()
    except TimeoutError:
        return f"down: no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # any failure means not ready; say which, never the URL
        return f"down: {type(exc).__name__}"
    return "ok"


def _redis_ping(url: str) -> Check | None:
    if not url:
        return None

    async def ping() -> None:
        client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_S)
        try:
            await client.ping()
        finally:
            await client.aclose()

    return ping
