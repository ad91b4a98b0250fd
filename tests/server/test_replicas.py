"""Three `moa serve` processes on one PostgreSQL schema and one Redis behave as one server:
credits are spent exactly, a key has one rate-limit window, a model's breaker is one
circuit, and a revoked key is refused by every replica within `[server] auth_cache_s`.
`moa serve --workers 2` on one port spends credits as exactly.
Real processes, calling the scripted upstream.

The trio is started once for the module (each test uses keys of its own); the servers'
Redis keys live in a database number of their own and are deleted at the end."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from moa.store import Store
from moa.testing import ScriptedUpstream
from tests.server.helpers import USER, blend_body, error_of

from .processes import MoaProcess, refusal, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.asyncio(loop_scope="module")]

REPLICAS = 3
PER_MINUTE = 40  # a key's rate limit: above the 30 blends the credit tests send
CREDITS, ATTEMPTS, PRICE = 20, 30, 4
REDIS_DB = 7  # this module's alone


@dataclass
class Cluster:
    """The running replicas, their moa.toml and the test's own store on their schema."""

    replicas: list[MoaProcess]
    config: Path
    store: Store
    redis_url: str
    key_ids: list[str] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]

    async def key(self, credits: int = 100) -> tuple[str, str]:
        record, plaintext = await self.store.create_key(credits=credits, name="replicas")
        self.key_ids.append(record.id)
        return record.id, plaintext


async def _started(stack: contextlib.AsyncExitStack, processes: Sequence[MoaProcess]) -> None:
    """Start the processes side by side; every one that started is stopped with ``stack``
    even when another failed to."""
    entered = await asyncio.gather(
        *(stack.enter_async_context(p) for p in processes), return_exceptions=True
    )
    for outcome in entered:
        if isinstance(outcome, BaseException):
            raise outcome


async def _execute(url: str, sql: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _forget_redis(url: str, names: Sequence[str]) -> None:
    """Delete the windows and circuits the module made (their names hold these words)."""
    import redis.asyncio as redis

    connection = redis.Redis.from_url(url)
    try:
        used = [
            key
            async for key in connection.scan_iter()
            if any(name.encode() in key for name in names)
        ]
        if used:
            await connection.delete(*used)
    finally:
        await connection.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    shared_upstream: ScriptedUpstream,
    postgres_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Cluster]:
    schema = f"moa_replicas_{secrets.token_hex(4)}"
    redis_db = f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    config = write_config(
        tmp_path_factory.mktemp("replicas") / "moa.toml",
        shared_upstream,
        postgres_url,
        engine={"max_retries": 0},  # one upstream call per failed request
        database_schema=schema,
        redis_url=redis_db,
        rate_limit_per_minute=PER_MINUTE,
        ip_rate_limit_per_minute=1000,
        key_inflight=ATTEMPTS,
    )
    store = await Store.open(postgres_url, schema=schema)
    cluster = Cluster([MoaProcess(config) for _ in range(REPLICAS)], config, store, redis_db)
    try:
        async with contextlib.AsyncExitStack() as stack:
            await _started(stack, cluster.replicas)
            yield cluster
    finally:
        await store.close()
        await _execute(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await _forget_redis(redis_db, [*cluster.key_ids, "/127.0.0.1/", "moa:breaker:fake/"])


@contextlib.asynccontextmanager
async def clients(urls: Sequence[str], key: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per server, each sending ``key``."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=60,
                    limits=httpx.Limits(max_connections=ATTEMPTS),
                )
            )
            for url in urls
        ]


async def blend_round_robin(urls: Sequence[str], key: str) -> Counter[int]:
    """ATTEMPTS blends at once, the i-th to server i mod len(urls); their statuses."""
    async with clients(urls, key) as https:
        responses = await asyncio.gather(
            *(
                https[i % len(https)].post("/api/v1/blend", json=blend_body())
                for i in range(ATTEMPTS)
            )
        )
    return Counter(response.status_code for response in responses)


async def assert_spent_exactly(store: Store, key_id: str, statuses: Counter[int]) -> None:
    """The key could afford CREDITS // PRICE blends: exactly those were served, the rest
    refused with 402, and the balance, the ledger and the usage records agree on it."""
    served = CREDITS // PRICE
    assert statuses == Counter({200: served, 402: ATTEMPTS - served})
    assert await store.balance(key_id) == 0
    assert await store.ledger_total(key_id) == 0
    page = await store.usage_page(key_id, limit=ATTEMPTS)
    assert [(r.status, r.credits_charged) for r in page.records] == [("ok", PRICE)] * served


async def test_racing_blends_through_three_replicas_spend_a_key_exactly(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    key_id, key = await cluster.key(credits=CREDITS)
    statuses = await blend_round_robin(cluster.urls, key)
    await assert_spent_exactly(cluster.store, key_id, statuses)


async def test_a_keys_rate_limit_is_one_window_across_replicas(cluster: Cluster) -> None:
    _, key = await cluster.key()
    extra = 4
    async with clients(cluster.urls, key) as https:
        started = time.time()
        statuses = [
            (await https[i % REPLICAS].get("/api/v1/usage")).status_code
            for i in range(PER_MINUTE + extra)
        ]
        ended = time.time()
    passed = statuses.count(200)
    # A sliding window lets at most one more through if the run straddled a minute's end.
    crossed = int(started // 60) != int(ended // 60)
    assert passed == PER_MINUTE or (crossed and passed == PER_MINUTE + 1), statuses
    assert statuses[:PER_MINUTE] == [200] * PER_MINUTE
    assert statuses.count(429) == len(statuses) - passed


async def _chat(http: httpx.AsyncClient, model: str) -> httpx.Response:
    return await http.post("/api/v1/chat", json={"model": model, "messages": USER})


async def test_failures_through_two_replicas_open_the_breaker_for_the_third(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    faulty = f"faulty{secrets.token_hex(4)}"
    upstream.script(faulty, status=500)
    (_, first), (_, second) = await cluster.key(), await cluster.key()
    a, b, c = cluster.urls
    async with (
        clients([a, b], first) as (first_a, first_b),
        clients([b, c], second) as (
            second_b,
            second_c,
        ),
    ):
        # breaker_failures (3) upstream failures, from breaker_keys (2) different keys.
        failed = [await _chat(first_a, f"fake/{faulty}"), await _chat(second_b, f"fake/{faulty}")]
        failed.append(await _chat(first_b, f"fake/{faulty}"))
        assert [r.status_code for r in failed] == [502] * 3, [r.text for r in failed]
        assert len(upstream.calls(faulty)) == 3
        blend = await second_c.post(
            "/api/v1/blend", json=blend_body("fake/alpha", f"fake/{faulty}")
        )
    assert blend.status_code == 200, blend.text
    [skipped] = [s for s in blend.json()["sources"] if s["model"] == f"fake/{faulty}"]
    assert (skipped["status"], skipped["error"]) == ("error", "skipped (circuit_open)")
    assert len(upstream.calls(faulty)) == 3, "the third replica never called the open model"


async def test_a_revoked_key_is_refused_by_every_replica_once_its_cache_time_is_up(
    cluster: Cluster,
) -> None:
    """Each replica trusts a key it has read for ``[server] auth_cache_s`` (0.5 s) and no
    longer; the bound itself is shown on a fake clock in tests/store/test_key_cache.py.
    Here: every replica, having just served the key, comes to refuse it without restarts
    or any message between them."""
    key_id, key = await cluster.key()
    async with clients(cluster.urls, key) as https:
        before = [(await http.get("/api/v1/usage")).status_code for http in https]
        assert await cluster.store.revoke(key_id)
        after = [await refusal(http, "/api/v1/usage") for http in https]
    assert before == [200] * REPLICAS
    assert [r.status_code for r in after] == [401] * REPLICAS
    assert {error_of(r)["code"] for r in after} == {"unauthorized"}


async def test_two_workers_on_one_port_spend_a_key_exactly(
    cluster: Cluster, upstream: ScriptedUpstream
) -> None:
    key_id, key = await cluster.key(credits=CREDITS)
    async with MoaProcess(cluster.config, workers=2) as workers:
        statuses = await blend_round_robin([workers.url], key)
    await assert_spent_exactly(cluster.store, key_id, statuses)
