"""Question 3: blends/s at saturation with a 20 ms upstream, and what each blend costs
in server CPU, for 1 and 2 worker processes, JSON and streaming.

A closed loop of N clients keeps the server saturated for a fixed time after a warm-up.
The direct script under the same loop gives the machine's ceiling for the same upstream
calls without moa in between.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from bench.control import SYNTH, Upstream
from bench.cpu import Meter
from bench.direct import Direct
from bench.ideal import ANSWER, synth_content
from bench.load import Call, Clients, LoopResult, closed_loop
from bench.plan import Plan
from bench.scenarios.common import blend_call
from bench.servers import Lab
from bench.stats import summary


def _row(result: LoopResult, cpu: dict[str, float]) -> dict[str, Any]:
    done = len(result.ok)
    server_cpu = cpu.get("server_cpu_s", 0.0)
    return {
        "blends": done,
        "errors": len(result.errors),
        "error_sample": result.errors[0] if result.errors else None,
        "blends_per_s": round(done / result.elapsed_s, 1),
        "latency_s": summary([t.total for t in result.ok]),
        "server_cpu_s_per_blend": round(server_cpu / done, 6) if done else None,
        "loadgen_cpu_s_per_blend": round(cpu["loadgen_cpu_s"] / done, 6) if done else None,
        "cpu": cpu,
    }


async def _measure(plan: Plan, call: Call, **groups: list[int]) -> dict[str, Any]:
    await closed_loop(plan.clients, plan.warmup_s, call)
    meter = Meter(**groups)
    result = await closed_loop(plan.clients, plan.duration_s, call)
    return _row(result, meter.read())


async def run(lab: Lab, plan: Plan) -> dict[str, Any]:
    up = Upstream(lab.upstream_url)
    client = Clients(plan.clients + 16)
    rows: list[dict[str, Any]] = []
    try:
        await up.reset()
        await up.script_sources((plan.upstream_ms,) * 3, ANSWER)
        await up.script(SYNTH, latency_ms=plan.upstream_ms, content=synth_content("consensus"))
        for workers in plan.workers:
            server = await asyncio.to_thread(functools.partial(lab.moa, workers, fresh=True))
            for stream in (False, True):
                call = blend_call(client, lab, "consensus", stream=stream)
                row = await _measure(plan, call, server=server.pids(), upstream=lab.upstream.pids())
                rows.append({"system": "moa", "workers": workers, "stream": stream, **row})
                print(f"  throughput moa w={workers} stream={stream}: {row['blends_per_s']}/s")
        await asyncio.to_thread(lab.stop_moa)
        direct = Direct(f"{lab.upstream_url}/v1")
        try:
            row = await _measure(
                plan, lambda: direct.blend("consensus"), upstream=lab.upstream.pids()
            )
        finally:
            await direct.aclose()
        rows.append({"system": "direct", "workers": 0, "stream": True, **row})
        print(f"  throughput direct: {row['blends_per_s']}/s")
    finally:
        await asyncio.gather(up.aclose(), client.aclose())
    return {"upstream_ms": plan.upstream_ms, "clients": plan.clients, "rows": rows}
