"""vote: self-consistency (Wang et al., 2023). Every source ends its reply with
``ANSWER: x``; the final answers are extracted and normalised (``moa.final_answer``), the
most common wins, and a tie goes to the answer given first in source order (the order of
``models``, or of the samples). No synthesizer is called: ``content`` is the full text of
the first source that gave the winning answer, sent as one chunk.

Blank replies abstain (they have no answer to count) unless every reply is blank.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from moa import prompts
from moa.final_answer import final_answer
from moa.strategies.base import Answer, Outcome, SourcePlan, Strategy, Synthesizer, with_system
from moa.strategies.self_moa import sampled_plans
from moa.types import BlendRequest, VoteResult


def count_votes(answers: Sequence[Answer]) -> tuple[VoteResult, Answer]:
    """The tally, and the answer whose text represents the winner."""
    ballots = [(final_answer(a.text), a) for a in answers]
    counted = [(key, a) for key, a in ballots if key] or ballots
    first_by_key: dict[str, Answer] = {}
    for key, answer in counted:
        first_by_key.setdefault(key, answer)
    counts = Counter(key for key, _ in counted)
    order = list(first_by_key)  # first appearance, which is source order
    ranked = sorted(order, key=lambda key: (-counts[key], order.index(key)))
    winner = ranked[0]
    result = VoteResult(
        answer=winner,
        votes={key: counts[key] for key in ranked},
        agreement=round(counts[winner] / len(counted), 4),
    )
    return result, first_by_key[winner]


class Vote(Strategy):
    name = "vote"
    calls_synthesizer = False

    def first_layer(self, request: BlendRequest) -> list[SourcePlan]:
        if request.sampled:
            return sampled_plans(request, prompts.VOTE)
        messages = with_system(prompts.VOTE, request.messages)
        return [
            SourcePlan(index=i, spec=spec, messages=messages, temperature=request.temperature)
            for i, spec in enumerate(request.sources)
        ]

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        result, winner = count_votes(answers)
        synth.show(winner.text)
        return Outcome(content=winner.text, vote=result)
