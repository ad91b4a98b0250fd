"""Where a single blend's overhead goes (concurrency 1, consensus, streaming).

The upstream records when each call arrived and finished on CLOCK_MONOTONIC, which is
system-wide on Linux, so its timestamps line up with this process's ``time.monotonic()``.
That splits a blend's wall time into phases: before the first source call (admission:
auth, rate limits, credit reservation, engine start), the sources, the gap until the
synthesizer is called, the synthesizer, and the tail after it finished (last chunks,
settlement, the done event). The same split for the direct script shows which phases
are moa's own.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.control import SOURCES, SYNTH, Upstream
from bench.direct import Direct
from bench.ideal import ANSWER, synth_content
from bench.load import Call, Clients, Timing
from bench.plan import Plan
from bench.scenarios.common import blend_call
from bench.servers import Lab
from bench.stats import quantile

PHASES = ("admission", "fan_out_spread", "sources", "to_synthesis", "synthesis", "tail")


def phases(started: float, ended: float, records: list[dict[str, Any]]) -> dict[str, float]:
    """Milliseconds per phase of one blend, from the upstream's records of its calls."""
    sources = [r for r in records if r["model"] in SOURCES]
    synth = [r for r in records if r["model"] == SYNTH][-1]
    first_in = min(r["received_at"] for r in sources)
    last_in = max(r["received_at"] for r in sources)
    last_out = max(r["completed_at"] for r in sources)
    ms = {
        "admission": first_in - started,
        "fan_out_spread": last_in - first_in,
        "sources": last_out - first_in,
        "to_synthesis": synth["received_at"] - last_out,
        "synthesis": synth["completed_at"] - synth["received_at"],
        "tail": ended - synth["completed_at"],
    }
    return {k: round(v * 1000, 2) for k, v in ms.items()}


async def _trace(up: Upstream, call: Callable[[], Awaitable[Timing]]) -> dict[str, float]:
    await up.reset_records()
    started = time.monotonic()
    await call()
    ended = time.monotonic()
    return phases(started, ended, await up.requests())


async def run(lab: Lab, plan: Plan) -> dict[str, Any]:
    await asyncio.to_thread(lab.moa, 1)
    up = Upstream(lab.upstream_url)
    clients = Clients(4)
    direct = Direct(f"{lab.upstream_url}/v1")
    traces: dict[str, list[dict[str, float]]] = {"moa": [], "direct": []}
    calls: dict[str, Call] = {
        "moa": blend_call(clients, lab, "consensus"),
        "direct": functools.partial(direct.blend, "consensus"),
    }
    try:
        await up.reset()
        await up.script_sources((plan.source_ms,) * 3, ANSWER)
        await up.script(
            SYNTH,
            latency_ms=plan.synth_ms,
            token_delay_ms=plan.token_delay_ms,
            content=synth_content("consensus"),
        )
        for call in calls.values():
            await call()  # warm
        for _ in range(plan.rounds_at_1):
            for side, call in calls.items():
                traces[side].append(await _trace(up, call))
    finally:
        await asyncio.gather(up.aclose(), clients.aclose(), direct.aclose())
    medians = {
        side: {p: round(quantile([t[p] for t in rows], 0.5), 2) for p in PHASES}
        for side, rows in traces.items()
    }
    extra = {p: round(medians["moa"][p] - medians["direct"][p], 2) for p in PHASES}
    print(f"  timeline: moa - direct, median ms per phase: {extra}")
    return {"phases": list(PHASES), "median_ms": medians, "moa_minus_direct_ms": extra}
