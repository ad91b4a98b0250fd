"""``/mcp`` under a served moa, through the official MCP SDK's streamable HTTP client: the
same key, rate limits and credits as the HTTP routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from mcp import Client, MCPError
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.server.helpers import PAIR, USER, error_of

ANSWER = "Paris is the capital of France."
BLEND = {"models": PAIR, "synthesizer": "fake/synth", "messages": USER}


@asynccontextmanager
async def agent_of(served: ServedApp, headers: dict[str, str]) -> AsyncIterator[Client]:
    """An MCP client on moa's /mcp sending ``headers`` with every request."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(served.url + "/mcp", http_client=http)) as client,
    ):
        yield client


def text_of(content: Sequence[object]) -> str:
    (block,) = content
    assert isinstance(block, TextContent)
    return block.text


async def test_mcp_without_a_key_is_refused_like_every_paid_route(
    anonymous: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    response = await anonymous.post(
        "/mcp", json=initialize, headers={"Accept": "application/json, text/event-stream"}
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert upstream.requests == []


async def test_the_sdk_client_cannot_connect_with_an_unknown_key(
    served: ServedApp, upstream: ScriptedUpstream
) -> None:
    with pytest.raises(ExceptionGroup) as caught:
        async with agent_of(served, {"Authorization": "Bearer moa_sk_not_a_key"}) as agent:
            await agent.list_tools()
    assert caught.group_contains(MCPError, match="error response", depth=2)
    assert upstream.requests == []


async def test_a_blend_over_mcp_returns_the_blended_answer_and_charges_a_blends_credits(
    served: ServedApp, api_key: str, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("synth", content=ANSWER)
    async with agent_of(served, {"Authorization": f"Bearer {api_key}"}) as agent:
        result = await agent.call_tool("blend", BLEND)
    assert not result.is_error, result.content
    assert text_of(result.content) == ANSWER
    assert result.structured_content is not None
    assert result.structured_content["credits_charged"] == 4
    assert result.structured_content["credits_remaining"] == 96
    assert await store.balance(key_id) == 96
    (record,) = await store.recent_usage(key_id)
    assert (record.route, record.status, record.credits_charged) == ("/mcp/blend", "ok", 4)


async def test_compare_and_judge_over_mcp_cost_what_their_routes_cost(
    served: ServedApp, api_key: str, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script(
        "referee",
        content='{"scores": [{"contestant": 1, "score": 7}, {"contestant": 2, "score": 3}]}',
    )
    async with agent_of(served, {"Authorization": f"Bearer {api_key}"}) as agent:
        compared = await agent.call_tool("compare", {"models": PAIR, "messages": USER})
        judged = await agent.call_tool(
            "judge", {"contestants": PAIR, "judge": "fake/referee", "messages": USER}
        )
    assert not compared.is_error and not judged.is_error
    assert judged.structured_content is not None
    assert judged.structured_content["verdict"]["winner"] == "fake/alpha"
    assert await store.balance(key_id) == 100 - 3 - 5


async def test_a_key_without_enough_credits_gets_a_tool_error_and_no_work_is_done(
    served: ServedApp, store: Store, upstream: ScriptedUpstream
) -> None:
    _, poor = await store.create_key(credits=3, name="poor")
    async with agent_of(served, {"Authorization": f"Bearer {poor}"}) as agent:
        result = await agent.call_tool("blend", BLEND)
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["error"]["code"] == "insufficient_credits"
    assert upstream.requests == []


async def test_a_blend_that_fails_over_mcp_is_refunded(
    served: ServedApp, api_key: str, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    async with agent_of(served, {"Authorization": f"Bearer {api_key}"}) as agent:
        result = await agent.call_tool("blend", BLEND)
    assert result.is_error
    assert text_of(result.content).startswith("all_sources_failed: ")
    assert await store.balance(key_id) == 100


async def test_bad_arguments_over_mcp_are_refused_before_credits_move(
    served: ServedApp, api_key: str, store: Store, key_id: str
) -> None:
    async with agent_of(served, {"Authorization": f"Bearer {api_key}"}) as agent:
        result = await agent.call_tool("blend", {**BLEND, "models": ["nope/x", "fake/alpha"]})
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["error"]["code"] == "invalid_request"
    assert result.structured_content["error"]["message"].startswith("models[0]: ")
    assert await store.balance(key_id) == 100
