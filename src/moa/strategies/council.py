"""council: the synthesizer returns structured JSON (final answer, agreements,
disagreements, follow-up questions).

The reply is parsed robustly (fences, prose around it); if that fails the synthesizer gets
one repair attempt, then the blend fails with ``synthesis_failed``. Raw JSON makes a poor
stream, so the user's chunk is the parsed final answer, sent as soon as it is known.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from moa import prompts
from moa.errors import BlendFailed
from moa.strategies.base import Answer, Outcome, Strategy, Synthesizer, numbered, synthesis_messages
from moa.structured import extract_json_object
from moa.types import BlendRequest, CouncilResult, Message


def parse_council(text: str) -> CouncilResult | None:
    data = extract_json_object(text)
    if data is None:
        return None
    try:
        return CouncilResult.model_validate(data)
    except ValidationError:
        return None


class Council(Strategy):
    name = "council"

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        reply = await synth.complete(
            synthesis_messages(prompts.COUNCIL, numbered(answers), request.messages)
        )
        council = parse_council(reply)
        if council is None:
            repair = [Message(role="user", content=prompts.COUNCIL_REPAIR + reply)]
            council = parse_council(await synth.complete(repair))
        if council is None:
            raise BlendFailed(
                "the council synthesizer did not return valid JSON, even after one repair attempt",
                code="synthesis_failed",
            )
        synth.show(council.final_answer)
        return Outcome(content=council.final_answer, council=council)
