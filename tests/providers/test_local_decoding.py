"""How the embedded model decodes: under a JSON grammar when asked for ``response_format``
(so a council gets JSON from a 135M model that would rarely write it unprompted), and
reproducibly when given a ``seed`` (so ``moa eval`` reruns match)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

import moa
from moa.config import settings_from_dict
from moa.providers.base import ChatCall
from moa.providers.local import json_grammar_format
from moa.runtime import Runtime
from moa.types import Message

COLOUR_SCHEMA = {
    "type": "object",
    "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
    "required": ["colour"],
    "additionalProperties": False,
}


@pytest.fixture
async def local_runtime() -> AsyncIterator[Runtime]:
    async with Runtime(settings_from_dict({})) as rt:
        yield rt


def test_openai_response_formats_map_to_llama_cpps_json_object() -> None:
    wrapped = {"type": "json_schema", "json_schema": {"name": "c", "schema": COLOUR_SCHEMA}}
    assert json_grammar_format(wrapped) == {"type": "json_object", "schema": COLOUR_SCHEMA}
    assert json_grammar_format({"type": "json_object"}) == {"type": "json_object"}
    assert json_grammar_format({"type": "text"}) is None
    assert json_grammar_format(None) is None


@pytest.mark.local_model
async def test_the_embedded_model_answers_in_the_schema_it_was_given(
    local_runtime: Runtime,
) -> None:
    provider, name = local_runtime.registry.resolve("local/smollm2")
    prompt = [Message(role="user", content="What colour is the sky on a clear day?")]
    response_format = {"type": "json_schema", "json_schema": {"name": "c", "schema": COLOUR_SCHEMA}}
    completion = await provider.complete(
        ChatCall(name, prompt, max_tokens=32, seed=7, response_format=response_format)
    )
    assert json.loads(completion.text)["colour"] in {"red", "green", "blue"}


@pytest.mark.local_model
async def test_a_council_on_the_embedded_model_always_answers(local_runtime: Runtime) -> None:
    request = moa.BlendRequest(
        models=["local/smollm2", "local/smollm2"],
        strategy="council",
        max_tokens=160,
        seed=3,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    answer = await moa.blend(request, local_runtime)
    assert answer.council is not None
    assert answer.content.strip() == answer.council.final_answer.strip() != ""


@pytest.mark.local_model
async def test_a_seeded_call_samples_the_same_text_every_time(local_runtime: Runtime) -> None:
    provider, name = local_runtime.registry.resolve("local/smollm2")
    prompt = [Message(role="user", content="Tell a story about a lighthouse keeper.")]
    texts = [
        (
            await provider.complete(ChatCall(name, prompt, temperature=1.2, max_tokens=24, seed=s))
        ).text
        for s in (11, 12, 11)
    ]
    assert texts[0] == texts[2], "the same seed samples the same tokens"
    assert texts[0] != texts[1], "another seed samples others (at temperature 1.2)"
