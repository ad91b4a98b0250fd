"""The Gemini provider over real HTTP: ``systemInstruction``, ``generationConfig`` options,
JSON output, safety blocks as errors, Google's RetryInfo, and a model name that cannot leave
the models path."""

from __future__ import annotations

from typing import Any

import pytest

from moa.errors import ProviderError
from moa.providers.base import ChatCall, Provider
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream
from tests.providers.conftest import KEY, call, messages, streamed

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}}


@pytest.fixture
def gemini(registry: ProviderRegistry) -> Provider:
    return registry.resolve("gem/alpha")[0]


def sent(upstream: ScriptedUpstream) -> dict[str, Any]:
    [request] = upstream.calls("alpha")
    return request.body


async def test_system_messages_become_the_system_instruction_and_assistant_is_model(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    turns = messages(("system", "be brief"), ("user", "hi"), ("assistant", "yo"), ("user", "?"))

    await gemini.complete(call(messages=turns))

    body = sent(upstream)
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]


async def test_request_options_go_in_the_generation_config(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    await gemini.complete(call(temperature=0.4, max_tokens=50, top_p=0.8, seed=11, stop=("END",)))

    assert sent(upstream)["generationConfig"] == {
        "temperature": 0.4,
        "maxOutputTokens": 50,
        "topP": 0.8,
        "seed": 11,
        "stopSequences": ["END"],
    }


async def test_a_json_schema_asks_for_json_with_that_schema(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content='{"answer": "Paris"}')

    completion = await gemini.complete(call(response_format=JSON_SCHEMA))

    assert completion.text == '{"answer": "Paris"}'
    config = sent(upstream)["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}


async def test_json_object_asks_for_json_without_a_schema(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    await gemini.complete(call(response_format={"type": "json_object"}))

    assert sent(upstream)["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_blocked_prompt_is_an_error_naming_the_block_reason(
    gemini: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", blocked="prompt")

    with pytest.raises(ProviderError) as caught:
        if stream:
            await streamed(gemini, call())
        else:
            await gemini.complete(call())

    assert str(caught.value) == "the upstream's safety filter blocked the prompt (SAFETY)"
    assert (caught.value.upstream_fault, caught.value.retryable) == (False, False)


async def test_a_blocked_answer_names_its_finish_reason(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", blocked="answer")

    with pytest.raises(ProviderError) as caught:
        await gemini.complete(call())

    assert str(caught.value) == "the upstream's safety filter blocked the answer (SAFETY)"


async def test_the_retry_delay_comes_from_googles_retry_info(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=429, retry_after=17)

    with pytest.raises(ProviderError) as caught:
        await gemini.complete(call())

    assert caught.value.retry_after == 17.0


async def test_the_key_travels_in_a_header_never_in_the_url(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    await gemini.complete(call())

    [request] = upstream.calls("alpha")
    assert request.headers["x-goog-api-key"] == KEY
    assert "authorization" not in request.headers


async def test_a_model_name_cannot_reach_another_path(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    odd = "../../v1/chat/completions"

    await gemini.complete(ChatCall(odd, messages(("user", "hi"))))

    [request] = upstream.requests
    assert (request.protocol, request.model) == ("gemini", odd)


async def test_an_empty_answer_is_empty_text_not_a_block(
    gemini: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="")

    completion = await gemini.complete(call())

    assert completion.text == ""
    assert completion.finish_reason == "stop"
