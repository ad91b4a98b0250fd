"""The OpenAI-compatible provider: request options pass through as OpenAI names them, and a
server without ``json_schema`` gets the call once more as ``json_object``."""

from __future__ import annotations

from typing import Any

import pytest

from moa.errors import ProviderError
from moa.providers.base import Provider
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream
from tests.providers.conftest import call, streamed

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA}}


@pytest.fixture
def openai(registry: ProviderRegistry) -> Provider:
    return registry.resolve("fake/alpha")[0]


async def test_request_options_pass_through_under_openais_names(
    openai: Provider, upstream: ScriptedUpstream
) -> None:
    options: dict[str, Any] = {"response_format": JSON_SCHEMA, "seed": 7, "top_p": 0.9}

    await openai.complete(call(stop=("END", "STOP"), **options))

    [request] = upstream.calls("alpha")
    assert {key: request.body[key] for key in options} == options
    assert request.body["stop"] == ["END", "STOP"]


async def test_options_left_unset_are_not_sent(
    openai: Provider, upstream: ScriptedUpstream
) -> None:
    await openai.complete(call())

    [request] = upstream.calls("alpha")
    assert set(request.body) == {"model", "messages"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_server_without_json_schema_gets_one_retry_with_json_object(
    openai: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", json_schema=False, content='{"answer": "Paris"}')

    if stream:
        _, completion = await streamed(openai, call(response_format=JSON_SCHEMA))
    else:
        completion = await openai.complete(call(response_format=JSON_SCHEMA))

    assert completion.text == '{"answer": "Paris"}'
    formats = [r.body["response_format"] for r in upstream.calls("alpha")]
    assert formats == [JSON_SCHEMA, {"type": "json_object"}]
    assert [r.status for r in upstream.calls("alpha")] == [400, 200]


async def test_the_json_object_retry_happens_once_and_reports_the_second_failure(
    openai: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)

    with pytest.raises(ProviderError) as caught:
        await openai.complete(call(response_format=JSON_SCHEMA))

    assert caught.value.status == 400
    assert len(upstream.calls("alpha")) == 2


async def test_a_400_without_json_schema_is_not_retried(
    openai: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)

    with pytest.raises(ProviderError):
        await openai.complete(call(response_format={"type": "json_object"}))

    assert len(upstream.calls("alpha")) == 1
