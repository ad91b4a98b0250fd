"""GET /api/v1/usage (a key's balance and recent requests) and GET /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import USER, blend_body

PRICES = {
    "fake/alpha": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
    "fake/beta": {"input_usd_per_mtok": 3.0, "output_usd_per_mtok": 4.0},
}
REQUEST_FIELDS = {
    "route",
    "strategy",
    "models",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "status",
}


@pytest.fixture
async def priced(deploy: Callable[..., Awaitable[Deployment]]) -> AsyncIterator[Deployment]:
    """moa with per-token prices for alpha and beta, so blends cost real money."""
    yield await deploy(models=PRICES)


Samples = dict[tuple[str, frozenset[Any]], float]


def growth(before: Samples, after: Samples) -> Samples:
    """How much each sample grew between two reads: the module's server is shared, so
    counters hold other tests' requests too."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


async def samples(client: httpx.AsyncClient) -> Samples:
    """Every sample of GET /metrics as {(name, labels): value}."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_usage_reports_the_credits_remaining(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/blend", json=blend_body())
    usage = (await client.get("/api/v1/usage")).json()
    assert usage["credits_remaining"] == 96


async def test_usage_lists_a_blend_with_what_it_used(priced: Deployment) -> None:
    await priced.client.post("/api/v1/blend", json=blend_body())
    [request] = (await priced.client.get("/api/v1/usage")).json()["requests"]
    assert set(request) >= REQUEST_FIELDS
    assert request["route"] == "/api/v1/blend"
    assert request["strategy"] == "consensus"
    assert request["models"] == ["fake/alpha", "fake/beta"]
    assert request["status"] == "ok"
    assert request["credits_charged"] == 4
    assert request["latency_ms"] >= 0


async def test_usage_records_the_tokens_and_cost_of_the_answer(priced: Deployment) -> None:
    answer = (await priced.client.post("/api/v1/blend", json=blend_body())).json()
    [request] = (await priced.client.get("/api/v1/usage")).json()["requests"]
    assert request["prompt_tokens"] == answer["usage"]["prompt_tokens"] > 0
    assert request["completion_tokens"] == answer["usage"]["completion_tokens"] > 0
    assert request["cost_usd"] == pytest.approx(answer["usage"]["cost_usd"])
    assert request["cost_usd"] > 0


async def test_usage_lists_the_newest_request_first(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/blend", json=blend_body())
    await client.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    requests = (await client.get("/api/v1/usage")).json()["requests"]
    assert [r["route"] for r in requests] == ["/api/v1/chat", "/api/v1/blend"]


async def test_usage_shows_only_the_callers_own_requests(
    client: httpx.AsyncClient, served: Any, make_key: Callable[..., Any]
) -> None:
    await client.post("/api/v1/blend", json=blend_body())
    _, other = await make_key(credits=10)
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {other}"}
    ) as stranger:
        usage = (await stranger.get("/api/v1/usage")).json()
    assert (usage["credits_remaining"], usage["requests"]) == (10, [])


async def test_metrics_count_requests_by_route_and_status(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    before = await samples(client)
    await client.post("/api/v1/blend", json=blend_body())
    await client.post("/api/v1/blend", json=blend_body())
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    await client.post("/api/v1/blend", json=blend_body())
    grew = growth(before, await samples(client))
    blend = ("route", "/api/v1/blend")
    assert grew[("moa_requests_total", frozenset({blend, ("status", "ok")}))] == 2
    failed = frozenset({blend, ("status", "all_sources_failed")})
    assert grew[("moa_requests_total", failed)] == 1


async def test_metrics_have_latency_buckets_per_route_and_strategy(
    client: httpx.AsyncClient,
) -> None:
    before = await samples(client)
    await client.post("/api/v1/blend", json=blend_body(strategy="chain"))
    after = await samples(client)
    grew = growth(before, after)
    labels = {("route", "/api/v1/blend"), ("strategy", "chain")}
    buckets = {
        dict(key)["le"]: key
        for (name, key) in after
        if name == "moa_request_latency_seconds_bucket" and labels <= set(key)
    }
    assert len(buckets) > 5
    assert grew[("moa_request_latency_seconds_bucket", buckets["+Inf"])] == 1
    assert grew[("moa_request_latency_seconds_count", frozenset(labels))] == 1


async def test_metrics_count_source_failures_per_model(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    before = await samples(client)
    upstream.script("beta", status=400)
    await client.post("/api/v1/blend", json=blend_body())
    grew = growth(before, await samples(client))
    failures = {key: n for key, n in grew.items() if key[0] == "moa_source_failures_total"}
    assert failures == {("moa_source_failures_total", frozenset({("model", "fake/other")})): 1}


async def test_metrics_count_the_credits_charged(client: httpx.AsyncClient) -> None:
    before = await samples(client)
    await client.post("/api/v1/blend", json=blend_body())
    await client.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    grew = growth(before, await samples(client))
    assert grew[("moa_credits_charged_total", frozenset())] == 5


async def test_metrics_are_prometheus_text(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE moa_requests_total counter" in response.text
