"""Questions 1 and 2: how far streaming blends through moa's HTTP server are from the
physical limit (the ideal critical path) and from the shortest direct asyncio script,
per strategy, at several concurrencies.

moa and the direct script run alternately against the same upstream in the same run, so
machine noise hits both. Clients start staggered over one ideal blend duration, so about
N blends are in flight at any time (a steady load, not a synchronized burst), and each
client's first blend, which also opens the connection pools, is not measured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from typing import Any

from bench.control import SYNTH, Upstream
from bench.cpu import Meter
from bench.direct import Direct
from bench.ideal import ANSWER, STRATEGIES, Ideal, Timings, ideal, synth_content
from bench.load import Call, Clients, Timing, rounds
from bench.plan import Plan, blends_per_client
from bench.scenarios.common import blend_call
from bench.servers import Child, Lab
from bench.stats import summary


def side(timings: list[Timing], goal: Ideal) -> dict[str, Any]:
    """Latency and its ratio to the ideal: end-to-end, first event, first chunk."""
    ok = [t for t in timings if t.error is None]
    chunks = [t.first_chunk for t in ok if t.first_chunk is not None]
    return {
        "n": len(timings),
        "errors": len(timings) - len(ok),
        "error_sample": next((t.error for t in timings if t.error), None),
        "total_s": summary([t.total for t in ok]),
        "ratio": summary([t.total / goal.total for t in ok]),
        "first_event_ratio": summary([t.first_event / goal.first_event for t in ok]),
        "first_chunk_ratio": summary([c / goal.first_chunk for c in chunks]),
    }


def versus(moa: dict[str, Any], direct: dict[str, Any]) -> dict[str, float]:
    """moa's latency percentiles over the direct script's."""
    m, d = moa["total_s"], direct["total_s"]
    if not m.get("n") or not d.get("n"):
        return {}
    return {q: round(m[q] / d[q], 4) for q in ("p50", "p99")}


class _Cells:
    """Measures one (strategy, concurrency) cell: moa, then the direct script."""

    def __init__(self, lab: Lab, server: Child, up: Upstream, timings: Timings) -> None:
        self.lab, self.server, self.up, self.timings = lab, server, up, timings
        self.clients = Clients(256)
        self.direct = Direct(f"{lab.upstream_url}/v1")

    async def aclose(self) -> None:
        await asyncio.gather(self.clients.aclose(), self.direct.aclose())

    async def measure(self, strategy: str, level: int, per_client: int) -> dict[str, Any]:
        t = self.timings
        await self.up.script(
            SYNTH,
            latency_ms=t.synth_ms,
            token_delay_ms=t.token_delay_ms,
            content=synth_content(strategy),
        )
        goal = ideal(strategy, t)
        spread = goal.total if level > 1 else 0.0
        calls: dict[str, Call] = {
            "moa": blend_call(self.clients, self.lab, strategy),
            "direct": functools.partial(self.direct.blend, strategy),
        }
        cell: dict[str, Any] = {}
        for name, call in calls.items():
            meter = Meter(server=self.server.pids(), upstream=self.lab.upstream.pids())
            cell[name] = side(await rounds(level, per_client, call, spread), goal)
            cpu = meter.read()
            blends = level * (per_client + 1)  # the warm-up blends used CPU too
            cpu["server_ms_per_blend"] = round(1000 * cpu["server_cpu_s"] / blends, 2)
            cpu["loadgen_ms_per_blend"] = round(1000 * cpu["loadgen_cpu_s"] / blends, 2)
            cell[name]["cpu"] = cpu
        cell["moa_over_direct"] = versus(cell["moa"], cell["direct"])
        return cell


async def run(lab: Lab, plan: Plan) -> dict[str, Any]:
    timings = Timings((plan.source_ms,) * 3, plan.synth_ms, plan.token_delay_ms)
    server = await asyncio.to_thread(lab.moa, 1)
    up = Upstream(lab.upstream_url)
    cells = _Cells(lab, server, up, timings)
    results: dict[str, dict[str, Any]] = {s: {} for s in STRATEGIES}
    try:
        await up.reset()
        await up.script_sources(timings.sources_ms, ANSWER)
        for level in plan.levels:
            per_client = blends_per_client(plan, level)
            for strategy in STRATEGIES:
                cell = await cells.measure(strategy, level, per_client)
                results[strategy][str(level)] = cell
                print(f"  overhead {strategy:>9} c={level:<3} {_line(cell)}", flush=True)
    finally:
        await asyncio.gather(up.aclose(), cells.aclose())
    return {
        "timings": dataclasses.asdict(timings),
        "levels": list(plan.levels),
        "ideal": {s: dataclasses.asdict(ideal(s, timings)) for s in STRATEGIES},
        "cells": results,
    }


def _line(cell: dict[str, Any]) -> str:
    ratio = cell["moa"]["ratio"]
    vs = cell["moa_over_direct"]
    return (
        f"moa/ideal p50={ratio.get('p50')} p99={ratio.get('p99')}  "
        f"moa/direct p50={vs.get('p50')} errors={cell['moa']['errors']}"
    )
