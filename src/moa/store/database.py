"""The database: connections with per-backend settings, and schema migrations.

SQLite is the zero-setup default and PostgreSQL the option for several server
hosts. Both must give the same guarantee for the credit ledger: concurrent
writers never interleave inside one transaction's read-modify-write.

* PostgreSQL gets that from row locks: the single ``UPDATE ... WHERE credits >=
  :c`` re-checks its condition after waiting for a concurrent writer.
* SQLite only has a database-wide write lock. Python's sqlite3/aiosqlite would
  normally open transactions lazily (``BEGIN DEFERRED``), so two connections can
  both start reading and one then fails with ``SQLITE_BUSY`` when it upgrades to
  a write lock - busy_timeout does not help in that case. We therefore take the
  driver's transaction handling away (``isolation_level = None``) and emit
  ``BEGIN IMMEDIATE`` ourselves, as the SQLAlchemy SQLite docs describe: writers
  queue on the lock up front (waiting up to ``busy_timeout``) instead of failing
  mid-way. Read-only work uses ``BEGIN DEFERRED`` via :func:`reader` so that,
  with WAL, reads never wait for writers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateSchema

from moa.store import migrations

#: Execution option naming the SQLite ``BEGIN`` mode (IMMEDIATE unless overridden).
SQLITE_BEGIN_OPTION = "moa_sqlite_begin"
#: How long (ms) a SQLite writer waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Arbitrary constant key for the advisory lock that serialises migrations on
#: PostgreSQL ("moa" in ASCII), so several processes can start at once.
_PG_DDL_LOCK_KEY = 0x6D6F61


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Install the connect/begin hooks that give SQLite WAL + IMMEDIATE writes."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Stop the driver from emitting its own (DEFERRED) BEGIN; see module doc.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            # busy_timeout first: switching to WAL briefly needs a lock that a
            # concurrently starting process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise ValueError(f"bad {SQLITE_BEGIN_OPTION}: {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(database_url: str, *, schema: str | None = None) -> AsyncEngine:
    """Create the async engine for ``database_url`` with the settings above.

    ``schema`` (PostgreSQL only) places all tables in that schema, which lets
    several deployments or test runs share one database without colliding.
    """
    # Bound parameters include key hashes and request data; keep them out of
    # exception messages and logs.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if database_url.startswith("postgresql"):
        # Long-lived servers outlive database restarts and idle-connection
        # reaping; a cheap ping on checkout beats failing the next request.
        kwargs["pool_pre_ping"] = True
    if schema is not None:
        if not database_url.startswith("postgresql"):
            raise ValueError("schema is only supported on PostgreSQL")
        kwargs["execution_options"] = {"schema_translate_map": {None: schema}}
    engine = create_async_engine(database_url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


async def make_directory(engine: AsyncEngine) -> None:
    """Create a SQLite file's directory on first use (the default one is in the user data
    directory, which may not exist yet), private to the user since keys live in it."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    if not database.startswith("file:"):
        directory = Path(database).parent
        await asyncio.to_thread(directory.mkdir, mode=0o700, parents=True, exist_ok=True)


def reader(engine: AsyncEngine) -> AsyncEngine:
    """A view of ``engine`` for read-only transactions (same connection pool).

    On SQLite these begin DEFERRED, so they take no write lock; elsewhere the
    option is ignored.
    """
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})


async def migrate(engine: AsyncEngine, *, schema: str | None = None) -> None:
    """Bring the tables to the newest migration; safe when several processes start at once.

    Checking the version and then migrating races between processes, so both run under
    one lock: on SQLite the surrounding ``BEGIN IMMEDIATE`` transaction (DDL is
    transactional there), on PostgreSQL an advisory lock held until commit.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_DDL_LOCK_KEY})
            if schema is not None:
                await conn.execute(CreateSchema(schema, if_not_exists=True))
        if await conn.run_sync(migrations.current_revision, schema) != migrations.HEAD:
            revisions = await asyncio.to_thread(migrations.load_revisions)
            await conn.run_sync(migrations.upgrade, revisions, schema)
