"""The scripted upstream's Anthropic and Gemini endpoints must look real to real clients
(the official ``anthropic`` SDK; raw HTTP for Gemini, which moa speaks without an SDK), and
one ``Behavior`` must script all three protocols the same way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from moa.testing import ScriptedUpstream

ASK: Any = [{"role": "user", "content": "what is the capital of France"}]
REPLY = {
    "id": "msg_0",
    "type": "message",
    "role": "assistant",
    "model": "alpha",
    "content": [{"type": "text", "text": "warm-up"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
GEMINI_ASK: Any = {
    "contents": [{"role": "user", "parts": [{"text": "what is the capital of France"}]}]
}


@pytest.fixture
def up() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture
async def claude(up: ScriptedUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # Built off the event loop, as moa builds its clients: creating one loads TLS settings,
    # and the SDK imports its resources and builds its reply types on first use.
    sdk = await asyncio.to_thread(
        anthropic.AsyncAnthropic, base_url=up.anthropic_base_url, api_key="sk-ant", max_retries=0
    )
    await asyncio.to_thread(lambda: (sdk.messages, anthropic.types.Message.model_validate(REPLY)))
    async with sdk:
        yield sdk


@pytest.fixture
async def gpt(up: ScriptedUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = await asyncio.to_thread(
        openai.AsyncOpenAI, base_url=up.base_url, api_key="sk-test", max_retries=0
    )
    await asyncio.to_thread(lambda: sdk.chat.completions)
    async with sdk:
        yield sdk


@pytest.fixture
async def raw(up: ScriptedUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with await asyncio.to_thread(httpx.AsyncClient, base_url=up.url) as client:
        yield client


def text_of(message: anthropic.types.Message) -> str:
    """The message's text, which must be its only content."""
    [block] = message.content
    assert isinstance(block, anthropic.types.TextBlock)
    return block.text


def sse(text: str) -> list[tuple[str, Any]]:
    """(event name, data) of each server-sent event."""
    events = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


async def test_anthropic_messages_answer_with_text_stop_reason_and_usage(
    up: ScriptedUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    message = await claude.messages.create(
        model="alpha",
        max_tokens=100,
        system="be brief",
        messages=ASK,
    )

    assert text_of(message) == "[alpha] answer to: what is the capital of France"
    assert (message.stop_reason, message.usage.input_tokens) == ("end_turn", 8)
    [call] = up.calls("alpha")
    assert call.protocol == "anthropic"
    assert call.messages == [{"role": "system", "content": "be brief"}, *ASK]


async def test_an_anthropic_stream_sends_anthropics_event_types_in_order(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    up.script("alpha", content="one two")
    body = {"model": "alpha", "max_tokens": 1, "messages": ASK, "stream": True}

    events = sse((await raw.post("/v1/messages", json=body)).text)

    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    assert events[3][1]["delta"] == {"type": "text_delta", "text": "one "}
    assert events[5][1]["delta"]["stop_reason"] == "max_tokens"
    assert events[5][1]["usage"] == {"output_tokens": 1}


async def test_the_anthropic_sdk_streams_the_text(
    up: ScriptedUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    up.script("alpha", content="one two three")

    async with claude.messages.stream(model="alpha", max_tokens=9, messages=ASK) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert texts == ["one ", "two ", "three"]
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 3)


async def test_anthropic_errors_have_anthropics_shape_and_retry_after(
    up: ScriptedUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    up.script("alpha", status=429, retry_after=0.5, error_message="slow down")

    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model="alpha", max_tokens=5, messages=ASK)

    assert caught.value.response.headers["retry-after"] == "0.5"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


@pytest.mark.parametrize(
    "fields, complaint",
    [
        ({}, "max_tokens: Field required"),
        ({"max_tokens": 5, "temperature": 1.5}, "temperature"),
        ({"max_tokens": 5, "temperature": 0.5, "top_p": 0.9}, "cannot both be specified"),
    ],
)
async def test_anthropic_requests_are_checked_as_anthropic_checks_them(
    up: ScriptedUpstream, raw: httpx.AsyncClient, fields: dict[str, Any], complaint: str
) -> None:
    response = await raw.post("/v1/messages", json={"model": "alpha", "messages": ASK, **fields})

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert complaint in response.json()["error"]["message"]
    assert up.requests == []


async def test_a_forced_anthropic_tool_answers_with_the_scripted_json_as_its_input(
    up: ScriptedUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    up.script("alpha", content='{"answer": "Paris"}')

    message = await claude.messages.create(
        model="alpha",
        max_tokens=50,
        messages=ASK,
        tools=[{"name": "verdict", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "verdict"},
    )

    [block] = message.content
    assert block.type == "tool_use"
    assert (block.name, block.input) == ("verdict", {"answer": "Paris"})
    assert message.stop_reason == "tool_use"


async def test_gemini_generate_content_answers_with_candidates_and_usage(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    body = GEMINI_ASK | {"systemInstruction": {"parts": [{"text": "be brief"}]}}

    reply = (await raw.post("/v1beta/models/alpha:generateContent", json=body)).json()

    [candidate] = reply["candidates"]
    assert candidate["content"]["parts"] == [
        {"text": "[alpha] answer to: what is the capital of France"}
    ]
    assert candidate["finishReason"] == "STOP"
    assert reply["usageMetadata"] == {
        "promptTokenCount": 8,
        "candidatesTokenCount": 9,
        "totalTokenCount": 17,
    }
    [call] = up.calls("alpha")
    assert (call.protocol, call.messages[0]) == (
        "gemini",
        {"role": "system", "content": "be brief"},
    )


async def test_a_gemini_stream_sends_one_response_per_token_then_the_finish(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    up.script("alpha", content="one two")

    response = await raw.post(
        "/v1beta/models/alpha:streamGenerateContent", params={"alt": "sse"}, json=GEMINI_ASK
    )
    events = [data for _, data in sse(response.text)]

    texts = [e["candidates"][0]["content"]["parts"][0]["text"] for e in events]
    assert texts == ["one ", "two", ""]
    assert [e["candidates"][0].get("finishReason") for e in events] == [None, None, "STOP"]
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 2


async def test_gemini_errors_carry_the_retry_delay_as_retry_info(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    up.script("alpha", status=429, retry_after=17)

    response = await raw.post("/v1beta/models/alpha:generateContent", json=GEMINI_ASK)

    assert response.status_code == 429
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["details"][0]["retryDelay"] == "17s"


async def test_gemini_safety_blocks_look_like_googles(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    url = "/v1beta/models/{}:generateContent"
    up.script("prompt", blocked="prompt")
    up.script("answer", blocked="answer")

    prompt = (await raw.post(url.format("prompt"), json=GEMINI_ASK)).json()
    answer = (await raw.post(url.format("answer"), json=GEMINI_ASK)).json()

    assert prompt["promptFeedback"]["blockReason"] == "SAFETY"
    assert "candidates" not in prompt
    assert answer["candidates"][0]["finishReason"] == "SAFETY"
    assert "content" not in answer["candidates"][0]


async def test_a_gemini_stream_without_alt_sse_is_refused(
    up: ScriptedUpstream, raw: httpx.AsyncClient
) -> None:
    response = await raw.post("/v1beta/models/alpha:streamGenerateContent", json=GEMINI_ASK)

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_answers_scripted_over_http_reply_per_prompt_on_every_protocol(
    raw: httpx.AsyncClient, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    answers = {"what is the capital of France": "Paris", "2+2": "4"}
    scripted = await raw.post("/_script", json={"model": "alpha", "answers": answers})
    via_openai = await gpt.chat.completions.create(model="alpha", messages=ASK)
    via_claude = await claude.messages.create(model="alpha", max_tokens=9, messages=ASK)
    via_gemini = await raw.post("/v1beta/models/alpha:generateContent", json=GEMINI_ASK)

    assert scripted.status_code == 200
    assert via_openai.choices[0].message.content == "Paris"
    assert text_of(via_claude) == "Paris"
    assert via_gemini.json()["candidates"][0]["content"]["parts"][0]["text"] == "Paris"


async def test_openai_replies_finish_with_length_when_cut_and_content_filter_when_blocked(
    up: ScriptedUpstream, gpt: openai.AsyncOpenAI
) -> None:
    up.script("blocked", blocked="answer")

    cut = await gpt.chat.completions.create(model="alpha", messages=ASK, max_tokens=2)
    blocked = await gpt.chat.completions.create(model="blocked", messages=ASK)

    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == (
        "[alpha] answer ",
        "length",
    )
    assert (blocked.choices[0].message.content, blocked.choices[0].finish_reason) == (
        "",
        "content_filter",
    )


async def test_a_model_without_json_schema_refuses_it_with_400(
    up: ScriptedUpstream, gpt: openai.AsyncOpenAI
) -> None:
    up.script("alpha", json_schema=False)
    schema: Any = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}

    with pytest.raises(openai.BadRequestError):
        await gpt.chat.completions.create(model="alpha", messages=ASK, response_format=schema)
    plain = await gpt.chat.completions.create(
        model="alpha", messages=ASK, response_format={"type": "json_object"}
    )

    assert plain.choices[0].message.content
    assert [c.status for c in up.calls("alpha")] == [400, 200]
