"""Persistence for API keys, the credit ledger and usage records.

SQLAlchemy 2 async; SQLite (aiosqlite, WAL) by default, PostgreSQL (asyncpg)
when several hosts share one database. Use :class:`Store`::

    store = await Store.open("sqlite+aiosqlite:///moa.db")
    key, plaintext = await store.create_key(credits=1000, name="alice")
"""

from moa.store.keys import ApiKey
from moa.store.reservations import Reservation, Settlement
from moa.store.store import Store
from moa.store.usage import UsageRecord

__all__ = ["ApiKey", "Reservation", "Settlement", "Store", "UsageRecord"]
