"""self_moa: one model sampled ``samples`` times for diversity (Li et al., 2025 show a single
strong model mixed with itself often beats mixing weaker ones).

Candidate i runs at temperature t + OFFSETS[i] (clamped to 0..2) with agent prompt
PROMPTS[i mod 6] as its system message; the synthesizer combines the candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

from moa import prompts
from moa.strategies.base import (
    Answer,
    Outcome,
    SourcePlan,
    Strategy,
    Synthesizer,
    numbered,
    synthesis_messages,
    with_system,
)
from moa.types import BlendRequest


def sample_temperature(base: float, sample: int) -> float:
    offset = prompts.SELF_MOA_OFFSETS[sample % len(prompts.SELF_MOA_OFFSETS)]
    return round(min(2.0, max(0.0, base + offset)), 4)


def sampled_plans(request: BlendRequest, instructions: str = "") -> list[SourcePlan]:
    """The one model's ``samples`` candidates, each with its temperature and agent prompt
    (followed by ``instructions`` when a strategy adds its own)."""
    spec = request.sources[0]
    agents = prompts.SELF_MOA_AGENTS
    return [
        SourcePlan(
            index=i,
            spec=spec,
            messages=with_system(
                "\n\n".join(filter(None, (agents[i % len(agents)], instructions))),
                request.messages,
            ),
            temperature=sample_temperature(request.temperature, i),
            sample=i,
        )
        for i in range(request.samples)
    ]


class SelfMoa(Strategy):
    name = "self_moa"

    def first_layer(self, request: BlendRequest) -> list[SourcePlan]:
        return sampled_plans(request)

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        messages = synthesis_messages(prompts.CONSENSUS, numbered(answers), request.messages)
        return Outcome(content=await synth.stream(messages))
