"""The Anthropic provider over real HTTP: what it sends (system field, clamped temperature,
``top_p`` alone, stop sequences, a forced tool for JSON) and what it reads back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moa.errors import ProviderError
from moa.providers.anthropic import DEFAULT_MAX_TOKENS
from moa.providers.base import Provider
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream
from tests.providers.conftest import call, messages, streamed

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}}


@pytest.fixture
def claude(registry: ProviderRegistry) -> Provider:
    return registry.resolve("claude/alpha")[0]


def sent(upstream: ScriptedUpstream) -> dict[str, Any]:
    [request] = upstream.calls("alpha")
    return request.body


async def test_the_system_prompt_goes_in_the_system_field_not_the_turns(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    await claude.complete(call(messages=messages(("system", "be brief"), ("user", "hi"))))

    body = sent(upstream)
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": "hi"}]


async def test_max_tokens_is_always_sent_because_anthropic_requires_it(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    await claude.complete(call())

    assert sent(upstream)["max_tokens"] == DEFAULT_MAX_TOKENS


async def test_a_temperature_above_anthropics_range_is_clamped_to_1(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    completion = await claude.complete(call(temperature=1.6))

    assert sent(upstream)["temperature"] == 1.0
    assert completion.text.startswith("[alpha]")


async def test_top_p_is_sent_alone_because_current_models_refuse_both(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    await claude.complete(call(temperature=0.7, top_p=0.9, seed=3, stop=("END",)))

    body = sent(upstream)
    assert body["top_p"] == 0.9
    assert "temperature" not in body
    assert "seed" not in body  # Anthropic has no seed
    assert body["stop_sequences"] == ["END"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_json_schema_is_asked_for_by_forcing_a_tool_and_its_input_is_the_answer(
    claude: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", content='{"answer": "Paris"}')

    if stream:
        deltas, completion = await streamed(claude, call(response_format=JSON_SCHEMA))
        assert "".join(deltas) == completion.text
    else:
        completion = await claude.complete(call(response_format=JSON_SCHEMA))

    assert json.loads(completion.text) == {"answer": "Paris"}
    assert completion.finish_reason == "stop"
    body = sent(upstream)
    [tool] = body["tools"]
    assert (tool["name"], tool["input_schema"]) == ("verdict", SCHEMA)
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}


async def test_json_object_forces_a_tool_that_takes_any_object(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content='{"x": 1}')

    completion = await claude.complete(call(response_format={"type": "json_object"}))

    assert json.loads(completion.text) == {"x": 1}
    [tool] = sent(upstream)["tools"]
    assert (tool["name"], tool["input_schema"]) == ("json_reply", {"type": "object"})


async def test_a_schema_name_anthropic_would_refuse_becomes_json_reply(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    odd = {"type": "json_schema", "json_schema": {"name": "my verdict!", "schema": SCHEMA}}

    await claude.complete(call(response_format=odd))

    assert sent(upstream)["tool_choice"] == {"type": "tool", "name": "json_reply"}


async def test_usage_comes_from_message_start_and_the_last_message_delta(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="a b c d")

    _, completion = await streamed(claude, call("one two three"))

    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (3, 4)


async def test_an_overloaded_anthropic_is_the_upstreams_fault_and_retryable(
    claude: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=529, error_message="Overloaded")

    with pytest.raises(ProviderError) as caught:
        await claude.complete(call())

    assert str(caught.value) == "HTTP 529: the upstream is overloaded"
    assert (caught.value.retryable, caught.value.upstream_fault) == (True, True)
