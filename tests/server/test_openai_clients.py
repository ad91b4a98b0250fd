"""/v1/chat/completions as OpenAI clients expect it: one id per request, options that
reach the answering call, single models, roles, tools, early bytes, and LangChain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import openai
import pytest

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import PAIR, USER, error_of

BLEND = {"moa": {"models": PAIR, "synthesizer": "fake/synth"}}


@pytest.fixture(autouse=True)
def scripted(upstream: ScriptedUpstream) -> None:
    upstream.script("alpha", content="Paris.", latency_ms=50)
    upstream.script("beta", content="Paris.", latency_ms=50)
    upstream.script("synth", content="Paris is the capital of France.")


async def test_every_chunk_of_a_stream_carries_the_request_id(client: httpx.AsyncClient) -> None:
    body = {"model": "moa/consensus", "messages": USER, "stream": True, **BLEND}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        request_id = response.headers["x-request-id"]
        lines = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    ids = {line.split('"id":"', 1)[1].split('"', 1)[0] for line in lines}
    assert ids == {f"chatcmpl-{request_id}"}


async def test_a_completion_id_carries_the_request_id_the_client_sent(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": "moa/consensus", "messages": USER, **BLEND}
    response = await client.post(
        "/v1/chat/completions", json=body, headers={"X-Request-ID": "trace-42"}
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["id"] == "chatcmpl-trace-42"
    assert response.json()["moa"]["id"] == "trace-42"


async def test_answer_options_reach_the_synthesizer_and_sources_answer_freely(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    await openai_client.chat.completions.create(
        model="moa/consensus",
        messages=USER,
        extra_body=BLEND,
        response_format={"type": "json_object"},
        stop=["\n\n"],
        seed=7,
        top_p=0.5,
    )
    synth = upstream.calls("synth")[0].body
    assert synth["response_format"] == {"type": "json_object"}
    assert synth["stop"] == ["\n\n"]
    assert synth["seed"] == 7
    assert synth["top_p"] == 0.5
    for source in ("alpha", "beta"):
        sent = upstream.calls(source)[0].body
        assert "response_format" not in sent and "stop" not in sent and "top_p" not in sent


async def test_a_plain_model_answers_alone_at_the_chat_price(
    deploy: Callable[..., Awaitable[Deployment]], upstream: ScriptedUpstream
) -> None:
    moa = await deploy()
    async with openai.AsyncOpenAI(
        base_url=moa.url + "/v1", api_key=moa.key, max_retries=0, timeout=30
    ) as sdk:
        completion = await sdk.chat.completions.create(
            model="fake/alpha", messages=USER, top_p=0.3, stop="END"
        )
    assert completion.choices[0].message.content == "Paris."
    assert completion.model == "fake/alpha"
    assert [len(upstream.calls(m)) for m in ("alpha", "beta", "synth")] == [1, 0, 0]
    assert upstream.calls("alpha")[0].body["stop"] == ["END"]
    assert await moa.balance() == 99


async def test_a_plain_model_fails_over_to_its_moa_fallback(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=500)
    stream = await openai_client.chat.completions.create(
        model="fake/alpha",
        messages=USER,
        stream=True,
        extra_body={"moa": {"fallback": ["spare/beta"]}},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Paris."
    assert upstream.calls("beta")[0].authorization == "Bearer sk-spare"


async def test_blend_fields_on_a_plain_model_are_refused_by_name(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": "fake/alpha", "messages": USER, "moa": {"models": PAIR}}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("moa.models:")


async def test_tools_on_a_blend_are_refused_saying_blends_do_not_call_tools(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body = {"model": "moa/consensus", "messages": USER, "tools": [tool], **BLEND}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert error_of(response)["message"] == "tools: blends do not call tools"
    assert upstream.requests == []


async def test_developer_and_tool_messages_are_accepted(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    messages: list[Any] = [
        {"role": "developer", "content": "Answer in one word."},
        *USER,
        {"role": "tool", "content": "lookup: Paris", "tool_call_id": "call_1"},
    ]
    await openai_client.chat.completions.create(
        model="moa/consensus", messages=messages, extra_body=BLEND
    )
    sent = upstream.calls("alpha")[0].messages
    assert sent[0] == {"role": "system", "content": "Answer in one word."}
    assert sent[-1]["role"] == "user" and "lookup: Paris" in sent[-1]["content"]


async def test_a_stream_sends_progress_comments_before_the_first_token(
    client: httpx.AsyncClient,
) -> None:
    body = {"model": "moa/consensus", "messages": USER, "stream": True, **BLEND}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line]
    first_text = next(i for i, line in enumerate(lines) if '"content":"Paris' in line)
    comments = [line for line in lines[:first_text] if line.startswith(":")]
    assert comments == [": source fake/alpha complete", ": source fake/beta complete"] or (
        sorted(comments) == [": source fake/alpha complete", ": source fake/beta complete"]
    )


async def test_the_model_list_offers_only_models_the_endpoint_accepts(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy(models={"fake/alpha": {"input_usd_per_mtok": 1.0}})
    async with openai.AsyncOpenAI(
        base_url=moa.url + "/v1", api_key=moa.key, max_retries=0, timeout=30
    ) as sdk:
        ids = [model.id async for model in sdk.models.list()]
        assert "fake/alpha" in ids
        assert "openai/gpt-4o" not in ids, "no OPENAI_API_KEY here: it would be refused"
        assert "ollama/llama3.2" not in ids, "keyless built-ins are not enabled"
        for model_id in ids:
            if "/" in model_id and not model_id.startswith("moa/"):
                reply = await sdk.chat.completions.create(model=model_id, messages=USER)
                assert reply.choices[0].message.content


async def test_langchain_chat_openai_invokes_and_streams_a_blend(served: Any, api_key: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        model="moa/consensus",
        base_url=served.url + "/v1",
        api_key=api_key,
        max_retries=0,
        timeout=30,
        extra_body=BLEND,
        stream_usage=True,
    )
    reply = await chat.ainvoke("What is the capital of France?")
    assert reply.content == "Paris is the capital of France."
    pieces = [piece async for piece in chat.astream("What is the capital of France?")]
    assert "".join(str(p.content) for p in pieces) == "Paris is the capital of France."
    usage = [p.usage_metadata for p in pieces if p.usage_metadata]
    assert usage and usage[-1]["total_tokens"] > 0


async def test_an_answer_cut_at_max_tokens_finishes_with_length(
    openai_client: openai.AsyncOpenAI, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="one two three four five six seven eight")
    cut = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND, max_tokens=3
    )
    assert cut.choices[0].finish_reason == "length"
    whole = await openai_client.chat.completions.create(
        model="moa/consensus", messages=USER, extra_body=BLEND, max_tokens=100
    )
    assert whole.choices[0].finish_reason == "stop"
    stream = await openai_client.chat.completions.create(
        model="fake/synth", messages=USER, max_tokens=3, stream=True
    )
    reasons = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert reasons[-1] == "length"
