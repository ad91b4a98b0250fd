"""The :class:`Store` facade: one object the server holds for keys, credits
and usage, hiding engines and transactions from callers.

Each public method is exactly one database transaction. Writes go through the
main engine (on SQLite: ``BEGIN IMMEDIATE``), reads through a DEFERRED view of
the same pool, see :mod:`moa.store.engine`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from moa.store import keys, ledger, usage
from moa.store.engine import create_tables, make_engine, reader
from moa.store.keys import ApiKey
from moa.store.usage import UsageRecord


class Store:
    """Async persistence for API keys, the credit ledger and usage records.

    Several ``Store`` instances (in one or many processes) may share a
    database; all balance changes are atomic in the database itself.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine made by :func:`moa.store.engine.make_engine`;
        prefer :meth:`open`, which also creates the tables."""
        self._engine = engine
        self._reader = reader(engine)
        # SQLite has one writer at a time: queue this process's writers here, on the event
        # loop, instead of letting each hold a connection and spin on the file lock (which
        # under bursts ran past busy_timeout and failed requests).
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite), one at a time per process."""
        if self._write_lock is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._engine.begin() as conn:
            yield conn

    @classmethod
    async def open(cls, database_url: str, *, schema: str | None = None) -> Store:
        """Connect and create missing tables.

        ``database_url`` is e.g. ``sqlite+aiosqlite:///moa.db`` or
        ``postgresql+asyncpg://user@host/db``; ``schema`` (PostgreSQL only)
        namespaces the tables, created if needed.
        """
        engine = make_engine(database_url, schema=schema)
        try:
            await create_tables(engine, schema=schema)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        """Close all pooled connections."""
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- keys ---------------------------------------------------------------

    async def create_key(self, *, credits: int, name: str = "") -> tuple[ApiKey, str]:
        """New key with ``credits``; returns (record, plaintext). The plaintext
        is not stored and cannot be recovered: show it to the user once."""
        async with self._write() as conn:
            return await keys.create_key(conn, credits=credits, name=name)

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key for a presented plaintext; None if unknown or revoked."""
        async with self._reader.begin() as conn:
            return await keys.authenticate(conn, presented)

    async def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (including revoked ones), or None."""
        async with self._reader.begin() as conn:
            return await keys.get_key(conn, key_id)

    async def list_keys(self) -> list[ApiKey]:
        """All keys, oldest first."""
        async with self._reader.begin() as conn:
            return await keys.list_keys(conn)

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; False if no such key (revoking twice returns True)."""
        async with self._write() as conn:
            return await keys.revoke(conn, key_id)

    async def top_up(self, key_id: str, credits: int) -> int:
        """Add credits, return the new balance. KeyError: unknown key;
        ValueError: ``credits <= 0``."""
        async with self._write() as conn:
            return await ledger.top_up(conn, key_id, credits)

    # -- ledger -------------------------------------------------------------

    async def reserve(
        self, key_id: str, credits: int, *, request_id: str | None = None
    ) -> int | None:
        """Atomically take credits before doing work; the remaining balance, or
        None if the balance is too low or the key is revoked. KeyError: unknown
        key; ValueError: ``credits <= 0``."""
        async with self._write() as conn:
            return await ledger.reserve(conn, key_id, credits, request_id=request_id)

    async def settle(
        self,
        key_id: str,
        reserved: int,
        charged: int,
        *,
        request_id: str | None = None,
        record: UsageRecord | None = None,
    ) -> int:
        """Give back ``reserved - charged`` (``0 <= charged <= reserved``) and, if given,
        store the request's usage record in the same transaction, so the ledger and the
        usage records can never disagree; returns the balance."""
        async with self._write() as conn:
            balance = await ledger.settle(conn, key_id, reserved, charged, request_id=request_id)
            if record is not None:
                await usage.record_usage(conn, record)
            return balance

    async def ping(self) -> None:
        """One trivial query: the readiness probe's proof that the database answers."""
        async with self._reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def balance(self, key_id: str) -> int:
        """Current balance. KeyError: unknown key."""
        async with self._reader.begin() as conn:
            return await ledger.balance(conn, key_id)

    async def ledger_total(self, key_id: str) -> int:
        """Sum of the key's ledger entries; equals :meth:`balance` unless the
        books are broken."""
        async with self._reader.begin() as conn:
            return await ledger.ledger_total(conn, key_id)

    # -- usage --------------------------------------------------------------

    async def record_usage(self, record: UsageRecord) -> None:
        """Store one request's usage (the key must exist)."""
        async with self._write() as conn:
            await usage.record_usage(conn, record)

    async def recent_usage(self, key_id: str, limit: int = 50) -> list[UsageRecord]:
        """The key's latest usage records, newest first."""
        async with self._reader.begin() as conn:
            return await usage.recent_usage(conn, key_id, limit)
