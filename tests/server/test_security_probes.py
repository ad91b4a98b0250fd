"""What an attacker found beyond issue 8, each as the smallest reproduction against the real
server on loopback. Every test states the behaviour that must hold; those that fail on
today's code are marked ``xfail(strict=True)`` with what is wrong, so the suite stays green
and the mark comes off with the fix (a strict xfail that starts passing fails the run)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import PAIR, USER, blend_body, error_of
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


@pytest.mark.xfail(
    strict=True,
    reason="a request may set source_timeout_s up to 3600 s whatever [engine] source_timeout_s "
    "says, so one key holds provider slots (and upstream connections) 60x longer than the "
    "operator allows; the timeout should be capped at the configured one (or refused above it)",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="a source that is still streaming tokens when the configured timeout hits counts "
    "as an upstream failure, so one key asking for long answers (max_tokens is the "
    "client's) opens a breaker every key shares; a timeout while the upstream is making "
    "progress is the request's doing, not the upstream's",
)
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
        response = await victim.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200, response.text
    assert [s["status"] for s in response.json()["sources"]] == ["ok", "ok"]


# ---- provider slots every key shares --------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="key_inflight counts requests, not upstream calls: one self_moa request with "
    "samples 8 takes 8 provider slots at once, so a single in-flight request of one key can "
    "fill a provider's max_concurrency and every other key's source fails with 'no free slot'",
)
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
        await upstream.wait_for_async(lambda: len(upstream.calls("stall")) == 8)
        async with another_key(moa) as victim:
            response = await victim.post("/api/v1/blend", json=blend_body(source_timeout_s=1))
    assert response.status_code == 200, response.text
    assert [s["status"] for s in response.json()["sources"]] == ["ok", "ok"]


# ---- credits for work that was done ------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="a failed synthesis refunds everything although every source answered: a client "
    "names a synthesizer that fails (any unknown model of a known provider) and gets up "
    "to 6 sources x 32k tokens (x4 with layers) from the operator for 0 credits; the "
    "usage record even shows 0 tokens. Charge the share of the planned calls that "
    "finished, as for a timeout or a client that left",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="text already streamed to the client is free when the client then leaves (or the "
    "request passes its own timeout_s): partial_charge counts only calls that finished, "
    "so a streamed chat read and dropped before its last event costs 0 credits",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="GET /mcp opens MCP's standalone SSE stream, which a stateless server never uses: "
    "it stays open forever, outside key_inflight, ~100 kB of server memory and one socket "
    "each; answer GET (and DELETE) with 405 as the MCP spec allows",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="InputMessage.content is `str | list[TextBlock]` with max_length=256 (meant for the "
    "list of blocks), which also caps a plain string at 256 characters: any longer prompt "
    "is a 400 'Value should have at most 256 items'",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="/v1/messages takes up to 16 stop_sequences (its own schema says so) but hands them "
    "to the blend as `stop`, capped at 4: a 400 that names `stop`, a field the client never "
    "sent",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="JSON nested too deeply for the parser gets FastAPI's own 'There was an error "
    "parsing the body', not moa's 'body: ...' message that says what is allowed",
)
async def test_deeply_nested_json_is_refused_naming_the_body(client: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        "/api/v1/blend", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("body")


@pytest.mark.xfail(
    strict=True,
    reason="over /mcp a timeout below [engine] min_timeout_s raises moa's InvalidRequest, which "
    "answer() does not catch (it catches ValidationError and ApiError): the client gets a "
    "JSON-RPC error with code 0 instead of the tool error {code: invalid_request} every "
    "other refusal gets",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="the per-IP window counts authenticated requests too (DESIGN: per client IP the "
    "same as per key), so tenants behind one address (a NAT, or a proxy not listed in "
    "trusted_proxies, the default) share it: one key's burst gets every other key 429. "
    "Needs a contract decision: count only unauthenticated or refused attempts per IP",
)
async def test_one_keys_burst_does_not_rate_limit_another_key_on_the_same_address(
    deploy: Deploy,
) -> None:
    moa = await deploy(server={"rate_limit_burst": 5})
    for _ in range(5):
        assert (await moa.client.get("/api/v1/usage")).status_code == 200
    async with another_key(moa) as victim:
        response = await victim.get("/api/v1/usage")
    assert response.status_code == 200, response.text


@pytest.mark.xfail(
    strict=True,
    reason="the per-IP window is per IPv6 address: a client holding a /64 (every IPv6 "
    "subscriber does) gets 2^64 windows to guess keys from; IPv6 clients should be "
    "counted per /64",
)
async def test_key_guesses_from_one_ipv6_network_share_one_window(deploy: Deploy) -> None:
    moa = await deploy(server={"ip_rate_limit_per_minute": 5, "trusted_proxies": ["127.0.0.0/8"]})
    async with httpx.AsyncClient(base_url=moa.url, timeout=30) as guesser:
        statuses = [
            (
                await guesser.get(
                    "/api/v1/usage",
                    headers={
                        "Authorization": f"Bearer moa_sk_guess{n}",
                        "X-Forwarded-For": f"2001:db8:1:2::{n + 1:x}",
                    },
                )
            ).status_code
            for n in range(8)
        ]
    assert statuses == [401] * 5 + [429] * 3


# ---- response_format schemas ----------------------------------------------------------------


@pytest.mark.local_model
@pytest.mark.xfail(
    strict=True,
    reason="response_format.json_schema has no bound on size, depth or enum length: on the "
    "embedded model a 44 kB schema (an enum of 5,000 values) holds its one slot for ~9 s "
    "for 1 credit (20,000 values: 45 s), queueing every other key's local call behind it. "
    "Bound the schema (bytes, depth, enum values) with a 400 naming response_format",
)
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
