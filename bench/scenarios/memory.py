"""Question 4: server memory per in-flight streaming blend.

The sources stall (the upstream holds every call open until the caller hangs up), so
blends stay in flight for as long as we like. Streams are opened in waves of ``WAVE``
(a burst of 1,000 at once makes SQLite's write lock time out and some admissions fail
with 500, which README reports separately); RSS is read once every stream has its
response headers *and* the upstream has received every source call (polled, not
slept), i.e. with all the per-blend state the server holds before an answer arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from bench import procfs
from bench.control import SOURCES, Upstream
from bench.load import Clients, rounds
from bench.plan import Plan
from bench.scenarios.common import blend_body, blend_call
from bench.servers import Lab

WAVE = 100
OPEN_TIMEOUT_S = 120.0


class _Streams:
    """``count`` held-open streaming blends; ``outcomes`` counts statuses and errors."""

    def __init__(self, lab: Lab, count: int) -> None:
        self._lab = lab
        limits = httpx.Limits(max_connections=count + 16, max_keepalive_connections=16)
        self._client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(OPEN_TIMEOUT_S))
        self.release = asyncio.Event()
        self.outcomes: Counter[str] = Counter()
        self.tasks: list[asyncio.Task[None]] = []
        self._settled = asyncio.Semaphore(0)  # one release per stream with an outcome

    async def _hold(self) -> None:
        url = f"{self._lab.moa_url}/api/v1/blend"
        headers = {"Authorization": f"Bearer {self._lab.key}"}
        try:
            async with self._client.stream(
                "POST", url, json=blend_body("consensus"), headers=headers
            ) as response:
                self.outcomes[str(response.status_code)] += 1
                self._settled.release()
                await self.release.wait()
        except httpx.HTTPError as exc:
            self.outcomes[type(exc).__name__] += 1
            self._settled.release()

    async def open(self, count: int, timeout_s: float) -> bool:
        """Open in waves, each once the previous one has its headers; False on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                for start in range(0, count, WAVE):
                    wave = min(WAVE, count - start)
                    self.tasks += [asyncio.create_task(self._hold()) for _ in range(wave)]
                    for _ in range(wave):
                        await self._settled.acquire()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.release.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 60)
        await self._client.aclose()


async def _warm(lab: Lab) -> None:
    """A few answered blends first, so lazily imported modules and the provider clients
    count as idle memory, not as per-blend memory."""
    clients = Clients(8)
    try:
        await rounds(8, 2, blend_call(clients, lab, "consensus"))
    finally:
        await clients.aclose()


async def run(lab: Lab, plan: Plan) -> dict[str, Any]:
    server = await asyncio.to_thread(lab.moa, 1)
    up = Upstream(lab.upstream_url)
    streams = _Streams(lab, plan.inflight)
    try:
        await up.reset()
        await _warm(lab)
        await up.reset()  # count only the stalled blends' calls below
        for model in SOURCES:
            await up.script(model, stall=True)
        await asyncio.sleep(1.0)  # let the server settle
        pids = server.pids()
        idle, idle_fds = procfs.rss_bytes(pids), procfs.open_fds(pids)
        started = time.monotonic()
        all_open = await streams.open(plan.inflight, OPEN_TIMEOUT_S)
        left = max(1.0, started + OPEN_TIMEOUT_S - time.monotonic())
        admitted = int(streams.outcomes["200"])  # a refused blend makes no source calls
        calls = await up.wait_for_requests(admitted * len(SOURCES), left, every_s=1.0)
        open_s = time.monotonic() - started
        loaded, loaded_fds = procfs.rss_bytes(pids), procfs.open_fds(pids)
        await streams.close()
        hung_up = await up.wait_for_hangups(30.0) == 0
        after = procfs.rss_bytes(pids)
    finally:
        if not streams.release.is_set():
            await streams.close()
        await up.aclose()
    per_blend = (loaded - idle) / plan.inflight
    print(f"  memory: {per_blend / 1024:.1f} KiB per in-flight blend ({open_s:.1f} s to open)")
    return {
        "inflight": plan.inflight,
        "all_opened_in_time": all_open,
        "outcomes": dict(streams.outcomes),
        "upstream_calls_open": calls,
        "seconds_to_open_all": round(open_s, 2),
        "rss_idle_bytes": idle,
        "rss_loaded_bytes": loaded,
        "rss_after_release_bytes": after,
        "bytes_per_inflight_blend": round(per_blend),
        "fds_idle": idle_fds,
        "fds_loaded": loaded_fds,
        "upstream_saw_every_hangup": hung_up,
        "server_processes": len(pids),
    }
