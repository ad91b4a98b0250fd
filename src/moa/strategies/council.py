"""council: the synthesizer returns structured JSON (final answer, agreements,
disagreements, follow-up questions).

The synthesizer is asked for JSON through ``response_format`` (a JSON schema; each provider
maps it to its own mechanism, the local model to a JSON grammar), and the reply is still
parsed robustly (fences, prose around it). If that fails the synthesizer gets one repair
attempt. If the repair fails too, the blend still answers, after all its calls were paid
for: ``council.structured`` is false and the final answer is the synthesizer's own text
(its ``final_answer`` string when one can be read from the broken JSON). Raw JSON makes a
poor stream, so the user's one chunk is the final answer, sent as soon as it is known.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from moa import prompts
from moa.json_reply import extract_json_object
from moa.strategies.base import Answer, Outcome, Strategy, Synthesizer, numbered, synthesis_messages
from moa.types import BlendRequest, CouncilResult, Message

_POINTS = {"type": "array", "items": {"type": "string"}}
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "final_answer": {"type": "string"},
        "agreement_points": _POINTS,
        "disagreement_points": _POINTS,
        "follow_up_questions": _POINTS,
    },
    "required": ["final_answer", "agreement_points", "disagreement_points", "follow_up_questions"],
    "additionalProperties": False,
}
VERDICT_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "council_verdict", "schema": VERDICT_SCHEMA, "strict": True},
}
# The final_answer string of a reply whose JSON broke later on (e.g. cut at max_tokens).
_FINAL_ANSWER = re.compile(r'"final_answer"\s*:\s*("(?:[^"\\]|\\.)*")')


def parse_council(text: str) -> CouncilResult | None:
    data = extract_json_object(text)
    if data is None:
        return None
    try:
        return CouncilResult.model_validate({**data, "structured": True})
    except ValidationError:
        return None


def unstructured(text: str) -> CouncilResult:
    """The verdict of a synthesizer that never wrote valid JSON: its text, and no points."""
    match = _FINAL_ANSWER.search(text)
    salvaged = ""
    if match:
        with contextlib.suppress(json.JSONDecodeError):  # e.g. an invalid escape like \x
            salvaged = str(json.loads(match.group(1))).strip()
    return CouncilResult(final_answer=salvaged or text.strip(), structured=False)


class Council(Strategy):
    name = "council"

    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        reply = await synth.complete(
            synthesis_messages(prompts.COUNCIL, numbered(answers), request.messages),
            response_format=VERDICT_FORMAT,
        )
        council = parse_council(reply)
        if council is None:
            repair = [Message(role="user", content=prompts.COUNCIL_REPAIR + reply)]
            council = parse_council(await synth.complete(repair, response_format=VERDICT_FORMAT))
        if council is None:
            council = unstructured(reply)
        synth.show(council.final_answer)
        return Outcome(content=council.final_answer, council=council)
