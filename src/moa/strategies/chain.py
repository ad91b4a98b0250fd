"""chain: fold the answers into a draft one at a time, then one coherence pass.

Each integration step merges just two texts, which weaker synthesizers handle far better
than many at once; the final pass is the one the user sees streaming.
"""

from __future__ import annotations

from collections.abc import Sequence

from moa import prompts
from moa.references import Reference
from moa.strategies.base import Answer, Outcome, Strategy, Synthesizer, synthesis_messages
from moa.types import BlendRequest


class Chain(Strategy):
    name = "chain"

    def synthesis_calls(self, request: BlendRequest) -> int:
        return request.source_count  # one integration per answer after the first, one pass

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        draft = answers[0].text
        for answer in answers[1:]:
            references = [Reference("draft", draft), Reference("new answer", answer.text)]
            draft = await synth.complete(
                synthesis_messages(prompts.CHAIN_INTEGRATE, references, request.messages)
            )
        final = synthesis_messages(
            prompts.CHAIN_COHERENCE, [Reference("draft", draft)], request.messages
        )
        return Outcome(content=await synth.stream(final))
