"""Concurrency: credits are never overdrawn, whoever races for them.

Several ``Store`` instances each own an engine and connection pool, which is
what several server processes look like to the database; the subprocess test
then uses genuinely separate OS processes. 20 credits, 30 reservations of 4:
exactly 5 may win and the balance must end at exactly 0.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any

import pytest
from sqlalchemy import select, update

from moa.store import Store
from moa.store.schema import api_keys

from .conftest import Database

CREDITS, ATTEMPTS, COST = 20, 30, 4


def _check_race(results: list[int | None], backend: str, how: str) -> None:
    winners = [r for r in results if r is not None]
    print(f"\n[{backend}/{how}] {len(winners)}/{len(results)} reservations succeeded")
    assert len(winners) == CREDITS // COST
    # Each winner saw a distinct remaining balance: no two read the same state.
    assert sorted(winners) == list(range(0, CREDITS, COST))


async def test_concurrent_reserves_across_stores(db: Database) -> None:
    stores = [await db.open() for _ in range(4)]
    key, _ = await stores[0].create_key(credits=CREDITS)
    reservations = await asyncio.gather(
        *(stores[i % len(stores)].reserve(key.id, COST) for i in range(ATTEMPTS))
    )
    _check_race([r.remaining if r else None for r in reservations], db.backend, "4 stores")
    for store in stores:
        assert await store.balance(key.id) == 0
    assert await stores[0].ledger_total(key.id) == 0
    print(f"[{db.backend}/4 stores] final balance 0, ledger total 0")


@pytest.mark.postgres
async def test_harness_catches_a_racy_implementation(postgres_db: Database) -> None:
    """Control experiment: the same race against a naive read-then-write
    reservation does hand out too much on PostgreSQL, so the race above is
    real and its passing means something."""
    stores = [await postgres_db.open() for _ in range(4)]
    key, _ = await stores[0].create_key(credits=CREDITS)

    async def naive_reserve(store: Store) -> bool:
        async with store._engine.begin() as conn:
            where = api_keys.c.id == key.id
            credits = (await conn.execute(select(api_keys.c.credits).where(where))).scalar_one()
            await asyncio.sleep(0.01)
            if credits < COST:
                return False
            await conn.execute(update(api_keys).where(where).values(credits=credits - COST))
            return True

    wins = await asyncio.gather(*(naive_reserve(stores[i % 4]) for i in range(ATTEMPTS)))
    print(f"\n[postgres/naive control] {sum(wins)}/{ATTEMPTS} 'succeeded' (lost updates)")
    assert sum(wins) > CREDITS // COST


async def test_mixed_reserve_settle_topup_keeps_books_balanced(db: Database) -> None:
    """Full request cycles racing with top-ups: the balance never dips below
    zero and always equals the ledger sum and the hand-computed total."""
    stores = [await db.open() for _ in range(3)]
    key, _ = await stores[0].create_key(credits=100)
    rng = random.Random(1234)
    charged_total = 0

    async def request(store: Store, reserved: int, charged: int) -> None:
        nonlocal charged_total
        reservation = await store.reserve(key.id, reserved, request_id="r")
        if reservation is None:
            return
        assert reservation.remaining >= 0
        await asyncio.sleep(0)  # let others run while the "request" is in flight
        assert (await store.settle(reservation, charged)).remaining >= 0
        charged_total += charged

    jobs: list[Coroutine[Any, Any, object]] = []
    for i in range(120):
        reserved = rng.randint(1, 15)
        jobs.append(request(stores[i % 3], reserved, rng.randint(0, reserved)))
    jobs += [stores[i % 3].top_up(key.id, 10) for i in range(5)]
    rng.shuffle(jobs)
    await asyncio.gather(*jobs)

    expected = 100 + 5 * 10 - charged_total
    assert charged_total > 0
    assert await stores[1].balance(key.id) == expected >= 0
    assert await stores[2].ledger_total(key.id) == expected


_CHILD = """
import asyncio, json, sys
from moa.store import Store
from moa.store.schema import api_keys

async def main(url, schema, key_id, n, cost):
    store = await Store.open(url, schema=schema or None)
    try:
        print("ready", flush=True)
        sys.stdin.readline()  # start barrier: all children are connected
        results = await asyncio.gather(*(store.reserve(key_id, cost) for _ in range(n)))
        print(json.dumps([r.remaining if r else None for r in results]), flush=True)
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


def _spawn_and_race(
    db: Database, key_id: str, env: dict[str, str], processes: int
) -> list[int | None]:
    per_child = ATTEMPTS // processes
    argv = [db.url, db.schema or "", key_id, str(per_child), str(COST)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    results: list[int | None] = []
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", child.communicate(timeout=60)
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            results += json.loads(out)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    return results


async def test_concurrent_reserves_across_os_processes(
    db: Database, subprocess_env: dict[str, str]
) -> None:
    store = await db.open()
    key, _ = await store.create_key(credits=CREDITS)
    results = await asyncio.to_thread(_spawn_and_race, db, key.id, subprocess_env, 6)
    assert len(results) == ATTEMPTS
    _check_race(results, db.backend, "6 processes")
    assert await store.balance(key.id) == 0
    assert await store.ledger_total(key.id) == 0
    print(f"[{db.backend}/6 processes] final balance 0, ledger total 0")


async def test_a_burst_of_500_requests_on_one_sqlite_store_all_settle(sqlite_db: Database) -> None:
    """A server's burst of writers queues in-process instead of failing on the file lock."""
    from datetime import UTC, datetime

    from moa.store import UsageRecord

    store = await sqlite_db.open()
    key, _ = await store.create_key(credits=500 * 4)

    async def one(i: int) -> int:
        reservation = await store.reserve(key.id, 4, request_id=f"r{i}")
        assert reservation is not None
        record = UsageRecord(
            request_id=f"r{i}",
            key_id=key.id,
            route="/api/v1/blend",
            strategy="consensus",
            models=["fake/alpha"],
            prompt_tokens=1,
            completion_tokens=1,
            cost_usd=0.0,
            credits_charged=4,
            latency_ms=1,
            status="ok",
            created_at=datetime.now(UTC),
        )
        return (await store.settle(reservation, 4, record=record)).remaining

    await asyncio.gather(*(one(i) for i in range(500)))
    assert await store.balance(key.id) == 0
    assert len(await store.recent_usage(key.id, limit=1000)) == 500
