"""consensus (default): one synthesis combining the strongest points, majority on conflicts."""

from __future__ import annotations

from collections.abc import Sequence

from moa import prompts
from moa.strategies.base import Answer, Outcome, Strategy, Synthesizer, numbered, synthesis_messages
from moa.types import BlendRequest


class Consensus(Strategy):
    name = "consensus"

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        messages = synthesis_messages(prompts.CONSENSUS, numbered(answers), request.messages)
        return Outcome(content=await synth.stream(messages))
