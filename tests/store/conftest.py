"""Fixtures for store tests: real SQLite files and the real PostgreSQL server.

Nothing is mocked: concurrency guarantees live in the databases' locking, so
only real databases can show them. PostgreSQL tests each get a fresh schema
(dropped afterwards), so parallel or repeated runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from moa.store import Store


async def _pg_execute(url: str, sql: str) -> None:
    """Run one statement on a throwaway connection (no pool left behind)."""
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 3})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@dataclass
class Database:
    """Where a test's store lives; ``open()`` may be called several times to
    get independent engines/pools on the same data (like several processes)."""

    backend: str
    url: str
    schema: str | None = None
    sqlite_path: Path | None = None
    _opened: list[Store] = field(default_factory=list)

    async def open(self, *, lease_s: float = 30.0) -> Store:
        store = await Store.open(self.url, schema=self.schema, lease_s=lease_s)
        self._opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self._opened:
            await store.close()


def sqlite_database(tmp_path: Path) -> Database:
    path = tmp_path / "moa.db"
    return Database("sqlite", f"sqlite+aiosqlite:///{path}", sqlite_path=path)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = sqlite_database(tmp_path)
    yield db
    await db.close_all()


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    schema = f"moa_test_{os.getpid()}_{secrets.token_hex(4)}"
    db = Database("postgres", postgres_url, schema=schema)
    yield db
    await db.close_all()
    await _pg_execute(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on both backends."""
    database: Database = request.getfixturevalue(f"{request.param}_db")
    return database


@pytest.fixture
async def store(db: Database) -> Store:
    return await db.open()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes that import ``moa`` (installed editable)."""
    return dict(os.environ)
