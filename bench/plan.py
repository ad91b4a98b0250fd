"""How much of everything a run does: the full run (< 10 minutes) and ``--quick`` (~2).

One frozen object so a result file records exactly what produced it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    # 1 + 2: overhead vs the ideal, and moa vs the direct script (streaming blends)
    levels: tuple[int, ...] = (1, 50, 100, 200)
    rounds_at_1: int = 5  # sequential blends per strategy at concurrency 1
    samples: int = 160  # measured blends per cell at higher concurrency (>= 1 per client)
    source_ms: float = 200.0
    synth_ms: float = 200.0
    token_delay_ms: float = 2.0
    # 3: throughput at saturation
    upstream_ms: float = 20.0
    clients: int = 100
    duration_s: float = 10.0
    warmup_s: float = 2.0
    workers: tuple[int, ...] = (1, 2)
    # 4: memory per in-flight streaming blend
    inflight: int = 1000
    # 5: stragglers
    straggler_ms: float = 1000.0
    straggler_clients: int = 20
    straggler_rounds: int = 3
    quorum: int = 2
    grace_ms: int = 100
    # 6: the embedded model
    local_reps: int = 3
    local_max_tokens: int = 128
    # peers (``--peers``): chat and mixture of agents beside LiteLLM and optillm
    peers_reps: int = 3  # turns per system per cell, in rotated order
    peers_chat_requests: int = 100  # sequential chat requests per turn at concurrency 1
    peers_moa_requests: int = 10  # sequential MoA requests per turn at concurrency 1
    peers_window_s: float = 5.0  # closed-loop window per turn
    peers_warmup_s: float = 1.0


FULL = Plan(name="full")
QUICK = Plan(
    name="quick",
    levels=(1, 100),
    rounds_at_1=2,
    samples=100,
    duration_s=3.0,
    warmup_s=1.0,
    straggler_clients=10,
    straggler_rounds=1,
    local_reps=1,
    local_max_tokens=64,
    peers_reps=1,
    peers_chat_requests=60,
    peers_moa_requests=5,
    peers_window_s=3.0,
)


def blends_per_client(plan: Plan, level: int) -> int:
    """Measured blends per client at ``level`` concurrent clients (plus one warm-up)."""
    return plan.rounds_at_1 if level == 1 else max(1, round(plan.samples / level))
