"""POST /api/v1/blend with ``stream: true``: Server-Sent Events in contract order, sent the
moment things happen."""

from __future__ import annotations

import itertools

import httpx

from moa.store import Store
from moa.testing import ScriptedUpstream
from tests.server.conftest import sse_events
from tests.server.helpers import ANSWER_FIELDS, blend_body, error_of, timed_events


async def stream_blend(client: httpx.AsyncClient, **fields: object) -> list[dict[str, object]]:
    response = await client.post("/api/v1/blend", json=blend_body(stream=True, **fields))
    assert response.status_code == 200
    return sse_events(response.text)


def kinds(events: list[dict[str, object]]) -> list[str]:
    """Event kinds with repeats collapsed: source, source, chunk, chunk -> source, chunk."""
    names = ["[DONE]" if e.get("done") else str(e["event"]) for e in events]
    return [name for name, _ in itertools.groupby(names)]


async def test_a_stream_is_served_as_uncached_server_sent_events(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"


async def test_events_come_in_contract_order(client: httpx.AsyncClient) -> None:
    events = await stream_blend(client)
    assert kinds(events) == ["source", "synthesis", "chunk", "done", "[DONE]"]


async def test_each_source_event_names_its_model_and_outcome(client: httpx.AsyncClient) -> None:
    events = await stream_blend(client)
    sources = [e for e in events if e.get("event") == "source"]
    assert sorted((e["model"], e["layer"], e["status"]) for e in sources) == [
        ("fake/alpha", 0, "complete"),
        ("fake/beta", 0, "complete"),
    ]
    assert all(isinstance(e["tokens"], int) and e["tokens"] > 0 for e in sources)


async def test_the_synthesis_event_names_strategy_and_synthesizer(
    client: httpx.AsyncClient,
) -> None:
    events = await stream_blend(client, strategy="chain", synthesizer="fake/beta")
    synthesis = next(e for e in events if e.get("event") == "synthesis")
    assert synthesis == {
        "event": "synthesis",
        "status": "starting",
        "strategy": "chain",
        "model": "fake/beta",
    }


async def test_the_chunks_join_into_the_synthesized_answer(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="Paris is the capital of France.")
    events = await stream_blend(client, synthesizer="fake/synth")
    chunks = [str(e["content"]) for e in events if e.get("event") == "chunk"]
    assert len(chunks) > 1
    assert "".join(chunks) == "Paris is the capital of France."


async def test_the_done_event_has_every_answer_field_but_the_content(
    client: httpx.AsyncClient,
) -> None:
    done = next(e for e in await stream_blend(client) if e.get("event") == "done")
    assert set(done) >= ANSWER_FIELDS - {"content"}
    assert "content" not in done


async def test_the_done_event_carries_the_charge_and_the_balance(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    done = next(e for e in await stream_blend(client) if e.get("event") == "done")
    assert done["credits_charged"] == 4
    assert done["credits_remaining"] == await store.balance(key_id) == 96


async def test_the_first_source_event_arrives_before_the_slowest_source_answers(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", stall=True)  # beta never answers: alpha's event cannot wait for it
    first: dict[str, object] = {}
    async for _, event in timed_events(client, "/api/v1/blend", blend_body(stream=True)):
        first = event
        break
    assert (first.get("event"), first.get("model")) == ("source", "fake/alpha")


async def test_a_stream_whose_sources_all_fail_ends_with_an_error_event(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    events = await stream_blend(client)
    assert kinds(events) == ["source", "error", "[DONE]"]
    error = next(e for e in events if e.get("event") == "error")
    assert error["code"] == "all_sources_failed"
    assert "fake/alpha" in str(error["message"])


async def test_a_failed_stream_refunds_its_credits(
    client: httpx.AsyncClient, upstream: ScriptedUpstream, store: Store, key_id: str
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("beta", status=400)
    await stream_blend(client)
    assert await store.balance(key_id) == 100


async def test_a_stream_request_that_is_invalid_is_refused_before_streaming(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body(stream=True, layers=9))
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


async def test_a_client_that_hangs_up_mid_stream_stops_the_upstream_calls(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", stall=True)
    async for _, event in timed_events(client, "/api/v1/blend", blend_body(stream=True)):
        if event.get("event") == "source":
            break  # leaving the stream closes the connection
    await upstream.wait_for_async(lambda: any(c.disconnected for c in upstream.calls("beta")))
