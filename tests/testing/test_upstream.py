"""The scripted upstream must look like a real provider to the official SDK, and tell the truth.

Every other test in moa trusts its records (especially disconnect times), so they are
checked here against the real ``openai`` client over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from moa.testing import Behavior, FaultPlan, ScriptedUpstream

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "answer briefly"},
    {"role": "user", "content": "what is the capital of France"},
]


@pytest.fixture
def up() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture
async def client(up: ScriptedUpstream) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=up.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


async def ask(client: AsyncOpenAI, model: str, **options: Any) -> str | None:
    response: ChatCompletion = await client.chat.completions.create(
        model=model, messages=QUESTION, **options
    )
    return response.choices[0].message.content


async def test_a_plain_completion_names_the_model_and_counts_words_as_tokens(
    client: AsyncOpenAI,
) -> None:
    response = await client.chat.completions.create(model="alpha", messages=QUESTION)

    assert response.object == "chat.completion"
    assert response.choices[0].message.content == "[alpha] answer to: what is the capital of France"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (8, 9)
    assert response.usage.total_tokens == 17


async def test_default_replies_differ_per_model_and_fixed_content_wins(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("gamma", content="fixed text")

    replies = {await ask(client, m) for m in ("alpha", "beta", "gamma")}

    assert len(replies) == 3
    assert "fixed text" in replies


async def test_a_stream_sends_role_then_one_word_per_chunk_then_stop_then_usage(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", content="one two  three")
    stream = await client.chat.completions.create(
        model="alpha", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["one ", "two  ", "three"]
    assert chunks[4].choices[0].finish_reason == "stop"
    assert chunks[5].choices == []
    assert chunks[5].usage is not None
    assert (chunks[5].usage.prompt_tokens, chunks[5].usage.completion_tokens) == (8, 3)
    assert up.calls("alpha")[0].completed


async def test_a_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="alpha", messages=QUESTION, stream=True)

    chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


async def test_a_reply_callable_sees_the_whole_request(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("judge", reply=lambda request: json.dumps({"system": request["messages"][0]}))

    reply = await ask(client, "judge")

    assert reply is not None
    assert json.loads(reply)["system"] == QUESTION[0]


async def test_requests_are_recorded_with_their_parameters_and_authorization(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    await ask(client, "alpha", temperature=0.2, max_tokens=64)

    [call] = up.calls("alpha")
    assert (call.model, call.messages, call.stream) == ("alpha", QUESTION, False)
    assert (call.temperature, call.max_tokens) == (0.2, 64)
    assert call.authorization == "Bearer sk-test"
    assert (call.fault, call.status, call.completed, call.disconnected) == (None, 200, True, False)


async def test_a_scripted_429_raises_rate_limit_error_with_retry_after(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", status=429, retry_after=0.5, error_message="slow down")

    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client, "alpha")

    assert caught.value.response.headers["retry-after"] == "0.5"
    assert caught.value.body == {"message": "slow down", "type": "rate_limit_error", "code": "429"}


async def test_fail_times_fails_the_first_calls_then_succeeds(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", fail_times=2, status=503)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await ask(client, "alpha")

    assert await ask(client, "alpha") == "[alpha] answer to: what is the capital of France"
    assert [c.status for c in up.calls("alpha")] == [503, 503, 200]


async def test_a_cut_stream_raises_on_the_client_after_the_first_tokens(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", cut_after=2)
    stream = await client.chat.completions.create(model="alpha", messages=QUESTION, stream=True)
    received: list[str] = []

    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "[alpha] answer "
    assert not up.calls("alpha")[0].completed


async def test_a_cut_body_raises_a_connection_error(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", cut_after=0)

    with pytest.raises(openai.APIConnectionError):
        await ask(client, "alpha")


async def test_a_malformed_body_fails_to_parse_streaming_or_not(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", malformed=True)

    with pytest.raises(json.JSONDecodeError):  # the SDK does not wrap this in an APIError
        await ask(client, "alpha")
    stream = await client.chat.completions.create(model="alpha", messages=QUESTION, stream=True)
    with pytest.raises(json.JSONDecodeError):
        _ = [chunk async for chunk in stream]


async def test_latency_delays_the_response(up: ScriptedUpstream, client: AsyncOpenAI) -> None:
    up.script("alpha", latency_ms=300)
    started = time.monotonic()

    await ask(client, "alpha")

    assert time.monotonic() - started >= 0.3


async def test_a_stalled_call_records_the_client_hanging_up_after_its_timeout(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", stall=True)
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        await ask(client, "alpha", timeout=0.2)
    await up.wait_for_async(lambda: up.calls("alpha")[0].disconnected)

    [call] = up.calls("alpha")
    assert call.disconnected_at is not None
    assert call.disconnected_at - started >= 0.2
    assert not call.completed


async def test_closing_a_stream_early_is_recorded_as_a_disconnect(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.script("alpha", content="word " * 1000, token_delay_ms=20)
    stream = await client.chat.completions.create(model="alpha", messages=QUESTION, stream=True)
    closing = time.monotonic()  # before the loop: the iterator it drops can close the stream
    async for _ in stream:
        break
    await stream.close()
    await up.wait_for_async(lambda: up.calls("alpha")[0].disconnected)

    [call] = up.calls("alpha")
    assert call.disconnected_at is not None
    assert call.disconnected_at >= closing, "the close is what ended it"
    assert not call.completed, "1000 tokens 20 ms apart were still streaming"


async def fault_sequence(up: ScriptedUpstream, client: AsyncOpenAI, plan: FaultPlan) -> list[str]:
    up.reset()
    up.set_faults(plan)
    for _ in range(30):
        with contextlib.suppress(openai.APIError, json.JSONDecodeError):
            await ask(client, "alpha")
    return [str(call.fault) for call in up.calls("alpha")]


async def test_the_same_fault_seed_gives_the_same_fault_sequence(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    plan = FaultPlan(rate=0.5, kinds=("429", "500", "cut", "malformed"), seed=7)

    first = await fault_sequence(up, client, plan)
    again = await fault_sequence(up, client, plan)
    other = await fault_sequence(up, client, FaultPlan(rate=0.5, kinds=plan.kinds, seed=8))

    assert first == again != other
    assert {"None", "429", "500", "cut", "malformed"} == set(first)


async def test_an_injected_429_carries_a_short_retry_after(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.set_faults(FaultPlan(rate=1.0, kinds=("429",)))

    with pytest.raises(openai.RateLimitError) as caught:
        await ask(client, "alpha")

    assert caught.value.response.headers["retry-after"] == "0.05"
    assert up.calls("alpha")[0].fault == "429"


async def test_faults_can_be_limited_to_some_models(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.set_faults(FaultPlan(rate=1.0, kinds=("500",), models={"beta"}))

    assert await ask(client, "alpha")
    with pytest.raises(openai.InternalServerError):
        await ask(client, "beta")


def test_fault_plans_and_behaviours_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="fault kinds"):
        FaultPlan(rate=0.1, kinds=("explode",))
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="error status"):
        Behavior(status=200)
    with pytest.raises(ValueError, match="latency"):
        Behavior(latency=5)  # type: ignore[call-arg]


async def test_the_default_behaviour_applies_to_unscripted_models(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    up.set_default(status=500)
    up.script("alpha", Behavior(content="ok"))

    assert await ask(client, "alpha") == "ok"
    with pytest.raises(openai.InternalServerError):
        await ask(client, "beta")


async def test_it_can_be_scripted_and_read_over_http(
    up: ScriptedUpstream, client: AsyncOpenAI
) -> None:
    async with httpx.AsyncClient(base_url=up.url) as control:
        scripted = await control.post("/_script", json={"model": "alpha", "content": "via http"})
        rejected = await control.post("/_script", json={"model": "beta", "latency": 5})
        await control.post("/_script", json={"faults": {"rate": 1.0, "kinds": ["500"]}})
        await control.post("/_script", json={"faults": None, "default": {"content": "dflt"}})
        models = await client.models.list()
        replies = [await ask(client, "alpha"), await ask(client, "gamma")]
        recorded = (await control.get("/_requests")).json()
        await control.post("/_reset")
        after_reset = (await control.get("/_requests")).json()

    assert (scripted.status_code, rejected.status_code) == (200, 400)
    assert [m.id for m in models.data] == ["alpha"]
    assert replies == ["via http", "dflt"]
    assert [r["model"] for r in recorded] == ["alpha", "gamma"]
    assert after_reset == []


async def test_stopping_does_not_wait_for_stalled_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        ScriptedUpstream() as up,
        AsyncOpenAI(base_url=up.base_url, api_key="x", max_retries=0) as sdk,
    ):
        up.script("alpha", stall=True)
        call = asyncio.create_task(ask(sdk, "alpha", timeout=30))
        await up.wait_for_async(lambda: len(up.requests) == 1)
        await asyncio.to_thread(up.stop)  # stopping twice (again on exit) is harmless
        with pytest.raises(openai.APIConnectionError):
            await call

    # Hung up on first, the stalled exchange was over before uvicorn's graceful shutdown
    # began: uvicorn did not wait out its timeout to cancel it.
    assert not [r for r in caplog.records if "graceful shutdown exceeded" in r.getMessage()]
    assert up.requests[0].disconnected


def test_the_cli_serves_the_protocol_on_the_given_port() -> None:
    with ScriptedUpstream() as probe:  # borrow a free port
        port = probe.port
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "moa.testing.upstream", "--port", str(port)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as server:
        try:
            assert server.stdout is not None
            base_url = server.stdout.readline().strip()
            reply = httpx.post(
                f"{base_url}/chat/completions",
                json={"model": "alpha", "messages": QUESTION},
            ).json()
        finally:
            server.terminate()

    assert base_url == f"http://127.0.0.1:{port}/v1"
    assert reply["choices"][0]["message"]["content"].startswith("[alpha]")
