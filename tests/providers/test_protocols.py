"""What every wire protocol's provider must do the same way, checked over real HTTP against
the scripted upstream speaking OpenAI, Anthropic and Gemini in turn."""

from __future__ import annotations

import pytest

from moa.config import Settings
from moa.engine import blend
from moa.errors import ProviderError
from moa.providers.base import Provider
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import TokenUsage
from tests.helpers import request
from tests.providers.conftest import call, messages, streamed


async def test_a_completion_is_the_scripted_text_with_its_usage_and_finish_reason(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    completion = await provider.complete(call("what is the capital of France"))

    assert completion.text == "[alpha] answer to: what is the capital of France"
    assert completion.usage == TokenUsage(prompt_tokens=6, completion_tokens=9)
    assert completion.finish_reason == "stop"
    [request] = upstream.calls("alpha")
    assert (request.stream, request.completed) == (False, True)


async def test_a_stream_yields_each_word_then_the_whole_completion(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="one two three")

    deltas, final = await streamed(provider, call())

    assert deltas == ["one ", "two ", "three"]
    assert final.text == "one two three"
    assert final.usage.completion_tokens == 3
    assert final.finish_reason == "stop"
    assert upstream.calls("alpha")[0].stream


async def test_system_messages_reach_the_upstream_as_its_system_prompt(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    turns = messages(
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "hello"),
        ("system", "and kind"),
        ("user", "why is the sky blue"),
    )

    await provider.complete(call(messages=turns))

    [request] = upstream.calls("alpha")
    recorded = [(m["role"], m["content"]) for m in request.messages]
    if request.protocol == "openai":  # OpenAI keeps system messages where they were
        assert recorded == [(m.role, m.content) for m in turns]
    else:  # the others take one system prompt, apart from the turns
        assert recorded == [
            ("system", "be brief\n\nand kind"),
            ("user", "hi"),
            ("assistant", "hello"),
            ("user", "why is the sky blue"),
        ]


async def test_temperature_and_max_tokens_reach_the_upstream(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    await provider.complete(call(temperature=0.3, max_tokens=64))

    [request] = upstream.calls("alpha")
    assert (request.temperature, request.max_tokens) == (0.3, 64)


async def test_an_answer_cut_at_max_tokens_finishes_with_length(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="one two three four five")

    whole = await provider.complete(call(max_tokens=2))
    deltas, final = await streamed(provider, call(max_tokens=2))

    assert (whole.text, whole.finish_reason) == ("one two ", "length")
    assert (deltas, final.finish_reason) == (["one ", "two "], "length")
    assert final.usage.completion_tokens == 2


async def test_per_prompt_answers_reply_to_each_prompt(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", answers={"2+2?": "4", "3+3?": "6"}, content="no idea")

    replies = [(await provider.complete(call(p))).text for p in ("2+2?", " 3+3? ", "1+1?")]

    assert replies == ["4", "6", "no idea"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_safety_block_is_an_error_the_request_caused_not_empty_text(
    provider: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", blocked="answer")

    with pytest.raises(ProviderError) as caught:
        if stream:
            await streamed(provider, call())
        else:
            await provider.complete(call())

    assert "safety filter blocked the answer" in str(caught.value)
    assert (caught.value.upstream_fault, caught.value.retryable) == (False, False)


async def test_one_blend_can_mix_all_three_protocols(
    settings: Settings, upstream: ScriptedUpstream
) -> None:
    upstream.script("judge", content="the blended answer")
    req = request("fake/alpha", "claude/beta", "gem/gamma", synthesizer="claude/judge")

    async with Runtime(settings) as runtime:
        answer = await blend(req, runtime)

    assert answer.content == "the blended answer"
    assert [s.status for s in answer.sources] == ["ok", "ok", "ok"]
    protocols = {r.model: r.protocol for r in upstream.requests}
    assert protocols == {
        "alpha": "openai",
        "beta": "anthropic",
        "gamma": "gemini",
        "judge": "anthropic",
    }
    [synthesis] = upstream.calls("judge")
    assert "[gamma] answer to:" in synthesis.messages[0]["content"]  # the system prompt


async def test_streams_one_after_another_reuse_one_connection(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    for _ in range(3):
        await streamed(provider, call())

    connections = {r.connection for r in upstream.calls("alpha")}
    assert len(connections) == 1, "each stream must leave its connection reusable"
