"""Rate limits per key and per client IP: 429 ``rate_limited`` with Retry-After, and
X-RateLimit-* headers on allowed responses; shared across servers through Redis.

The windows are per minute; a run that crosses a minute boundary between the 5th and 6th
request could see the 6th allowed (sliding-window weighting), a ~0.1% chance."""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from moa.config import Settings
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings
from tests.server.conftest import Deployment, RedisLimits
from tests.server.helpers import blend_body, error_of

PER_KEY = {"rate_limit_per_minute": 5, "rate_limit_burst": 100, "ip_rate_limit_per_minute": 1000}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


async def use_up(http: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return [await http.get("/api/v1/usage") for _ in range(count)]


@contextlib.contextmanager
def resource_leaks() -> Iterator[list[str]]:
    """Record (instead of raising) the ResourceWarnings of objects freed in the block and
    by a garbage collection at its end: what servers stopped inside it left open."""
    leaks: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield leaks
        gc.collect()
    leaks.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))


def redis_settings(upstream: ScriptedUpstream, database_url: str, redis_url: str) -> Settings:
    server = {"database_url": database_url, "redis_url": redis_url, **PER_KEY}
    return fake_settings(upstream, server=server)


@pytest.fixture
async def limited(deploy: Callable[..., Awaitable[Deployment]]) -> Deployment:
    return await deploy(server=PER_KEY)


async def test_the_sixth_request_in_a_minute_is_rate_limited(limited: Deployment) -> None:
    responses = await use_up(limited.client, 6)
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    error = error_of(responses[-1])
    assert error["code"] == "rate_limited"
    assert "API key" in error["message"]


async def test_a_rate_limited_response_says_when_to_retry(limited: Deployment) -> None:
    *_, refused = await use_up(limited.client, 6)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_allowed_responses_carry_rate_limit_headers(limited: Deployment) -> None:
    responses = await use_up(limited.client, 3)
    assert all(name in r.headers for r in responses for name in RATE_HEADERS)
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["5"] * 3
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["4", "3", "2"]


async def test_the_model_catalogue_carries_rate_limit_headers(limited: Deployment) -> None:
    response = await limited.client.get("/api/v1/models")
    assert response.status_code == 200
    assert all(name in response.headers for name in RATE_HEADERS)


async def test_a_streamed_blend_carries_rate_limit_headers(limited: Deployment) -> None:
    response = await limited.client.post("/api/v1/blend", json=blend_body(stream=True))
    assert response.status_code == 200
    assert all(name in response.headers for name in RATE_HEADERS)


async def test_a_rate_limited_blend_takes_no_credit(
    limited: Deployment, upstream: ScriptedUpstream
) -> None:
    await use_up(limited.client, 5)
    response = await limited.client.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 429
    assert await limited.balance() == 100
    assert upstream.requests == []


async def test_each_key_has_its_own_window(limited: Deployment) -> None:
    await use_up(limited.client, 6)
    _, other = await limited.store.create_key(credits=10, name="other")
    response = await limited.client.get(
        "/api/v1/usage", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 200


async def test_the_ip_limit_throttles_even_requests_with_bad_keys(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy(server={"ip_rate_limit_per_minute": 3})
    headers = {"Authorization": "Bearer moa_sk_guess"}
    responses = [await moa.client.get("/api/v1/models", headers=headers) for _ in range(4)]
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    error = error_of(responses[-1])
    assert error["code"] == "rate_limited"
    assert "IP" in error["message"]


async def test_the_ip_limit_defaults_to_the_key_limit(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy(server={"rate_limit_per_minute": 2})
    headers = {"Authorization": "Bearer moa_sk_guess"}
    responses = [await moa.client.get("/api/v1/models", headers=headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [401, 401, 429]


async def test_service_routes_are_not_rate_limited(limited: Deployment) -> None:
    await use_up(limited.client, 6)
    assert (await limited.client.get("/healthz")).status_code == 200


@pytest.mark.redis
async def test_servers_sharing_redis_share_one_window(
    upstream: ScriptedUpstream,
    database_url: str,
    open_store: Callable[[str], Awaitable[Store]],
    redis_limits: RedisLimits,
) -> None:
    settings = redis_settings(upstream, database_url, redis_limits.url)
    # The servers live (and are freed) inside the block: see the leak test below.
    with resource_leaks(), ServedApp(settings) as one, ServedApp(settings) as two:
        store = await open_store(database_url)
        key, plaintext = await store.create_key(credits=10, name="shared")
        redis_limits.key_ids.append(key.id)
        headers = {"Authorization": f"Bearer {plaintext}"}
        async with (
            httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as first,
            httpx.AsyncClient(base_url=two.url, headers=headers, timeout=30) as second,
        ):
            allowed = [*(await use_up(first, 3)), *(await use_up(second, 2))]
            sixth = [await first.get("/api/v1/usage"), await second.get("/api/v1/usage")]
        del one, two
    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.status_code for r in sixth] == [429, 429]


@pytest.mark.redis
async def test_a_server_using_redis_leaves_no_connection_open_when_it_stops(
    upstream: ScriptedUpstream,
    database_url: str,
    open_store: Callable[[str], Awaitable[Store]],
    redis_limits: RedisLimits,
) -> None:
    with resource_leaks() as leaks:
        with ServedApp(redis_settings(upstream, database_url, redis_limits.url)) as app:
            store = await open_store(database_url)
            key, plaintext = await store.create_key(credits=10, name="leak")
            redis_limits.key_ids.append(key.id)
            headers = {"Authorization": f"Bearer {plaintext}"}
            async with httpx.AsyncClient(base_url=app.url, headers=headers) as http:
                assert (await http.post("/api/v1/blend", json=blend_body())).status_code == 200
        del app
    assert leaks == []
