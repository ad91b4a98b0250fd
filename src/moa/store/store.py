"""The :class:`Store`: the one object the server holds for keys, credits, reservations
and usage, hiding engines and transactions from callers.

Each public method is exactly one database transaction. Writes go through the
main engine (on SQLite: ``BEGIN IMMEDIATE``), reads through a DEFERRED view of
the same pool, see :mod:`moa.store.database`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from moa.store import keys, ledger, reservations, usage, usage_totals
from moa.store.database import make_directory, make_engine, migrate, reader
from moa.store.keys import ApiKey
from moa.store.reservations import Reservation, Settlement
from moa.store.schema import utcnow
from moa.store.usage import Position, UsagePage, UsageRecord
from moa.store.usage_totals import UsageTotal

log = logging.getLogger("moa.store")
#: Seconds a reservation stays held without renewal (``[server] reservation_lease_s``).
DEFAULT_LEASE_S = 30.0
#: Expired reservations refunded per pass; the next pass (a third of a lease later) goes on.
_REAP_BATCH = 200


class Store:
    """Async persistence for API keys, the credit ledger and usage records.

    Several ``Store`` instances (in one or many processes) may share a
    database; all balance changes are atomic in the database itself.
    """

    def __init__(self, engine: AsyncEngine, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        """Wrap an engine made by :func:`moa.store.database.make_engine`;
        prefer :meth:`open`, which also migrates the tables."""
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self._engine = engine
        self.lease_s = lease_s
        #: Whose leases this store renews: one id per Store (per server process).
        self.owner = reservations.new_owner()
        self._abandoned: set[str] = set()  # reservations whose settlement failed
        self._reader = reader(engine)
        # SQLite has one writer at a time: queue this process's writers here, on the event
        # loop, instead of letting each hold a connection and spin on the file lock (which
        # under bursts ran past busy_timeout and failed requests).
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # ``last_used_at`` writes in flight, one per key at most.
        self._touching: dict[str, asyncio.Task[None]] = {}

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
    async def open(
        cls, database_url: str, *, schema: str | None = None, lease_s: float = DEFAULT_LEASE_S
    ) -> Store:
        """Connect and bring the tables up to date (see :mod:`moa.store.migrations`).

        ``database_url`` is e.g. ``sqlite+aiosqlite:///moa.db`` or
        ``postgresql+asyncpg://user@host/db``; ``schema`` (PostgreSQL only)
        namespaces the tables, created if needed. ``lease_s``: how long a reservation
        stays held unless renewed (see :meth:`keep_leases`).
        """
        engine = make_engine(database_url, schema=schema)
        try:
            await make_directory(engine)
            await migrate(engine, schema=schema)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, lease_s=lease_s)

    async def close(self) -> None:
        """Finish recording key uses, then close all pooled connections."""
        await self.recorded_uses()
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

    async def create_key(
        self,
        *,
        credits: int,
        name: str = "",
        budget_usd: float | None = None,
        models: Sequence[str] | None = None,
    ) -> tuple[ApiKey, str]:
        """New key with ``credits`` and optional limits (``moa.store.key_limits``); returns
        (record, plaintext). The plaintext is not stored and cannot be recovered: show it
        to the user once. ValueError naming the field for a bad value."""
        async with self._write() as conn:
            return await keys.create_key(
                conn, credits=credits, name=name, budget_usd=budget_usd, models=models
            )

    async def update_key(
        self,
        key_id: str,
        *,
        name: str | keys.Unset = keys.UNSET,
        budget_usd: float | keys.Unset | None = keys.UNSET,
        models: Sequence[str] | keys.Unset | None = keys.UNSET,
    ) -> ApiKey | None:
        """Change a key's name or limits (None clears a limit); None if no such key."""
        async with self._write() as conn:
            return await keys.update_key(
                conn, key_id, name=name, budget_usd=budget_usd, models=models
            )

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key for a presented plaintext; None if unknown or revoked. Records
        the use (``last_used_at``) when the last one recorded is a minute old, in the
        background: authentication itself only reads, so it never waits for a writer."""
        async with self._reader.begin() as conn:
            key = await keys.authenticate(conn, presented)
        now = utcnow()
        if key is not None and keys.needs_touch(key, now) and key.id not in self._touching:
            key_id = key.id
            task = asyncio.create_task(self._touch(key_id, now), name="moa-key-touch")
            self._touching[key_id] = task
            task.add_done_callback(lambda _: self._touching.pop(key_id, None))
        return key

    async def _touch(self, key_id: str, now: datetime) -> None:
        try:
            async with self._write() as conn:
                await keys.touch(conn, key_id, now)
        except Exception:  # informational: a failed write must not fail anything else
            log.warning("recording the last use of key %s failed", key_id, exc_info=True)

    async def recorded_uses(self) -> None:
        """Wait until the uses :meth:`authenticate` is recording are written."""
        await asyncio.gather(*self._touching.values(), return_exceptions=True)

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
        self,
        key_id: str,
        credits: int,
        *,
        request_id: str | None = None,
        route: str = "",
        strategy: str | None = None,
        models: Sequence[str] = (),
    ) -> Reservation | None:
        """Atomically take credits before doing work, as a lease this store renews (run
        :meth:`keep_leases` while requests run). None if the balance is too low or the key
        is revoked. KeyError: unknown key; ValueError: ``credits < 0``. ``route``,
        ``strategy`` and ``models`` describe the request in its usage record should this
        process die before settling."""
        async with self._write() as conn:
            return await reservations.reserve(
                conn,
                key_id=key_id,
                credits=credits,
                request_id=request_id or f"req_{uuid.uuid4().hex[:24]}",
                route=route,
                strategy=strategy,
                models=models,
                owner=self.owner,
                lease_s=self.lease_s,
            )

    async def settle(
        self, reservation: Reservation, charged: int, *, record: UsageRecord | None = None
    ) -> Settlement:
        """Keep ``charged`` (``0 <= charged <= reservation.credits``), refund the rest and,
        if given, store the request's usage record in the same transaction, so the ledger
        and the usage records can never disagree."""
        try:
            async with self._write() as conn:
                return await reservations.settle(conn, reservation, charged, record)
        except BaseException:
            # The request is over but its row stayed: stop renewing it, so its lease runs
            # out and a reaper (this store's or another's) refunds it, instead of the
            # credits staying held for as long as this process lives.
            self._abandoned.add(reservation.id)
            raise

    async def renew_leases(self) -> int:
        """Extend every reservation this store holds by a lease, but those whose settlement
        failed; how many there were."""
        async with self._write() as conn:
            if self._abandoned:
                self._abandoned &= await reservations.still_held(conn, self._abandoned)
            return await reservations.renew(conn, self.owner, self.lease_s, self._abandoned)

    async def reap_expired(self, limit: int = _REAP_BATCH) -> list[str]:
        """Refund up to ``limit`` reservations whose lease ran out (their process died),
        one transaction each, recording them ``interrupted``; their request ids."""
        reaped: list[str] = []
        while len(reaped) < limit:
            async with self._write() as conn:
                request_id = await reservations.reap_one(conn)
            if request_id is None:
                break
            reaped.append(request_id)
        if reaped:
            log.warning("refunded %d reservation(s) of dead processes", len(reaped))
        return reaped

    @asynccontextmanager
    async def keep_leases(self) -> AsyncIterator[None]:
        """While inside: refund dead processes' reservations now, then every third of a
        lease renew this store's leases and refund newly expired ones. Every server
        process runs this for its lifetime."""
        await self.reap_expired()
        task = asyncio.create_task(self._tend_leases(), name="moa-leases")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _tend_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self.renew_leases()
                await self.reap_expired()
            except Exception:  # a database blip must not stop renewal for good
                log.exception("renewing reservation leases failed; retrying")

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

    async def usage_page(
        self,
        key_id: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Position | None = None,
    ) -> UsagePage:
        """A page of the key's records in ``[since, until)``, newest first, continuing
        strictly after ``after`` (the previous page's ``next``)."""
        async with self._reader.begin() as conn:
            return await usage.usage_page(
                conn, key_id, limit=limit, since=since, until=until, after=after
            )

    async def usage_totals(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
    ) -> list[UsageTotal]:
        """What was used in ``[since, until)`` per UTC day, key, route, strategy and models
        (every key's, or ``key_id``'s): what a team bills from."""
        async with self._reader.begin() as conn:
            return await usage_totals.usage_totals(conn, since=since, until=until, key_id=key_id)
