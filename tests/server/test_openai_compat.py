"""/v1/chat/completions through the official ``openai`` SDK: a blend is just another model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import openai
import pytest

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import PAIR, QUESTION, USER

BLEND = {"moa": {"models": PAIR, "synthesizer": "fake/synth"}}
ANSWER = "Paris is the capital of France."
SOURCE_ANSWER = "Paris."
COMPLETION_TOKENS = 2 * len(SOURCE_ANSWER.split()) + len(ANSWER.split())  # sources + synthesis
COUNCIL = (
    '{"final_answer": "Paris, all agree.", "agreement_points": ["Paris"], '
    '"disagreement_points": [], "follow_up_questions": []}'
)


@pytest.fixture(autouse=True)
def scripted(upstream: ScriptedUpstream) -> None:
    upstream.script("alpha", content=SOURCE_ANSWER)
    upstream.script("beta", content=SOURCE_ANSWER)
    upstream.script("synth", content=ANSWER)


@pytest.fixture
async def research(
    deploy: Callable[..., Awaitable[Deployment]], upstream: ScriptedUpstream
) -> AsyncIterator[openai.AsyncOpenAI]:
    """moa with a ``research`` preset (council of alpha and beta, chaired by chair)."""
    upstream.script("chair", content=COUNCIL)
    preset = {"models": PAIR, "strategy": "council", "synthesizer": "fake/chair"}
    moa = await deploy(presets={"research": preset})
    async with openai.AsyncOpenAI(
        base_url=moa.url + "/v1", api_key=moa.key, max_retries=0, timeout=30
    ) as sdk:
        yield sdk


async def test_a_completion_is_the_synthesized_answer(openai_client: openai.AsyncOpenAI) -> None:
    completion = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND
    )
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "moa/consensus"


async def test_a_completion_reports_the_blends_token_usage(
    openai_client: openai.AsyncOpenAI,
) -> None:
    completion = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == COMPLETION_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_the_blend_runs_on_the_models_named_in_the_moa_field(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND
    )
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "synth")] == [1, 1, 1]
    assert upstream.calls("alpha")[0].messages[-1]["content"] == QUESTION


async def test_streamed_deltas_join_into_the_answer(openai_client: openai.AsyncOpenAI) -> None:
    stream = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND, stream=True
    )
    deltas = [c.choices[0].delta.content async for c in stream if c.choices]
    assert len([d for d in deltas if d]) > 1
    assert "".join(d or "" for d in deltas) == ANSWER


async def test_usage_comes_as_a_last_chunk_without_choices_when_asked_for(
    openai_client: openai.AsyncOpenAI,
) -> None:
    stream = await openai_client.chat.completions.create(
        model="moa/consensus",
        messages=USER,
        extra_body=BLEND,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert [c.usage is not None for c in chunks].count(True) == 1
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == COMPLETION_TOKENS
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_a_stream_carries_no_usage_unless_asked_for(
    openai_client: openai.AsyncOpenAI,
) -> None:
    stream = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_preset_from_moa_toml_is_a_model(research: openai.AsyncOpenAI) -> None:
    completion = await research.chat.completions.create(model="research", messages=USER)
    assert completion.choices[0].message.content == "Paris, all agree."


async def test_a_preset_blends_with_its_own_models_and_synthesizer(
    research: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    await research.chat.completions.create(model="research", messages=USER)
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "chair")] == [1, 1, 1]


async def test_an_unknown_model_is_a_bad_request_listing_the_models_to_use(
    research: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await research.chat.completions.create(model="gpt-4o", messages=USER)
    message = str(refused.value)
    assert "gpt-4o" in message
    assert all(name in message for name in ("moa/consensus", "moa/self_moa", "research"))


async def test_blend_fields_in_moa_are_checked_like_a_blend(
    openai_client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await openai_client.chat.completions.create(
            model="moa/consensus", messages=USER, extra_body={"moa": {"models": ["fake/alpha"]}}
        )
    assert "moa.models" in str(refused.value)
    assert "2-6" in str(refused.value)


async def test_the_model_list_offers_every_strategy(openai_client: openai.AsyncOpenAI) -> None:
    ids = [model.id async for model in openai_client.models.list()]
    assert {
        f"moa/{s}" for s in ("consensus", "council", "best_of", "chain", "moa", "self_moa")
    } <= set(ids)


async def test_the_model_list_offers_the_presets(research: openai.AsyncOpenAI) -> None:
    ids = [model.id async for model in research.models.list()]
    assert "research" in ids


async def test_a_completion_is_charged_as_a_blend(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy()
    async with openai.AsyncOpenAI(
        base_url=moa.url + "/v1", api_key=moa.key, max_retries=0, timeout=30
    ) as sdk:
        await sdk.chat.completions.create(model="moa/consensus", messages=USER, extra_body=BLEND)
    assert await moa.balance() == 96


async def test_a_wrong_key_is_an_authentication_error(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        await openai_client.with_options(api_key="moa_sk_wrong").chat.completions.create(
            model="moa/consensus", messages=USER, extra_body=BLEND
        )


async def test_a_completion_whose_sources_all_fail_raises_a_server_error(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    with pytest.raises(openai.InternalServerError) as failed:
        await openai_client.chat.completions.create(
            model="moa/consensus", messages=USER, extra_body=BLEND
        )
    assert failed.value.status_code == 502
    assert "all_sources_failed" in str(failed.value.body)


async def test_a_stream_whose_sources_all_fail_raises_in_the_sdk(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    stream = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND, stream=True
    )
    with pytest.raises(openai.APIError) as failed:
        _ = [chunk async for chunk in stream]
    assert "every source failed" in failed.value.message
