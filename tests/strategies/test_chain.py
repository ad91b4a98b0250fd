"""chain: answers are folded into a draft one at a time, then one coherence pass streams."""

from __future__ import annotations

from itertools import count
from typing import Any

from moa import prompts
from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest
from tests.helpers import request, system_text
from tests.strategies.fences import fenced

FINAL = "Paris, on the Seine, is the capital of France."


def chain_request() -> BlendRequest:
    return request(
        "fake/alpha", "fake/beta", "fake/gamma", synthesizer="fake/judge", strategy="chain"
    )


def numbered_drafts() -> Any:
    """The judge's reply: ``draft N`` for integration step N, FINAL for the coherence pass."""
    steps = count(1)

    def reply(body: dict[str, Any]) -> str:
        if system_text(body["messages"]).startswith(prompts.CHAIN_COHERENCE):
            return FINAL
        return f"draft {next(steps)}"

    return reply


async def test_chain_makes_one_integration_call_per_extra_answer_then_a_coherence_pass(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", reply=numbered_drafts())
    answer = await blend(chain_request(), runtime)
    prompts_sent = [system_text(c.messages) for c in upstream.calls("judge")]
    assert len(prompts_sent) == 3
    assert [p.startswith(prompts.CHAIN_INTEGRATE) for p in prompts_sent] == [True, True, False]
    assert prompts_sent[2].startswith(prompts.CHAIN_COHERENCE)
    assert answer.usage.calls == 6


async def test_each_integration_sees_the_draft_so_far_and_the_next_answer(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", reply=numbered_drafts())
    await blend(chain_request(), runtime)
    first, second, _ = (system_text(c.messages) for c in upstream.calls("judge"))
    question = "answer to: What is the capital of France?"
    assert fenced(first, "draft") == f"[alpha] {question}"
    assert fenced(first, "new answer") == f"[beta] {question}"
    assert fenced(second, "draft") == "draft 1"
    assert fenced(second, "new answer") == f"[gamma] {question}"


async def test_the_coherence_pass_rewrites_the_last_draft_into_the_final_answer(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", reply=numbered_drafts())
    answer = await blend(chain_request(), runtime)
    coherence = system_text(upstream.calls("judge")[-1].messages)
    assert fenced(coherence, "draft") == "draft 2"
    assert answer.content == FINAL
