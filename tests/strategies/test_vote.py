"""vote: self-consistency without a synthesizer; the most common final answer wins."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from moa import prompts
from moa.engine import blend
from moa.runtime import Runtime
from moa.strategies import get_strategy
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest, ChunkEvent, SynthesisEvent
from tests.helpers import collect, done_of, request, system_text


def vote_request(*models: str, **fields: Any) -> Any:
    return request(*models, strategy="vote", prompt="What is 6 x 7?", **fields)


async def test_the_most_common_answer_wins_and_its_full_text_is_the_content(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", content="6 x 7 = 41\nANSWER: 41")
    upstream.script("beta", content="Six sevens are 42.\nANSWER: 42")
    upstream.script("gamma", content="ANSWER: 42.0")
    answer = await blend(vote_request("fake/alpha", "fake/beta", "fake/gamma"), runtime)
    assert answer.content == "Six sevens are 42.\nANSWER: 42"
    assert answer.vote is not None
    assert answer.vote.answer == "42"
    assert answer.vote.votes == {"42": 2, "41": 1}
    assert answer.vote.agreement == pytest.approx(2 / 3, abs=1e-4)


async def test_a_tie_goes_to_the_answer_of_the_earliest_source(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", content="ANSWER: 41", latency_ms=200)
    upstream.script("beta", content="ANSWER: 42")
    answer = await blend(vote_request("fake/alpha", "fake/beta"), runtime)
    assert answer.vote is not None
    assert answer.vote.answer == "41", "alpha is named first, even though beta answered first"
    assert answer.content == "ANSWER: 41"


async def test_no_synthesizer_is_called_and_only_the_sources_are_counted(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    answer = await blend(vote_request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    assert upstream.calls("judge") == []
    assert answer.usage.calls == 2
    assert answer.synthesis.model == "moa/vote"
    assert answer.synthesis.usage.completion_tokens == 0


async def test_every_source_is_asked_to_end_with_an_answer_line(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    await blend(vote_request("fake/alpha", "fake/beta"), runtime)
    for model in ("alpha", "beta"):
        (call,) = upstream.calls(model)
        assert prompts.VOTE in system_text(call.messages)
        assert call.messages[-1] == {"role": "user", "content": "What is 6 x 7?"}


async def test_one_model_is_sampled_with_self_moas_temperatures_and_agent_prompts(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    answers = iter(["ANSWER: 42", "ANSWER: 41", "ANSWER: 42"])
    upstream.script("alpha", reply=lambda body: next(answers))
    answer = await blend(vote_request("fake/alpha", samples=3, temperature=0.7), runtime)
    calls = upstream.calls("alpha")
    seen = {system_text(c.messages): c.temperature for c in calls}
    for sample, agent in enumerate(prompts.SELF_MOA_AGENTS[:3]):
        system = f"{agent}\n\n{prompts.VOTE}"
        assert seen[system] == pytest.approx(0.7 + prompts.SELF_MOA_OFFSETS[sample])
    assert sorted((s.model, s.sample) for s in answer.sources) == [
        ("fake/alpha", i) for i in range(3)
    ]
    assert answer.vote is not None and answer.vote.votes == {"42": 2, "41": 1}
    assert answer.usage.calls == 3


async def test_the_stream_names_the_rule_sends_one_chunk_and_the_done_event_has_the_tally(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", content="I say 1,000.\nANSWER: 1,000")
    upstream.script("beta", content="ANSWER: 1000.0")
    events = await collect(vote_request("fake/alpha", "fake/beta"), runtime)
    synthesis = next(e for e in events if isinstance(e, SynthesisEvent))
    assert (synthesis.strategy, synthesis.model) == ("vote", "moa/vote")
    chunks = [e.content for e in events if isinstance(e, ChunkEvent)]
    assert chunks == ["I say 1,000.\nANSWER: 1,000"]
    done = done_of(events)
    assert done.vote is not None
    assert done.vote.model_dump() == {"answer": "1000", "votes": {"1000": 2}, "agreement": 1.0}


async def test_a_blank_reply_abstains(upstream: ScriptedUpstream, runtime: Runtime) -> None:
    upstream.script("alpha", content="   ")
    upstream.script("beta", content="   ")
    upstream.script("gamma", content="ANSWER: 42")
    answer = await blend(vote_request("fake/alpha", "fake/beta", "fake/gamma"), runtime)
    assert answer.vote is not None
    assert (answer.vote.answer, answer.vote.votes) == ("42", {"42": 1})


async def test_a_failed_source_casts_no_vote(upstream: ScriptedUpstream, runtime: Runtime) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", content="ANSWER: 7")
    upstream.script("gamma", content="ANSWER: 7")
    answer = await blend(vote_request("fake/alpha", "fake/beta", "fake/gamma"), runtime)
    assert answer.vote is not None
    assert answer.vote.votes == {"7": 2} and answer.vote.agreement == 1.0


def test_vote_takes_at_most_six_models() -> None:
    models = [f"fake/m{i}" for i in range(7)]
    with pytest.raises(ValidationError, match="vote") as raised:
        vote_request(*models)
    assert "1 model" in str(raised.value) and "2-6" in str(raised.value)


def test_billing_plans_one_call_per_vote_source_and_none_for_a_synthesizer() -> None:
    def planned(req: BlendRequest) -> int:
        return get_strategy(req.strategy).planned_calls(req)

    assert planned(vote_request("fake/alpha", samples=5)) == 5
    assert planned(vote_request("fake/alpha", "fake/beta")) == 2
    assert planned(request("fake/alpha", "fake/beta")) == 3
