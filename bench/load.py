"""The load generator: one blend as a timed HTTP exchange, run by N concurrent clients.

Two shapes: ``rounds`` (N clients, each doing R blends back to back: a latency sample
per blend) and ``closed_loop`` (N clients for a fixed duration: throughput at saturation).
Both are bounded in count and time. SSE lines are classified by prefix rather than parsed:
moa writes ``"event"`` first, and skipping JSON parsing keeps the generator's own CPU, which
competes with the server for the same 2 cores, as small as it can be.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

CALL_TIMEOUT_S = 120.0
_CHUNK = 'data: {"event":"chunk"'
_ERROR = 'data: {"event":"error"'
_DONE = "data: [DONE]"


@dataclass(frozen=True, slots=True)
class Timing:
    """One blend, seconds from sending the request: first event, first synthesis chunk
    (None if there was none) and the end of the answer; ``error`` says why it failed."""

    first_event: float
    first_chunk: float | None
    total: float
    error: str | None = None


Call = Callable[[], Awaitable[Timing]]


class Clients:
    """Round-robin over small ``httpx.AsyncClient`` pools instead of one large one.

    httpcore 1.x's pool does O(connections^2) work (and one readability probe per idle
    socket) on every request start and end; one pool of 200 connections made the load
    generator burn ~13 ms of CPU per streaming blend, stealing the cores it measures.
    Pools of ``per_pool`` connections keep that cost flat."""

    def __init__(self, connections: int, per_pool: int = 8) -> None:
        size = per_pool + 2  # a little slack so a pool never queues a request
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        count = max(1, -(-connections // per_pool))
        self._pools = [
            httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(CALL_TIMEOUT_S))
            for _ in range(count)
        ]
        self._turn = itertools.cycle(self._pools)

    def next(self) -> httpx.AsyncClient:
        return next(self._turn)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


async def sse_blend(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any
) -> Timing:
    """POST a streaming blend and time its events until ``data: [DONE]``."""
    started = time.perf_counter()
    first_event: float | None = None
    first_chunk: float | None = None
    error: str | None = None
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return _failed(started, f"HTTP {response.status_code}")
        async for line in response.aiter_lines():
            if not line:
                continue
            now = time.perf_counter() - started
            if first_event is None:
                first_event = now
            if first_chunk is None and line.startswith(_CHUNK):
                first_chunk = now
            elif line.startswith(_ERROR):
                error = line[6:200]
            elif line == _DONE:
                break
    total = time.perf_counter() - started
    return Timing(first_event or total, first_chunk, total, error)


async def json_blend(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: Any
) -> Timing:
    """POST a non-streaming blend; the whole answer is the first (and only) event."""
    started = time.perf_counter()
    response = await client.post(url, json=body, headers=headers)
    total = time.perf_counter() - started
    if response.status_code != 200:
        return _failed(started, f"HTTP {response.status_code}: {response.text[:200]}")
    return Timing(total, total, total)


def _failed(started: float, error: str) -> Timing:
    elapsed = time.perf_counter() - started
    return Timing(elapsed, None, elapsed, error)


async def _guarded(call: Call) -> Timing:
    """One call under a deadline; any failure is a failed sample, not a crashed run."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            return await call()
    except Exception as exc:
        return _failed(started, f"{type(exc).__name__}: {exc}"[:200])


async def rounds(clients: int, per_client: int, call: Call, spread_s: float = 0.0) -> list[Timing]:
    """``clients`` concurrent clients, each doing ``1 + per_client`` calls back to back;
    each client's first call is a discarded warm-up.

    Client i starts ``i * spread_s / clients`` seconds late. With ``spread_s`` = one blend's
    duration, arrivals are uniform and about ``clients`` blends are in flight at any time:
    a steady load. Without it every client would fire at the same instant, for ever (the
    upstream's latencies are fixed), and each sample would measure a thundering herd."""

    async def client_loop(index: int) -> list[Timing]:
        await asyncio.sleep(index * spread_s / clients)
        return [await _guarded(call) for _ in range(1 + per_client)][1:]

    batches = await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return [timing for batch in batches for timing in batch]


@dataclass(frozen=True, slots=True)
class LoopResult:
    elapsed_s: float
    timings: list[Timing]

    @property
    def ok(self) -> list[Timing]:
        return [t for t in self.timings if t.error is None]

    @property
    def errors(self) -> list[str]:
        return [t.error for t in self.timings if t.error is not None]


async def closed_loop(clients: int, duration_s: float, call: Call) -> LoopResult:
    """``clients`` concurrent clients calling back to back until ``duration_s`` passes.

    No call is started after the deadline; the calls still in flight then are awaited and
    counted, and the window is stretched to the end of the last one, so completed / elapsed
    is an honest rate (never calls counted without their time)."""
    started = time.perf_counter()
    stop_at = started + duration_s
    timings: list[Timing] = []

    async def client_loop() -> None:
        while time.perf_counter() < stop_at:
            timings.append(await _guarded(call))

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return LoopResult(time.perf_counter() - started, timings)
