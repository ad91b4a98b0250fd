"""One key must never hurt another: each case an attacker tried against ``moa serve`` on
loopback, driven the same way here, with the behaviour that must hold instead. Every test
has an attacker key and, where it matters, a victim key whose blend must still succeed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import (
    USER,
    assert_victim_blend_succeeds,
    blend_body,
    error_of,
    key_guesses,
)

Deploy = Callable[..., Awaitable[Deployment]]
FLOOR = {"min_timeout_s": 1.0}  # the default floor; the other server tests lower it


@asynccontextmanager
async def another_key(moa: Deployment, credits: int = 100) -> AsyncIterator[httpx.AsyncClient]:
    """A second tenant on the same server."""
    _, plaintext = await moa.store.create_key(credits=credits, name="victim")
    async with httpx.AsyncClient(
        base_url=moa.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    ) as http:
        yield http


def raw_json(text: str) -> bytes:
    """A body as a client may send it, lone surrogates (``\\ud800``) and all."""
    return text.encode()


# ---- 1. breakers move only for failures the upstream caused -----------------------------


async def test_a_timeout_below_the_floor_is_refused_before_any_call(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine=FLOOR)
    response = await moa.client.post("/api/v1/blend", json=blend_body(source_timeout_s=1e-9))
    assert response.status_code == 400
    assert error_of(response)["message"] == (
        "source_timeout_s: must be at least 1 s (this server's [engine] min_timeout_s), got 1e-09"
    )
    assert upstream.requests == []
    assert await moa.balance() == 100


async def test_a_lone_surrogate_is_a_400_that_reaches_no_upstream(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy()
    body = '{"models": ["fake/alpha", "fake/beta"], "messages": [{"role": "user", "content": "hi \\ud800"}]}'  # noqa: E501
    response = await moa.client.post(
        "/api/v1/blend", content=raw_json(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert message.startswith("messages[0].content:")
    assert "surrogate" in message
    assert upstream.requests == []


async def test_requests_that_time_out_by_their_own_choice_never_open_a_shared_breaker(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={**FLOOR, "breaker_failures": 2, "max_retries": 0})
    upstream.script("alpha", latency_ms=1500)
    upstream.script("beta", latency_ms=1500)
    attack = blend_body(source_timeout_s=1.0)  # shorter than the configured 60 s
    for _ in range(3):
        response = await moa.client.post("/api/v1/blend", json=attack)
        assert error_of(response)["code"] == "all_sources_failed"
    upstream.script("alpha", content="fine")
    upstream.script("beta", content="fine")
    async with another_key(moa) as victim:
        await assert_victim_blend_succeeds(victim)


async def test_upstream_refusals_of_one_keys_content_never_open_a_shared_breaker(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"breaker_failures": 2})
    upstream.script("alpha", status=400, error_message="content policy")
    upstream.script("beta", status=400, error_message="content policy")
    for _ in range(3):
        await moa.client.post("/api/v1/blend", json=blend_body())
    upstream.script("alpha", content="fine")
    upstream.script("beta", content="fine")
    async with another_key(moa) as victim:
        await assert_victim_blend_succeeds(victim)


# ---- 2. model ids are bounded; labels stay bounded ---------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "fake/" + "x" * 201,
        "gemini/../../v1beta/files",
        "gemini/models/../../etc",
        "fake//etc/passwd",
        "Fake/alpha",
        "fake/alpha?key=1",
        "fake/alpha#x",
        "fake/al pha",
        "p" * 33 + "/alpha",
    ],
)
async def test_a_model_id_outside_the_rule_is_a_400_naming_the_field(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, model: str
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body(model, "fake/beta"))
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert message.startswith("models")
    assert "not a valid model id" in message
    assert len(message) < 500, "the id is not echoed back in full"
    assert upstream.requests == []


async def test_openrouter_style_ids_stay_valid(deploy: Deploy, upstream: ScriptedUpstream) -> None:
    moa = await deploy()
    model = "fake/meta-llama/llama-3.3-70b-instruct:free"
    response = await moa.client.post("/api/v1/blend", json=blend_body(model, "fake/beta"))
    assert response.status_code == 200
    assert upstream.requests[0].model == "meta-llama/llama-3.3-70b-instruct:free"


async def test_metric_labels_stay_bounded_whatever_models_clients_name(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(models={"fake/beta": {"input_usd_per_mtok": 1.0}})
    upstream.set_default(status=500)
    for n in range(20):
        await moa.client.post(
            "/api/v1/blend", json=blend_body(f"fake/x{n}-" + "y" * 150, "fake/beta")
        )
    metrics = (await moa.client.get("/metrics")).text
    labels = {
        s.labels["model"]
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "moa_source_failures_total"
    }
    assert labels == {"fake/other", "fake/beta"}, "named models keep their id, others do not"


# ---- 3. the work one request can cause is bounded ----------------------------------------


async def test_more_than_five_fallbacks_per_source_are_refused(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    source = {"model": "fake/alpha", "fallback": [f"fake/f{n}" for n in range(6)]}
    response = await client.post("/api/v1/blend", json=blend_body(source, "fake/beta"))
    assert response.status_code == 400
    assert "fallback" in error_of(response)["message"]
    assert "5" in error_of(response)["message"]
    chat = {"model": "fake/alpha", "messages": USER, "routing": {"fallback": ["fake/f"] * 6}}
    assert (await client.post("/api/v1/chat", json=chat)).status_code == 400
    assert upstream.requests == []


async def test_a_failing_route_makes_a_bounded_number_of_upstream_calls(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"max_retries": 2, "breaker_failures": 100})
    upstream.set_default(status=500)
    sources = [
        {"model": f"fake/s{i}", "fallback": [f"fake/s{i}f{j}" for j in range(5)]} for i in range(6)
    ]
    body = blend_body(*sources, synthesizer={"model": "fake/y", "fallback": ["fake/z"]})
    response = await moa.client.post("/api/v1/blend", json=body)
    assert error_of(response)["code"] == "all_sources_failed"
    # 6 sources x 6 models on each route x (1 + 2 retries); nothing is ever synthesized.
    assert len(upstream.requests) <= 6 * 6 * 3


# ---- 4. keyless built-ins are opt-in; upstream error bodies stay in the log ---------------


@pytest.mark.parametrize("model", ["ollama/llama3.2", "vllm/x", "llamacpp/x", "local/smollm2"])
async def test_keyless_built_ins_are_off_for_clients_unless_declared(
    client: httpx.AsyncClient, model: str
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body(model, "fake/beta"))
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "is not enabled on this server" in message
    assert f"[providers.{model.partition('/')[0]}]" in message


async def test_an_upstream_error_body_is_never_relayed_to_the_client(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    secret = "internal-service-banner admin=root token=abc123"
    upstream.script("alpha", status=404, error_message=secret)
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200
    alpha = response.json()["sources"][0]
    assert alpha["status"] == "error"
    assert "404" in alpha["error"]
    assert secret not in response.text


# ---- 5. one key cannot take the provider slots every key shares ---------------------------


async def test_a_key_holding_many_stalled_streams_is_capped_and_others_still_answer(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(
        server={"key_inflight": 2}, providers={"fake": {"max_concurrency": 6}}, engine=FLOOR
    )
    upstream.script("stall1", stall=True)
    upstream.script("stall2", stall=True)
    stalled = blend_body("fake/stall1", "fake/stall2", stream=True)
    async with contextlib_streams(moa.client, stalled, 2) as opened:
        # Its share of the provider: half of 6 slots, whatever it has in flight.
        await upstream.wait_for_async(lambda: len(upstream.requests) == 3)
        third = await moa.client.post("/api/v1/blend", json=stalled)
        assert third.status_code == 429
        assert "key_inflight" in error_of(third)["message"]
        async with another_key(moa) as victim:
            await assert_victim_blend_succeeds(victim)
        assert len(opened) == 2


async def test_waiting_for_a_provider_slot_counts_against_the_sources_timeout(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(
        server={"key_inflight": 50},
        providers={"fake": {"max_concurrency": 2}},
        engine={**FLOOR, "key_provider_share": 1.0},  # one key may take every slot here
    )
    upstream.script("stall1", stall=True)
    upstream.script("stall2", stall=True)
    stalled = blend_body("fake/stall1", "fake/stall2", stream=True)
    async with contextlib_streams(moa.client, stalled, 1):
        await upstream.wait_for_async(lambda: len(upstream.requests) == 2)
        response = await moa.client.post("/api/v1/blend", json=blend_body(source_timeout_s=1))
    assert error_of(response)["code"] == "all_sources_failed"
    assert "no free slot" in error_of(response)["message"]


@asynccontextmanager
async def contextlib_streams(
    http: httpx.AsyncClient, body: dict[str, Any], count: int
) -> AsyncIterator[list[httpx.Response]]:
    """Open ``count`` streaming requests and hold them open for the block."""
    opened: list[httpx.Response] = []
    try:
        for _ in range(count):
            request = http.build_request("POST", "/api/v1/blend", json=body)
            response = await http.send(request, stream=True)
            assert response.status_code == 200
            opened.append(response)
        yield opened
    finally:
        for response in opened:
            await response.aclose()


# ---- 6. X-Forwarded-For is believed only from trusted proxies -----------------------------


async def test_forged_forwarded_for_headers_do_not_escape_the_ip_limit(deploy: Deploy) -> None:
    moa = await deploy(server={"ip_rate_limit_per_minute": 5})
    statuses = await key_guesses(moa.url, lambda n: f"203.0.113.{n}")
    assert statuses == [401] * 5 + [429] * 3


async def test_a_trusted_proxy_forwards_each_clients_own_address(deploy: Deploy) -> None:
    moa = await deploy(server={"ip_rate_limit_per_minute": 5, "trusted_proxies": ["127.0.0.0/8"]})
    statuses = await key_guesses(moa.url, lambda n: f"198.51.100.7, 203.0.113.{n}")
    assert statuses == [401] * 8, "each forwarded client has its own window"


# ---- 8. errors say what was wrong, with the headers a client needs ------------------------


async def test_a_body_that_is_not_json_is_invalid_request(client: httpx.AsyncClient) -> None:
    for body in (b"{bad", b"", b"[1]"):
        response = await client.post(
            "/api/v1/blend", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "invalid_request"
        assert error["message"].startswith("body")


async def test_rejections_carry_the_rate_limit_headers(
    deploy: Deploy, client: httpx.AsyncClient
) -> None:
    invalid = await client.post("/api/v1/blend", json=blend_body(layers=9))
    assert invalid.status_code == 400
    poor = await deploy(credits=1)
    unpaid = await poor.client.post("/api/v1/blend", json=blend_body())
    assert unpaid.status_code == 402
    for response in (invalid, unpaid):
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-request-id"} <= set(
            response.headers
        )


async def test_the_openapi_document_says_400_and_declares_the_event_streams(
    anonymous: httpx.AsyncClient,
) -> None:
    document = (await anonymous.get("/openapi.json")).json()
    blend = document["paths"]["/api/v1/blend"]["post"]
    assert "422" not in json.dumps(document["paths"])
    assert {"400", "401", "402", "429", "502", "504"} <= set(blend["responses"])
    assert "text/event-stream" in blend["responses"]["200"]["content"]
    schema = document["components"]["schemas"]["BlendRequest"]
    assert "self_moa takes exactly 1 model" in schema["description"]
    assert "no `..` segment" in schema["description"]


async def test_a_request_id_the_client_sends_is_kept_only_when_it_is_sane(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/api/v1/usage", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/api/v1/usage", headers={"X-Request-ID": "a" * 65})
    assert replaced.headers["x-request-id"].startswith("req_")


async def test_no_credit_is_lost_across_the_attacks(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine=FLOOR)
    bodies = [
        blend_body(source_timeout_s=1e-9),
        blend_body("ollama/x", "fake/beta"),
        blend_body("gemini/../x", "fake/beta"),
        blend_body(layers=9),
    ]
    responses = await asyncio.gather(*(moa.client.post("/api/v1/blend", json=b) for b in bodies))
    assert {r.status_code for r in responses} == {400}
    assert await moa.balance() == 100
    assert await moa.store.ledger_total(moa.key_id) == 100


async def test_a_model_failing_for_two_keys_is_skipped_for_every_key(
    deploy: Deploy, upstream: ScriptedUpstream
) -> None:
    moa = await deploy(engine={"breaker_failures": 3, "max_retries": 0})
    upstream.script("alpha", status=503)
    for _ in range(3):  # one key's failures alone open nothing
        await moa.client.post("/api/v1/blend", json=blend_body())
    body = (await moa.client.post("/api/v1/blend", json=blend_body())).json()
    assert body["sources"][0]["error"] != "skipped (circuit_open)"
    async with another_key(moa) as other:
        await other.post("/api/v1/blend", json=blend_body())  # a second key fails too
        skipped = (await other.post("/api/v1/blend", json=blend_body())).json()
    assert skipped["sources"][0]["error"] == "skipped (circuit_open)"
