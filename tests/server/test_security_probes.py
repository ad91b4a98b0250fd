"""What an attacker found beyond issue 8, each as the smallest reproduction against the real
server on loopback. Every test states the behaviour that must hold (each failed on the code
the probe first ran against, and passes since its fix)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import (
    PAIR,
    USER,
    assert_victim_blend_succeeds,
    blend_body,
    error_of,
    key_guesses,
)
from tests.server.processes import eventually

Deploy = Callable[..., Awaitable[Deployment]]


@asynccontextmanager
async def another_key(moa: Deployment, credits: int = 100) -> AsyncIterator[httpx.AsyncClient]:
    """A second tenant on the same server."""
    _, plaintext = await moa.store.create_key(credits=credits, name="victim")
    async with httpx.AsyncClient(
        base_url=moa.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    ) as http:
        yield http


# ---- timeouts a request sets ---------------------------------------------------------------


async def test_a_request_cannot_lengthen_its_source_timeout_past_the_servers(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"source_timeout_s": 1, "min_timeout_s": 0.5})
    upstream.script("stall", stall=True)
    body = blend_body("fake/stall", "fake/beta", synthesizer="fake/beta", source_timeout_s=4)
    response = await moa.client.post("/api/v1/blend", json=body)
    if response.status_code == 400:  # refusing it outright is as good as capping it
        assert "source_timeout_s" in error_of(response)["message"]
        return
    stalled = response.json()["sources"][0]
    assert stalled["error"] == "timed out after 1 s", "the server's own timeout applies"


async def test_long_answers_one_key_asked_for_never_open_a_shared_breaker(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"source_timeout_s": 1, "breaker_failures": 2, "max_retries": 0})
    essay = "Write a long essay."
    long_answer = " ".join(["word"] * 200)
    for model in ("alpha", "beta"):  # healthy: 20 tokens a second, whatever it is asked
        upstream.script(model, token_delay_ms=50, answers={essay: long_answer})
    attack = {
        "models": PAIR,
        "messages": [{"role": "user", "content": essay}],
        "max_tokens": 4000,
        "stream": True,
    }
    for _ in range(3):  # compare streams its models: they time out mid-answer
        async with moa.client.stream("POST", "/api/v1/compare", json=attack) as response:
            await response.aread()
    async with another_key(moa) as victim:
        await assert_victim_blend_succeeds(victim)


# ---- provider slots every key shares --------------------------------------------------------


async def test_one_request_of_one_key_cannot_take_every_slot_of_a_provider(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(
        server={"key_inflight": 1},
        providers={"fake": {"max_concurrency": 8}},
        engine={"min_timeout_s": 0.5},
    )
    upstream.script("stall", stall=True)
    hog = blend_body("fake/stall", strategy="self_moa", samples=8, stream=True)
    async with moa.client.stream("POST", "/api/v1/blend", json=hog) as held:
        assert held.status_code == 200
        await upstream.wait_for_async(lambda: len(upstream.calls("stall")) == 4)
        async with another_key(moa) as victim:
            response = await victim.post("/api/v1/blend", json=blend_body(source_timeout_s=1))
        assert len(upstream.calls("stall")) == 4, "the key held no more than its half"
    assert response.status_code == 200, response.text
    assert [s["status"] for s in response.json()["sources"]] == ["ok", "ok"]


# ---- credits for work that was done ------------------------------------------------------


async def test_a_blend_whose_synthesizer_fails_pays_for_the_sources_that_answered(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy()
    upstream.script("no-such-model", status=404, error_message="model not found")
    body = blend_body(synthesizer="fake/no-such-model")
    response = await moa.client.post("/api/v1/blend", json=body)
    assert error_of(response)["code"] == "synthesis_failed"
    assert len([r for r in upstream.requests if r.model in ("alpha", "beta")]) == 2
    [record] = await moa.store.recent_usage(moa.key_id)
    assert record.credits_charged == 3, "2 of 3 planned calls finished: ceil(4 x 2/3)"
    assert record.prompt_tokens > 0, "the operator paid for the sources' tokens"


async def test_a_stream_the_client_read_and_left_is_paid_for(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy()
    upstream.script("alpha", token_delay_ms=100, content=" ".join(["word"] * 50))
    body = {"model": "fake/alpha", "messages": USER, "stream": True}
    async with moa.client.stream("POST", "/api/v1/chat", json=body) as response:
        async for line in response.aiter_lines():
            if '"event":"delta"' in line:
                break  # the first words are read; the client leaves
    records = await eventually(lambda: moa.store.recent_usage(moa.key_id), message="settled")
    assert records[0].status == "cancelled"
    assert records[0].credits_charged >= 1, "words reached the client"


# ---- /mcp ----------------------------------------------------------------------------------


async def test_get_mcp_streams_are_refused_or_bounded_per_key(deploy: Deploy) -> None:
    moa = await deploy(server={"key_inflight": 1})
    headers = {"Accept": "text/event-stream"}
    async with (
        moa.client.stream("GET", "/mcp", headers=headers) as first,
        moa.client.stream("GET", "/mcp", headers=headers) as second,
    ):
        statuses = [first.status_code, second.status_code]
    assert statuses != [200, 200], "a key cannot hold more streams than key_inflight"


# ---- /v1/messages ---------------------------------------------------------------------------


async def test_anthropic_messages_take_a_prompt_longer_than_256_characters(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    prompt = "Explain the difference between a process and a thread. " * 10
    body = {
        "model": "fake/alpha",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt}],
    }
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    assert upstream.calls("alpha")[0].messages[-1]["content"] == prompt


async def test_anthropic_stop_sequences_are_refused_under_their_own_name(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "model": "fake/alpha",
        "max_tokens": 64,
        "stop_sequences": ["a", "b", "c", "d", "e"],
        "messages": USER,
    }
    response = await client.post("/v1/messages", json=body)
    if response.status_code == 200:
        return  # taking them all is as good
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("stop_sequences")


# ---- bodies ----------------------------------------------------------------------------------


async def test_deeply_nested_json_is_refused_naming_the_body(client: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        "/api/v1/blend", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("body")


async def test_mcp_refuses_a_timeout_below_the_floor_as_a_tool_error(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"min_timeout_s": 1})
    arguments = {"models": PAIR, "messages": USER, "source_timeout_s": 1e-9}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "blend", "arguments": arguments},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    response = await moa.client.post("/mcp", json=call, headers=headers)
    [data] = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    message = json.loads(data)
    assert "error" not in message, message
    assert message["result"]["isError"] is True
    assert message["result"]["structuredContent"]["error"]["code"] == "invalid_request"
    assert upstream.requests == []


# ---- per-address limits ----------------------------------------------------------------------


async def test_one_keys_burst_does_not_rate_limit_another_key_on_the_same_address(
    deploy: Deploy,
) -> None:
    moa = await deploy(server={"rate_limit_burst": 5})
    for _ in range(5):
        assert (await moa.client.get("/api/v1/usage")).status_code == 200
    async with another_key(moa) as victim:
        response = await victim.get("/api/v1/usage")
    assert response.status_code == 200, response.text


async def test_key_guesses_from_one_ipv6_network_share_one_window(deploy: Deploy) -> None:
    moa = await deploy(server={"ip_rate_limit_per_minute": 5, "trusted_proxies": ["127.0.0.0/8"]})
    statuses = await key_guesses(moa.url, lambda n: f"2001:db8:1:2::{n + 1:x}")
    assert statuses == [401] * 5 + [429] * 3


# ---- response_format schemas ----------------------------------------------------------------


@pytest.mark.local_model
async def test_a_huge_response_format_schema_is_refused_before_the_local_model_runs(
    deploy: Deploy,
) -> None:
    moa = await deploy(providers={"local": {"kind": "local"}})
    schema = {"type": "string", "enum": [f"v{i}" for i in range(5000)]}
    body = {
        "model": "local/smollm2",
        "max_tokens": 8,
        "messages": USER,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    response = await moa.client.post("/api/v1/chat", json=body, timeout=180)
    assert response.status_code == 400, response.text[:300]
    assert error_of(response)["message"].startswith("response_format")
