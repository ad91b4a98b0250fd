"""council: the synthesizer's JSON verdict, asked for by schema, parsed robustly, repaired
once, else the synthesizer's text with ``structured: false``: the blend always answers."""

from __future__ import annotations

import json
from typing import Any

from moa import prompts
from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest
from tests.helpers import collect, content_of, done_of, error_of, request

VERDICT = {
    "final_answer": "Paris is the capital of France.",
    "agreement_points": ["Both name Paris."],
    "disagreement_points": ["Only one mentions Lyon; it is wrong."],
    "follow_up_questions": ["Why is Paris the capital?"],
}


def council_request() -> BlendRequest:
    return request("fake/alpha", "fake/beta", synthesizer="fake/judge", strategy="council")


def repairs_only(request_body: dict[str, Any]) -> str:
    """Broken JSON on the first try; the valid verdict when asked to repair it."""
    last = request_body["messages"][-1]["content"]
    if last.startswith(prompts.COUNCIL_REPAIR):
        return json.dumps(VERDICT)
    return '{"final_answer": "Paris", "agreement_points": [unquoted'


async def test_council_reads_json_in_a_fence_after_leading_prose(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    reply = f"Here is the council's verdict:\n```json\n{json.dumps(VERDICT, indent=2)}\n```\n"
    upstream.script("judge", content=reply)
    answer = await blend(council_request(), runtime)
    assert answer.council is not None
    assert answer.council.model_dump() == {**VERDICT, "structured": True}
    assert answer.content == VERDICT["final_answer"]
    assert len(upstream.calls("judge")) == 1, "a parseable reply needs no repair"


async def test_council_streams_only_the_final_answer_not_the_json(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content=json.dumps(VERDICT))
    events = await collect(council_request(), runtime)
    assert content_of(events) == VERDICT["final_answer"]


async def test_an_unparseable_verdict_gets_one_repair_call_whose_json_is_used(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", reply=repairs_only)
    answer = await blend(council_request(), runtime)
    first, repair = upstream.calls("judge")
    broken = repairs_only(first.body)
    assert broken in repair.messages[-1]["content"], "the repair call shows the broken reply"
    assert answer.council is not None
    assert answer.council.model_dump() == {**VERDICT, "structured": True}
    assert answer.content == VERDICT["final_answer"]


async def test_a_synthesizer_that_never_writes_json_still_answers_with_its_text(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    text = "I think Paris, but I cannot write JSON today."
    upstream.script("judge", content=text)
    events = await collect(council_request(), runtime)
    done = done_of(events)
    assert done.council is not None
    assert done.council.model_dump() == {
        "final_answer": text,
        "agreement_points": [],
        "disagreement_points": [],
        "follow_up_questions": [],
        "structured": False,
    }
    assert content_of(events) == text
    assert len(upstream.calls("judge")) == 2, "exactly one repair attempt"


async def test_a_verdict_cut_short_keeps_its_final_answer_when_unstructured(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content='{"final_answer": "Paris, \\"the city\\".", "agree')
    answer = await blend(council_request(), runtime)
    assert answer.council is not None and answer.council.structured is False
    assert answer.content == 'Paris, "the city".'


async def test_a_failing_synthesizer_still_fails_the_council(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", status=401, error_message="bad key")
    events = await collect(council_request(), runtime)
    assert error_of(events).code == "synthesis_failed"
