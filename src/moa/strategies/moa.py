"""moa: Mixture-of-Agents refinement layers (Wang et al., 2024).

Layer 0: every model answers. Layer L (1..layers): each model answers again with the OTHER
models' layer L-1 answers as fenced references in a system message. The synthesizer then
combines the last layer. Calls = models x (layers + 1) + 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from moa import prompts
from moa.references import Reference, fence
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


class MixtureOfAgents(Strategy):
    name = "moa"

    def refinement_layers(self, request: BlendRequest) -> int:
        return request.layers

    def refine(
        self, request: BlendRequest, layer: int, previous: Sequence[Answer]
    ) -> list[SourcePlan]:
        plans = []
        for index, spec in enumerate(request.sources):
            others = [a for a in previous if a.index != index]
            references = [Reference(f"response {n}", a.text) for n, a in enumerate(others, 1)]
            system = f"{prompts.MOA_REFINE}\n\n{fence(references)}"
            plans.append(
                SourcePlan(
                    index=index,
                    spec=spec,
                    messages=with_system(system, request.messages),
                    temperature=request.temperature,
                )
            )
        return plans

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        messages = synthesis_messages(prompts.MOA_AGGREGATE, numbered(answers), request.messages)
        return Outcome(content=await synth.stream(messages))
