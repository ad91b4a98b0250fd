"""Question 5: one source 5x slower than the others. Without a quorum every blend waits
for the straggler; with ``quorum: 2, grace_ms: 100`` moa synthesizes once two sources
answered and the grace passed, cutting the straggler."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.control import SYNTH, Upstream
from bench.ideal import ANSWER, Timings, ideal, quorum_ideal, synth_content
from bench.load import Clients, rounds
from bench.plan import Plan
from bench.scenarios.common import blend_call
from bench.servers import Lab
from bench.stats import summary


async def run(lab: Lab, plan: Plan) -> dict[str, Any]:
    sources = (plan.source_ms, plan.source_ms, plan.straggler_ms)
    timings = Timings(sources, plan.synth_ms, plan.token_delay_ms)
    await asyncio.to_thread(lab.moa, 1)
    up = Upstream(lab.upstream_url)
    client = Clients(plan.straggler_clients + 8)
    modes: dict[str, dict[str, Any]] = {
        "without_quorum": {"ideal_s": ideal("consensus", timings).total, "extra": {}},
        "with_quorum": {
            "ideal_s": quorum_ideal(timings, plan.quorum, plan.grace_ms),
            "extra": {"quorum": plan.quorum, "grace_ms": plan.grace_ms},
        },
    }
    try:
        await up.reset()
        await up.script_sources(sources, ANSWER)
        content = synth_content("consensus")
        await up.script(
            SYNTH, latency_ms=plan.synth_ms, token_delay_ms=plan.token_delay_ms, content=content
        )
        for name, mode in modes.items():
            call = blend_call(client, lab, "consensus", **mode["extra"])
            spread = float(mode["ideal_s"])  # staggered starts: a steady load, not a burst
            timings_ = await rounds(plan.straggler_clients, plan.straggler_rounds, call, spread)
            ok = [t.total for t in timings_ if t.error is None]
            mode["latency_s"] = summary(ok)
            mode["errors"] = len(timings_) - len(ok)
            print(f"  stragglers {name}: p50={mode['latency_s'].get('p50')} s")
    finally:
        await asyncio.gather(up.aclose(), client.aclose())
    return {"sources_ms": list(sources), "synth_ms": plan.synth_ms, "modes": modes}
