"""moa side by side with LiteLLM's proxy and optillm, against the same scripted upstream.

Two scenarios, each in cells run in turns: every repetition runs each system once, in an
order rotated between repetitions, so a noisy neighbour hits all systems alike.

- chat: one model, a JSON client, the upstream answering after 50 ms. At concurrency 1:
  latency over the direct call (the load generator asking the upstream itself). At 32
  clients in a closed loop: requests/s, p99, server CPU per request and the longest
  garbage-collection pause, with pooled connections and with a new connection per request.
- moa: a mixture of agents, upstream 200 ms: moa's ``self_moa`` with 3 samples (3 calls in
  parallel, then the synthesis: ideal 400 ms) and optillm's ``moa`` approach (3 calls in a
  row: ideal 600 ms), at concurrency 1 and 16. LiteLLM has no mixture of agents.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import gcwatch
from bench.chatload import ChatClient
from bench.control import Upstream
from bench.cpu import Meter
from bench.ideal import ANSWER
from bench.load import LoopResult, closed_loop, rounds
from bench.peers import envs, systems
from bench.peers.systems import System
from bench.plan import Plan
from bench.servers import Lab
from bench.stats import summary

CHAT_MS = 50.0
MOA_MS = 200.0
IDEAL_S = {"chat": CHAT_MS / 1000, "moa:moa": 2 * MOA_MS / 1000, "moa:optillm": 3 * MOA_MS / 1000}
Segment = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cell:
    """One measurement, run once per system per repetition: ``clients`` concurrent
    clients, either ``requests`` each back to back or a closed loop for ``seconds``."""

    name: str
    scenario: str  # "chat" or "moa"
    clients: int
    requests: int = 0
    seconds: float = 0.0
    warmup_s: float = 0.0
    pooled: bool = True


def cells(plan: Plan) -> list[Cell]:
    window, warmup = plan.peers_window_s, plan.peers_warmup_s
    return [
        Cell("chat_c1", "chat", 1, requests=plan.peers_chat_requests),
        Cell("chat_c32", "chat", 32, seconds=window, warmup_s=warmup),
        Cell("chat_c32_new_connection", "chat", 32, seconds=window, warmup_s=warmup, pooled=False),
        Cell("moa_c1", "moa", 1, requests=plan.peers_moa_requests),
        Cell("moa_c16", "moa", 16, seconds=window, warmup_s=warmup),
    ]


async def _turn(system: System, lab: Lab, cell: Cell) -> Segment:
    """One system's turn in a cell: timings, CPU per process group, GC window, load."""
    url, body = (system.url, system.chat_body())
    if cell.scenario == "moa":
        assert system.moa_url is not None and system.moa_body is not None
        url, body = system.moa_url, system.moa_body
    client = ChatClient(url, body, system.headers, pooled=cell.pooled, connections=cell.clients)
    try:
        if cell.clients > 1:
            await closed_loop(cell.clients, cell.warmup_s, client.call)
        meter = Meter(server=system.pids(), upstream=lab.upstream.pids())
        since = time.monotonic()
        if cell.clients > 1:
            result = await closed_loop(cell.clients, cell.seconds, client.call)
        else:
            started = time.perf_counter()
            timings = await rounds(1, cell.requests, client.call)
            result = LoopResult(time.perf_counter() - started, timings)
        cpu = meter.read()
    finally:
        await client.aclose()
    return {
        "result": result,
        "cpu": cpu,
        "window": (since, time.monotonic()),
        "loadavg": os.getloadavg()[0],
    }


def _aggregate(system: System, cell: Cell, segments: list[Segment]) -> dict[str, Any]:
    results: list[LoopResult] = [s["result"] for s in segments]
    ok = [t.total for r in results for t in r.ok]
    errors = [e for r in results for e in r.errors]
    elapsed = sum(r.elapsed_s for r in results)
    server_cpu = sum(s["cpu"].get("server_cpu_s", 0.0) for s in segments)
    loadgen_cpu = sum(s["cpu"]["loadgen_cpu_s"] for s in segments)
    kind = "moa" if system.name.startswith("moa") else system.name  # moa@REF too
    ideal = IDEAL_S["chat"] if cell.scenario == "chat" else IDEAL_S.get(f"moa:{kind}")
    row: dict[str, Any] = {
        "n": len(ok) + len(errors),
        "errors": len(errors),
        "error_sample": errors[0] if errors else None,
        "latency_s": summary(ok),
        "ratio_to_ideal": summary([t / ideal for t in ok]) if ideal else {},
        "per_s": round(len(ok) / elapsed, 1) if elapsed else None,
        "server_cpu_ms": round(1000 * server_cpu / len(ok), 3) if ok and system.child else None,
        "loadgen_cpu_ms": round(1000 * loadgen_cpu / len(ok), 3) if ok else None,
        "other_cores": round(max(s["cpu"]["other_cores"] for s in segments), 3),
        "upstream_cores": round(max(s["cpu"]["upstream_cores"] for s in segments), 3),
        "loadavg": [
            round(min(s["loadavg"] for s in segments), 2),
            round(max(s["loadavg"] for s in segments), 2),
        ],
    }
    if system.gc_log is not None:
        pauses = [gcwatch.read(str(system.gc_log), *s["window"]) for s in segments]
        row["gc_max_pause_ms"] = max(p.get("max_ms", 0.0) for p in pauses)
        row["gc_max_pause_cpu_ms"] = max(p.get("max_cpu_ms", 0.0) for p in pauses)
        row["gc_pauses_over_20ms"] = sum(p.get("over_20ms", 0) for p in pauses)
    return row


async def _measure(cell: Cell, lineup: list[System], lab: Lab, reps: int) -> dict[str, Any]:
    """Every system once per repetition, the order rotated each time."""
    segments: dict[str, list[Segment]] = {s.name: [] for s in lineup}
    for rep in range(reps):
        turn = rep % len(lineup)
        for system in lineup[turn:] + lineup[:turn]:
            segments[system.name].append(await _turn(system, lab, cell))
    await asyncio.sleep(2 * gcwatch.FLUSH_S)  # let every pause of the window be flushed
    rows = {s.name: _aggregate(s, cell, segments[s.name]) for s in lineup}
    for name, row in rows.items():
        p50 = row["latency_s"].get("p50")
        print(f"  {cell.name} {name}: p50 {p50} s, {row['per_s']}/s, cpu {row['server_cpu_ms']} ms")
    return {"clients": cell.clients, "pooled": cell.pooled, "systems": rows}


def _start_peers(lab: Lab) -> tuple[list[System], dict[str, str]]:
    """Install (once) and start each peer; a peer that cannot be had is reported, not fatal."""
    started: list[System] = []
    missing: dict[str, str] = {}
    starters = {"litellm": systems.start_litellm, "optillm": systems.start_optillm}
    for name, peer in envs.PEERS.items():
        try:
            python = envs.ensure(peer, lab.workdir / f"pip-{name}.log")
            started.append(starters[name](python, lab.upstream_url, lab.workdir))
        except (envs.PeerUnavailable, RuntimeError, OSError) as exc:
            missing[name] = str(exc)
            print(f"  {name} unavailable: {exc}", flush=True)
    return started, missing


async def run(
    lab: Lab, plan: Plan, baselines: Sequence[str] = (), with_peers: bool = True
) -> dict[str, Any]:
    """``baselines``: git refs whose moa runs too, in turns with this one."""
    server = await asyncio.to_thread(lab.moa, 1, fresh=True)
    peers, missing = await asyncio.to_thread(_start_peers, lab) if with_peers else ([], {})
    for index, ref in enumerate(baselines):
        start = functools.partial(systems.start_moa_at, ref, lab.config)
        peers.insert(index, await asyncio.to_thread(start, lab.workdir))
    moa = systems.moa(lab.moa_url, lab.key, server, lab.moa_gc_log)
    lineup = [systems.direct(lab.upstream_url), moa, *peers]
    up = Upstream(lab.upstream_url)
    measured: dict[str, Any] = {}
    try:
        await up.reset()
        for cell in cells(plan):
            latency = CHAT_MS if cell.scenario == "chat" else MOA_MS
            await up.script("alpha", latency_ms=latency, content=ANSWER)
            who = lineup if cell.scenario == "chat" else [s for s in lineup if s.moa_url]
            measured[cell.name] = await _measure(cell, who, lab, plan.peers_reps)
    finally:
        await up.aclose()
        for peer in peers:
            await asyncio.to_thread(peer.stop)
    return {
        "versions": {
            p.name: p.version for p in envs.PEERS.values() if with_peers and p.name not in missing
        },
        "baselines": list(baselines),
        "unavailable": missing,
        "chat_upstream_ms": CHAT_MS,
        "moa_upstream_ms": MOA_MS,
        "ideal_s": IDEAL_S,
        "reps": plan.peers_reps,
        "cells": measured,
    }
