"""SQLite connection settings: WAL, busy timeout, foreign keys, and writes that
take the write lock at BEGIN (IMMEDIATE) while reads do not."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text, update

from moa.store import Store
from moa.store.schema import api_keys

from .conftest import Database


@contextmanager
def _raw(db: Database, timeout: float = 0.0) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection playing "another process" (no busy wait)."""
    assert db.sqlite_path is not None
    conn = sqlite3.connect(db.sqlite_path, timeout=timeout, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


async def test_pragmas(sqlite_db: Database) -> None:
    store = await sqlite_db.open()
    async with store._engine.connect() as conn:
        pragmas = {
            name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}


async def test_write_transactions_begin_immediate(sqlite_db: Database) -> None:
    store = await sqlite_db.open()
    with _raw(sqlite_db) as other:
        async with store._engine.begin():
            # No statement yet, but the write lock is already ours.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")


async def test_reads_do_not_wait_for_a_writer(sqlite_db: Database) -> None:
    store = await sqlite_db.open()
    key, plaintext = await store.create_key(credits=10)
    with _raw(sqlite_db) as other:
        other.execute("BEGIN IMMEDIATE")  # another process is mid-write
        try:
            async with asyncio.timeout(1):  # far below busy_timeout
                assert await store.balance(key.id) == 10
                assert await store.authenticate(plaintext) == key
                assert len(await store.list_keys()) == 1
        finally:
            other.execute("ROLLBACK")


async def test_writer_queues_behind_another_writer(sqlite_db: Database) -> None:
    """With the lock taken elsewhere, a reservation waits (busy_timeout) and
    then succeeds, instead of failing with "database is locked"."""
    store = await sqlite_db.open()
    key, _ = await store.create_key(credits=10)
    with _raw(sqlite_db) as other:
        other.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(store.reserve(key.id, 3))
        await asyncio.sleep(0.3)
        assert not task.done()
        other.execute("COMMIT")
        reservation = await task
        assert reservation is not None and reservation.remaining == 7


async def test_naive_read_modify_write_is_still_serialised(sqlite_db: Database) -> None:
    """Because every write transaction starts IMMEDIATE, even a two-statement
    read-then-write cannot interleave across engines (and does not deadlock
    into SQLITE_BUSY as DEFERRED lock upgrades would)."""
    stores = [await sqlite_db.open() for _ in range(4)]
    key, _ = await stores[0].create_key(credits=20)

    async def naive_reserve(store: Store) -> bool:
        async with store._engine.begin() as conn:
            where = api_keys.c.id == key.id
            credits = (await conn.execute(select(api_keys.c.credits).where(where))).scalar_one()
            await asyncio.sleep(0.001)
            if credits < 4:
                return False
            await conn.execute(update(api_keys).where(where).values(credits=credits - 4))
            return True

    wins = await asyncio.gather(*(naive_reserve(stores[i % 4]) for i in range(30)))
    assert sum(wins) == 5
    assert await stores[0].balance(key.id) == 0


async def test_open_twice_and_context_manager(sqlite_db: Database) -> None:
    """Reopening an existing file keeps the data (migrating an up-to-date database is a no-op)."""
    async with await Store.open(sqlite_db.url) as first:
        key, plaintext = await first.create_key(credits=9)
    async with await Store.open(sqlite_db.url) as second:
        assert await second.authenticate(plaintext) == key


async def test_schema_option_is_postgres_only(sqlite_db: Database) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        await Store.open(sqlite_db.url, schema="elsewhere")
