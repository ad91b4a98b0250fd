"""/v1/messages through the official ``anthropic`` SDK: a blend (or one plain model) answers
Anthropic's Messages API, streaming and not, with Anthropic's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest

from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.server.helpers import PAIR, QUESTION

BLEND = {"moa": {"models": PAIR, "synthesizer": "fake/synth"}}
ANSWER = "Paris is the capital of France."
SOURCE_ANSWER = "Paris."
USER: list[anthropic.types.MessageParam] = [{"role": "user", "content": QUESTION}]


def moa_summary(reply: anthropic.types.Message) -> dict[str, Any]:
    """The ``moa`` field moa adds to a message (unknown to the SDK's types)."""
    summary = reply.to_dict()["moa"]
    assert isinstance(summary, dict)
    return summary


@pytest.fixture(autouse=True)
def scripted(upstream: ScriptedUpstream) -> None:
    upstream.script("alpha", content=SOURCE_ANSWER)
    upstream.script("beta", content=SOURCE_ANSWER)
    upstream.script("synth", content=ANSWER)


@pytest.fixture
async def claude(served: ServedApp, api_key: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official Anthropic SDK pointed at moa (it sends the key as x-api-key)."""
    async with anthropic.AsyncAnthropic(
        base_url=served.url, api_key=api_key, max_retries=0, timeout=30
    ) as sdk:
        yield sdk


async def test_a_message_is_the_synthesized_answer(claude: anthropic.AsyncAnthropic) -> None:
    reply = await claude.messages.create(
        model="moa/consensus", max_tokens=1024, messages=USER, extra_body=BLEND
    )
    assert reply.id.startswith("msg_")
    assert reply.role == "assistant"
    assert reply.model == "moa/consensus"
    assert [(block.type, getattr(block, "text", None)) for block in reply.content] == [
        ("text", ANSWER)
    ]
    assert reply.stop_reason == "end_turn"
    assert reply.stop_sequence is None


async def test_a_message_reports_usage_and_moas_summary(
    claude: anthropic.AsyncAnthropic, store: Store, key_id: str
) -> None:
    reply = await claude.messages.create(
        model="moa/consensus", max_tokens=1024, messages=USER, extra_body=BLEND
    )
    summary = moa_summary(reply)
    assert reply.usage.input_tokens == summary["usage"]["prompt_tokens"] > 0
    assert reply.usage.output_tokens == summary["usage"]["completion_tokens"] > 0
    assert sorted(s["model"] for s in summary["sources"]) == PAIR
    assert summary["credits_charged"] == 4
    assert await store.balance(key_id) == 96 == summary["credits_remaining"]


async def test_a_streamed_message_arrives_as_text_deltas_with_usage_at_the_end(
    claude: anthropic.AsyncAnthropic,
) -> None:
    async with claude.messages.stream(
        model="moa/consensus", max_tokens=1024, messages=USER, extra_body=BLEND
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) > 1, "the synthesis streams token by token"
    assert "".join(pieces) == ANSWER
    assert final.content[0].type == "text" and final.content[0].text == ANSWER
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


async def test_the_stream_uses_anthropics_event_types_in_order(
    served: ServedApp, api_key: str
) -> None:
    body = {"model": "moa/consensus", "max_tokens": 64, "messages": USER, "stream": True, **BLEND}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        response = await http.post("/v1/messages", json=body, headers={"x-api-key": api_key})
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    kinds = [f.partition("\n")[0].removeprefix("event: ") for f in frames]
    datas = [json.loads(f.partition("\ndata: ")[2]) for f in frames]
    assert all(data["type"] == kind for kind, data in zip(kinds, datas, strict=True))
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("ping") == 3, "one at the start, one as each source finishes"
    assert "content_block_delta" in kinds
    assert datas[-2]["delta"]["stop_reason"] == "end_turn"


async def test_a_plain_model_answers_alone_at_the_chat_price(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    reply = await claude.messages.create(model="fake/alpha", max_tokens=64, messages=USER)
    assert reply.content[0].type == "text" and reply.content[0].text == SOURCE_ANSWER
    assert [r.model for r in upstream.requests] == ["alpha"]
    assert await store.balance(key_id) == 99


async def test_a_plain_model_fails_over_to_moa_fallback(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("backup", content="From the backup.")
    reply = await claude.messages.create(
        model="fake/alpha",
        max_tokens=64,
        messages=USER,
        extra_body={"moa": {"fallback": ["spare/backup"]}},
    )
    assert reply.content[0].type == "text" and reply.content[0].text == "From the backup."
    assert moa_summary(reply)["model"] == "spare/backup"


async def test_system_as_text_blocks_and_content_blocks_reach_the_models(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    await claude.messages.create(
        model="fake/alpha",
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": " Be kind."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
    )
    (call,) = upstream.requests
    assert call.messages == [
        {"role": "system", "content": "Be brief. Be kind."},
        {"role": "user", "content": QUESTION},
    ]


async def test_max_tokens_and_temperature_reach_the_synthesizer(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    await claude.messages.create(
        model="moa/consensus",
        max_tokens=77,
        messages=USER,
        extra_body={**BLEND, "temperature": 0.3},  # this SDK no longer takes it as an argument
    )
    (synthesis,) = upstream.calls("synth")
    assert synthesis.max_tokens == 77
    assert synthesis.temperature == 0.3


async def test_an_answer_cut_at_its_budget_stops_for_max_tokens(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="one two three four five six seven eight")
    reply = await claude.messages.create(
        model="moa/consensus", max_tokens=5, messages=USER, extra_body=BLEND
    )
    assert reply.stop_reason == "max_tokens"


async def test_an_answer_that_ends_exactly_at_its_budget_ends_its_turn(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="one two three four five")
    reply = await claude.messages.create(
        model="moa/consensus", max_tokens=5, messages=USER, extra_body=BLEND
    )
    assert reply.stop_reason == "end_turn"


async def test_a_stop_sequence_cuts_the_answer_and_is_reported(
    claude: anthropic.AsyncAnthropic,
) -> None:
    reply = await claude.messages.create(
        model="moa/consensus",
        max_tokens=64,
        messages=USER,
        stop_sequences=["the capital"],
        extra_body=BLEND,
    )
    assert reply.content[0].type == "text" and reply.content[0].text == "Paris is "
    assert reply.stop_reason == "stop_sequence"
    assert reply.stop_sequence == "the capital"


async def test_a_stop_sequence_split_across_streamed_tokens_still_cuts(
    claude: anthropic.AsyncAnthropic,
) -> None:
    async with claude.messages.stream(
        model="moa/consensus",
        max_tokens=64,
        messages=USER,
        stop_sequences=["s the cap"],
        extra_body=BLEND,
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Paris i"
    assert final.stop_reason == "stop_sequence"
    assert final.stop_sequence == "s the cap"


# ---- errors, in Anthropic's shape ----------------------------------------------------------


async def test_without_a_key_the_sdk_gets_an_authentication_error(served: ServedApp) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=served.url, api_key="sk-not-a-moa-key", max_retries=0
    ) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await sdk.messages.create(model="moa/consensus", max_tokens=8, messages=USER)
    assert caught.value.status_code == 401
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "the API key is not valid or has been revoked",
            "code": "unauthorized",
        },
    }


async def test_a_missing_key_names_both_ways_to_send_one(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.post("/v1/messages", json={})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "missing API key: send 'x-api-key: <key>' or 'Authorization: Bearer <key>'"
    )


async def test_a_bearer_key_is_accepted_too(served: ServedApp, api_key: str) -> None:
    body = {"model": "fake/alpha", "max_tokens": 8, "messages": USER}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        response = await http.post(
            "/v1/messages", json=body, headers={"Authorization": f"Bearer {api_key}"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["type"] == "message"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "moa/consensus", "messages": USER}, "max_tokens: field required"),
        (
            {
                "model": "moa/consensus",
                "max_tokens": 8,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {"type": "image", "source": {"type": "base64", "data": "AA=="}},
                        ],
                    }
                ],
            },
            "messages[0].content[1].type: only text blocks are supported, got 'image'",
        ),
        (
            {"model": "moa/nope", "max_tokens": 8, "messages": USER},
            "model: 'moa/nope' is not available",
        ),
        (
            {"model": "fake/alpha", "max_tokens": 8, "messages": USER, "moa": {"layers": 2}},
            "moa.layers: only with a blend",
        ),
        (
            {"model": "fake/alpha", "max_tokens": 8, "messages": USER, "tools": [{"name": "x"}]},
            "tools: blends do not call tools",
        ),
        (
            {
                "model": "fake/alpha",
                "max_tokens": 8,
                "messages": USER,
                "stop_sequences": ["x" * 257],
            },
            "stop_sequences",
        ),
    ],
)
async def test_bad_requests_are_invalid_request_errors_naming_the_field(
    claude: anthropic.AsyncAnthropic, body: dict[str, object], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.post("/v1/messages", body=body, cast_to=httpx.Response)
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(message)


async def test_a_key_without_credits_gets_a_billing_error(served: ServedApp, store: Store) -> None:
    _, poor = await store.create_key(credits=1, name="poor")
    async with anthropic.AsyncAnthropic(base_url=served.url, api_key=poor, max_retries=0) as sdk:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await sdk.messages.create(
                model="moa/consensus", max_tokens=8, messages=USER, extra_body=BLEND
            )
    assert caught.value.status_code == 402
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "billing_error"


async def test_a_blend_whose_sources_all_fail_is_an_api_error_and_costs_nothing(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    with pytest.raises(anthropic.APIStatusError) as caught:
        await claude.messages.create(
            model="moa/consensus", max_tokens=8, messages=USER, extra_body=BLEND
        )
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["code"] == "all_sources_failed"
    assert await store.balance(key_id) == 100


async def test_a_stream_that_fails_ends_with_an_error_event(
    claude: anthropic.AsyncAnthropic, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with claude.messages.stream(
            model="moa/consensus", max_tokens=8, messages=USER, extra_body=BLEND
        ) as stream:
            [text async for text in stream.text_stream]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "api_error"
    assert caught.value.body["error"]["code"] == "all_sources_failed"


def test_a_tool_that_only_speaks_anthropic_uses_blends_through_anthropic_base_url(
    served: ServedApp, api_key: str
) -> None:
    """The tool is configured the way such tools are: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY
    in its environment, and nothing about moa in its code."""
    tool = (
        "import anthropic\n"
        "reply = anthropic.Anthropic(max_retries=0).messages.create(\n"
        "    model='moa/consensus', max_tokens=256,\n"
        "    messages=[{'role': 'user', 'content': 'What is the capital of France?'}],\n"
        "    extra_body={'moa': {'models': ['fake/alpha', 'fake/beta'],"
        " 'synthesizer': 'fake/synth'}})\n"
        "print(reply.content[0].text)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env |= {"ANTHROPIC_BASE_URL": served.url, "ANTHROPIC_API_KEY": api_key}
    result = subprocess.run(
        [sys.executable, "-c", tool], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ANSWER


async def test_more_stop_sequences_than_moa_takes_is_a_400_naming_them(
    claude: anthropic.AsyncAnthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(
            model="moa/consensus",
            max_tokens=16,
            messages=USER,
            stop_sequences=["a", "b", "c", "d", "e"],
            extra_body=BLEND,
        )
    assert "stop_sequences" in str(refused.value)
