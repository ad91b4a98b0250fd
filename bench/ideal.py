"""The physical limit: what each strategy's blend would take with zero overhead.

With scripted latencies the critical path is known exactly. Per layer the calls run in
parallel, so a layer costs its slowest source; then each sequential synthesizer call costs
its latency, and the streamed final call adds one token delay per token after the first.
Nothing else (HTTP, JSON, SQLite, scheduling) is free in reality, so measured / ideal >= 1
and the excess is moa's (and the machine's) overhead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from moa.testing.upstream import tokens_of

STRATEGIES = ("consensus", "council", "best_of", "chain", "moa", "self_moa")
ANSWER = "Paris is the capital of France and has been for centuries; it sits on the Seine."
SYNTHESIS = "Paris is the capital of France. It lies on the Seine, in the north of the country."


@dataclass(frozen=True, slots=True)
class Timings:
    """The scripted upstream: source latencies per layer-0 source, the synthesizer."""

    sources_ms: tuple[float, ...]
    synth_ms: float
    token_delay_ms: float


@dataclass(frozen=True, slots=True)
class Shape:
    """A strategy's calls: parallel layers, sequential synthesizer calls before the final
    one, whether that final call streams, and which of its tokens is the first shown."""

    layers: int
    sequential: int
    final_streams: bool
    first_shown_token: int


def synth_content(strategy: str) -> str:
    """What the synthesizer replies: JSON for council (it must parse), a pick line for
    best_of (so the pick is read, not guessed), plain prose otherwise."""
    if strategy == "council":
        verdict = {
            "final_answer": SYNTHESIS,
            "agreement_points": ["Paris is the capital"],
            "disagreement_points": [],
            "follow_up_questions": ["Which river?"],
        }
        return json.dumps(verdict)
    if strategy == "best_of":
        return f"PICK: 1\n{SYNTHESIS}"
    return SYNTHESIS


def shape(strategy: str, sources: int) -> Shape:
    """Each strategy's call graph, as docs/strategies.md defines it (moa with layers=1)."""
    if strategy == "council":
        return Shape(layers=1, sequential=0, final_streams=False, first_shown_token=0)
    if strategy == "best_of":
        tokens = tokens_of(synth_content(strategy))
        after_pick = next(i for i, t in enumerate(tokens) if "\n" in t) + 1
        return Shape(layers=1, sequential=0, final_streams=True, first_shown_token=after_pick)
    if strategy == "chain":
        return Shape(layers=1, sequential=sources - 1, final_streams=True, first_shown_token=0)
    if strategy == "moa":
        return Shape(layers=2, sequential=0, final_streams=True, first_shown_token=0)
    return Shape(layers=1, sequential=0, final_streams=True, first_shown_token=0)


@dataclass(frozen=True, slots=True)
class Ideal:
    """Ideal seconds to the first event, the first synthesis chunk and the end."""

    first_event: float
    first_chunk: float
    total: float


def ideal(strategy: str, timings: Timings) -> Ideal:
    s = shape(strategy, len(timings.sources_ms))
    layer_path = s.layers * max(timings.sources_ms)
    before_final = layer_path + s.sequential * timings.synth_ms + timings.synth_ms
    tokens = len(tokens_of(synth_content(strategy)))
    delay = timings.token_delay_ms if s.final_streams else 0.0
    return Ideal(
        first_event=min(timings.sources_ms) / 1000,
        first_chunk=(before_final + s.first_shown_token * delay) / 1000,
        total=(before_final + (tokens - 1) * delay) / 1000,
    )


def quorum_ideal(timings: Timings, quorum: int, grace_ms: float) -> float:
    """consensus with a quorum: the quorum-th fastest source, plus the grace if a slower
    one is still out, then the streamed synthesis."""
    ordered = sorted(timings.sources_ms)
    layer = ordered[quorum - 1]
    if quorum < len(ordered):
        layer = min(ordered[-1], layer + grace_ms)
    tokens = len(tokens_of(synth_content("consensus")))
    return (layer + timings.synth_ms + (tokens - 1) * timings.token_delay_ms) / 1000
