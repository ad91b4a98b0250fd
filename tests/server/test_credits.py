"""Credits: each route's price is reserved before the work and settled after it; a key that
cannot pay is refused with 402, and a blend that produced nothing is refunded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.server.conftest import Deployment
from tests.server.helpers import PAIR, USER, blend_body, error_of

ROUTES: dict[str, tuple[str, dict[str, Any], int]] = {
    "chat": ("/api/v1/chat", {"model": "fake/alpha", "messages": USER}, 1),
    "compare": ("/api/v1/compare", {"models": PAIR, "messages": USER}, 3),
    "blend": ("/api/v1/blend", blend_body(), 4),
    "judge": (
        "/api/v1/judge",
        {"contestants": PAIR, "judge": "fake/judge", "messages": USER},
        5,
    ),
}


def verdict(_: dict[str, Any]) -> str:
    return '{"scores": [{"contestant": 1, "score": 7}, {"contestant": 2, "score": 5}]}'


async def client_with(served: ServedApp, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def fail_everything(upstream: ScriptedUpstream) -> None:
    upstream.script("alpha", status=400, error_message="alpha refuses")
    upstream.script("beta", status=400, error_message="beta refuses")


@pytest.mark.parametrize("path, body, price", ROUTES.values(), ids=ROUTES.keys())
async def test_each_route_charges_its_price(
    client: httpx.AsyncClient,
    upstream: ScriptedUpstream,
    store: Store,
    key_id: str,
    path: str,
    body: dict[str, Any],
    price: int,
) -> None:
    upstream.script("judge", reply=verdict)
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["credits_charged"] == price
    assert response.json()["credits_remaining"] == await store.balance(key_id) == 100 - price


async def test_a_key_with_fewer_credits_than_a_blend_costs_is_refused_with_402(
    served: ServedApp, make_key: Callable[..., Any]
) -> None:
    _, key = await make_key(credits=3)
    async with await client_with(served, key) as http:
        response = await http.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 402
    error = error_of(response)
    assert error["code"] == "insufficient_credits"
    assert "4" in error["message"]
    assert "3" in error["message"]


async def test_a_refused_request_keeps_the_balance_and_never_calls_a_provider(
    served: ServedApp, store: Store, make_key: Callable[..., Any], upstream: ScriptedUpstream
) -> None:
    key_id, key = await make_key(credits=3)
    async with await client_with(served, key) as http:
        await http.post("/api/v1/blend", json=blend_body())
    assert await store.balance(key_id) == 3
    assert upstream.requests == []


async def test_a_key_that_can_pay_for_a_chat_but_not_a_blend_still_chats(
    served: ServedApp, make_key: Callable[..., Any]
) -> None:
    _, key = await make_key(credits=1)
    async with await client_with(served, key) as http:
        response = await http.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    assert response.status_code == 200
    assert response.json()["credits_remaining"] == 0


async def test_a_blend_whose_sources_all_fail_is_502_all_sources_failed(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    fail_everything(upstream)
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "all_sources_failed"
    assert "fake/alpha: HTTP 400: the upstream rejected the request" in error["message"]
    assert "refuses" not in error["message"]


async def test_a_blend_whose_sources_all_fail_is_refunded(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    fail_everything(upstream)
    await client.post("/api/v1/blend", json=blend_body())
    assert await store.balance(key_id) == 100
    assert await store.ledger_total(key_id) == 100


async def test_a_failed_blend_leaves_a_usage_record_saying_so(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    fail_everything(upstream)
    await client.post("/api/v1/blend", json=blend_body())
    [record] = await store.recent_usage(key_id)
    assert (record.route, record.status, record.credits_charged) == (
        "/api/v1/blend",
        "all_sources_failed",
        0,
    )


async def test_a_partly_failed_blend_still_charges_the_full_price(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("beta", status=400)
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.json()["credits_charged"] == 4
    assert await store.balance(key_id) == 96


async def test_credit_prices_come_from_the_server_settings(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy(server={"credits": {"blend": 7}})
    response = await moa.client.post("/api/v1/blend", json=blend_body())
    assert response.json()["credits_charged"] == 7
    assert await moa.balance() == 93


async def test_a_blend_past_its_deadline_is_504_timeout(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", stall=True)
    upstream.script("beta", stall=True)
    response = await client.post("/api/v1/blend", json=blend_body(timeout_s=0.3))
    assert response.status_code == 504
    error = error_of(response)
    assert error["code"] == "timeout"
    assert "0.3 s" in error["message"]


async def test_a_timed_out_blend_pays_only_for_the_calls_that_finished(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("beta", stall=True)  # alpha answers: 1 of 3 planned calls finished
    await client.post("/api/v1/blend", json=blend_body(timeout_s=0.3))
    assert await store.balance(key_id) == 100 - 2  # ceil(4 x 1/3)
