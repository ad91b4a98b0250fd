"""Cancellation: when the client goes away or the deadline passes, every upstream call of
the request is cancelled (hung up on after that moment, before it could answer) and credits
are settled for what was done. The upstream's own record is the evidence, not a stopwatch:
the calls here stall or take 30 s, so only a cancellation ends them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp

BLEND = {
    "models": ["fake/fast", "fake/stuck", "fake/stuck2"],
    "synthesizer": "fake/fast",
    "messages": [{"role": "user", "content": "Will this be cancelled?"}],
}


async def _usage_record(store: Store, key_id: str) -> Any:
    """The request's usage record; settlement runs right after the disconnect."""
    for _ in range(2000):  # up to 20 s: the machine may be busy
        records = await store.recent_usage(key_id)
        if records:
            return records[0]
        await asyncio.sleep(0.01)  # the server settles on its own loop; poll briefly
    raise AssertionError("no usage record was written")


async def test_closing_a_stream_cancels_every_upstream_call(
    upstream: ScriptedUpstream, served: ServedApp, store: Store, make_key: Any
) -> None:
    upstream.script("stuck", stall=True)
    upstream.script("stuck2", latency_ms=30_000)
    key_id, key = await make_key(credits=10)
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=10) as http,
        http.stream(
            "POST",
            "/api/v1/blend",
            json={**BLEND, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        async for line in response.aiter_lines():
            if '"event":"source"' in line:  # fake/fast answered; the other two still run
                await upstream.wait_for_async(lambda: len(upstream.calls("stuck2")) == 1)
                # Read before leaving the loop: the reader it drops can close the stream.
                closed_at = time.monotonic()
                break
    await upstream.wait_for_async(
        lambda: all(r.disconnected for r in upstream.requests if not r.completed), within=20
    )
    unfinished = [r for r in upstream.requests if not r.completed]
    assert sorted(r.model for r in unfinished) == ["stuck", "stuck2"]
    for record in unfinished:
        assert record.disconnected_at is not None
        assert record.disconnected_at >= closed_at, f"{record.model} was cut by the close"
    usage = await _usage_record(store, key_id)
    assert usage.status == "cancelled"
    # 1 of the 4 planned calls (3 sources + synthesis) finished: ceil(4 credits * 1/4) = 1.
    assert usage.credits_charged == 1
    assert await store.balance(key_id) == 10 - usage.credits_charged
    assert await store.ledger_total(key_id) == await store.balance(key_id)


async def test_a_non_streaming_client_that_hangs_up_cancels_its_blend(
    upstream: ScriptedUpstream, served: ServedApp, store: Store, make_key: Any
) -> None:
    upstream.script("stuck", stall=True)
    upstream.script("stuck2", stall=True)
    key_id, key = await make_key(credits=10)
    async with httpx.AsyncClient(base_url=served.url) as http:
        request = asyncio.create_task(
            http.post(
                "/api/v1/blend", json=BLEND, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
        )
        await upstream.wait_for_async(
            lambda: len(upstream.calls("stuck")) == 1 and len(upstream.calls("stuck2")) == 1
        )
        closed_at = time.monotonic()  # read before the hang-up, so nothing it causes is earlier
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
    await upstream.wait_for_async(
        lambda: all(r.disconnected for r in upstream.calls("stuck") + upstream.calls("stuck2")),
        within=20,
    )
    for record in upstream.calls("stuck") + upstream.calls("stuck2"):
        assert record.disconnected_at is not None
        assert record.disconnected_at >= closed_at, "cut by the hang-up"
        assert not record.completed
    assert (await _usage_record(store, key_id)).status == "cancelled"


async def test_a_passed_deadline_cancels_upstream_calls_and_answers_504(
    upstream: ScriptedUpstream, served: ServedApp, store: Store, make_key: Any
) -> None:
    upstream.script("stuck", stall=True)
    upstream.script("stuck2", stall=True)
    upstream.script("fast", stall=True)
    key_id, key = await make_key(credits=10)
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
        response = await http.post(
            "/api/v1/blend",
            json={**BLEND, "timeout_s": 0.3},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    await upstream.wait_for_async(lambda: all(r.disconnected for r in upstream.requests), within=20)
    assert sorted(r.model for r in upstream.requests) == ["fast", "stuck", "stuck2"]
    assert not any(r.completed for r in upstream.requests)
    assert await store.balance(key_id) == 10, "nothing was produced, nothing is charged"
