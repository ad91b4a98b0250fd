"""Credits under concurrency, end to end: 30 blends race for a key with 20 credits (5
blends' worth) on one server, on two servers sharing a SQLite file, and on two servers
sharing PostgreSQL. Exactly 5 may be served; the key never goes below zero."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from moa.config import Settings
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings
from tests.server.helpers import blend_body

CREDITS, ATTEMPTS, PRICE = 20, 30, 4
BACKENDS = {
    "one server on SQLite": ("database_url", 1),
    "two servers on one SQLite file": ("database_url", 2),
    "two servers on PostgreSQL": ("postgres_database", 2),
}


@pytest.fixture(
    params=[
        pytest.param(BACKENDS["one server on SQLite"], id="one-server-sqlite"),
        pytest.param(BACKENDS["two servers on one SQLite file"], id="two-servers-sqlite"),
        pytest.param(
            BACKENDS["two servers on PostgreSQL"],
            id="two-servers-postgres",
            marks=pytest.mark.postgres,
        ),
    ]
)
def deployment(request: pytest.FixtureRequest) -> tuple[str, int]:
    """(database URL, number of servers) for one backend."""
    fixture, servers = request.param
    url: str = request.getfixturevalue(fixture)
    return url, servers


async def blend_concurrently(urls: list[str], key: str) -> Counter[int]:
    clients = [
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            limits=httpx.Limits(max_connections=ATTEMPTS),
        )
        for url in urls
    ]
    try:
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post("/api/v1/blend", json=blend_body())
                for i in range(ATTEMPTS)
            )
        )
    finally:
        for http in clients:
            await http.aclose()
    return Counter(r.status_code for r in responses)


async def balances_while(work: Awaitable[Counter[int]], store: Store, key_id: str) -> list[int]:
    """Every balance the database showed while ``work`` ran (read back to back)."""
    task = asyncio.ensure_future(work)
    seen = []
    while not task.done():
        seen.append(await store.balance(key_id))
    await task
    return seen


async def test_racing_blends_never_overspend_a_key(
    deployment: tuple[str, int],
    upstream: ScriptedUpstream,
    serve: Callable[[Settings], ServedApp],
    open_store: Callable[[str], Awaitable[Store]],
) -> None:
    url, servers = deployment
    upstream.script("alpha", latency_ms=100)
    upstream.script("beta", latency_ms=100)
    limits = {"database_url": url, "key_inflight": ATTEMPTS}  # the race is about credits
    apps = [serve(fake_settings(upstream, server=limits)) for _ in range(servers)]
    store = await open_store(url)
    key, plaintext = await store.create_key(credits=CREDITS, name="racer")

    race = asyncio.ensure_future(blend_concurrently([a.url for a in apps], plaintext))
    seen = await balances_while(race, store, key.id)
    outcomes = race.result()
    print(f"\n[{servers} server(s), {url.split(':')[0]}] outcomes {dict(outcomes)}")

    assert outcomes == {200: CREDITS // PRICE, 402: ATTEMPTS - CREDITS // PRICE}
    assert min(seen, default=0) >= 0
    assert await store.balance(key.id) == 0
    assert await store.ledger_total(key.id) == 0
    records = await store.recent_usage(key.id, limit=100)
    assert Counter(r.status for r in records) == {"ok": CREDITS // PRICE}
