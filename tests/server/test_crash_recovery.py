"""No credit is lost to a crash: a request's reservation is a lease its server renews.
When a server is SIGKILLed mid-blend, the next server on the database refunds it and
records the request `interrupted`; a live request on another replica is never refunded.
Real `moa serve` processes on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from moa.store import Store
from moa.store.schema import reservations, utcnow
from moa.testing import ScriptedUpstream

from .processes import MoaProcess, eventually, write_config

BLEND_ROUTE = "/api/v1/blend"
BLEND = {
    "models": ["fake/alpha", "fake/stuck"],
    "synthesizer": "fake/alpha",
    "messages": [{"role": "user", "content": "Will the server live to answer?"}],
}


@pytest.fixture
async def store(shared_database: str) -> AsyncIterator[Store]:
    opened = await Store.open(shared_database)
    yield opened
    await opened.close()


async def _start_blend(http: httpx.AsyncClient, upstream: ScriptedUpstream) -> asyncio.Task[object]:
    """A blend that stays in flight: fake/stuck never answers."""
    upstream.script("stuck", stall=True)
    task: asyncio.Task[object] = asyncio.create_task(http.post("/api/v1/blend", json=BLEND))
    await upstream.wait_for_async(lambda: len(upstream.calls("stuck")) == 1, within=30)
    return task


async def test_credits_held_by_a_killed_server_come_back_through_the_next_one(
    upstream: ScriptedUpstream, store: Store, shared_database: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "moa.toml", upstream, shared_database, reservation_lease_s=1)
    key, plaintext = await store.create_key(credits=10)
    headers = {"Authorization": f"Bearer {plaintext}"}
    async with (
        MoaProcess(config) as doomed,
        httpx.AsyncClient(base_url=doomed.url, headers=headers, timeout=60) as http,
    ):
        blend = await _start_blend(http, upstream)
        assert await store.balance(key.id) == 6
        doomed.signal(signal.SIGKILL)
        await doomed.exited()
        await asyncio.gather(blend, return_exceptions=True)
    assert await store.balance(key.id) == 6, "nothing refunds a lease before it expires"

    async with MoaProcess(config):
        await eventually(
            lambda: _balance_is(store, key.id, 10), message="the next server refunds the blend"
        )
    assert await store.ledger_total(key.id) == 10
    [record] = await store.recent_usage(key.id)
    assert (record.status, record.credits_charged, record.route) == ("interrupted", 0, BLEND_ROUTE)


async def _balance_is(store: Store, key_id: str, expected: int) -> bool:
    return await store.balance(key_id) == expected


async def test_a_live_request_is_never_refunded_by_another_replica(
    upstream: ScriptedUpstream, store: Store, shared_database: str, tmp_path: Path
) -> None:
    lease = 3
    config = write_config(
        tmp_path / "moa.toml", upstream, shared_database, reservation_lease_s=lease
    )
    key, plaintext = await store.create_key(credits=10)
    headers = {"Authorization": f"Bearer {plaintext}"}
    async with MoaProcess(config) as serving, MoaProcess(config):
        async with httpx.AsyncClient(base_url=serving.url, headers=headers, timeout=60) as http:
            blend = await _start_blend(http, upstream)
            created = await _reservation_created_at(store)
            # Watch the other replica's reaper (it runs every lease/3) for two leases past
            # the point where an unrenewed lease would have expired.
            until = created + timedelta(seconds=3 * lease)
            while utcnow() < until:
                assert await store.balance(key.id) == 6, "a live request was refunded"
                assert not await store.recent_usage(key.id)
                await asyncio.sleep(0.2)
            assert await store.reap_expired() == [], "the serving replica renewed its lease"
            blend.cancel()  # the client leaves: its own server settles it
            await asyncio.gather(blend, return_exceptions=True)
        [record] = await eventually(lambda: store.recent_usage(key.id), message="settled")
    assert record.status == "cancelled"
    balance = await store.balance(key.id)
    assert balance == await store.ledger_total(key.id) == 10 - record.credits_charged


async def _reservation_created_at(store: Store) -> datetime:
    async with store._engine.connect() as conn:
        created: datetime = (await conn.execute(select(reservations.c.created_at))).scalar_one()
    return created
