"""Table definitions for the store (SQLAlchemy Core).

Core tables rather than ORM classes: every operation here is a single,
hand-written statement (the credit reservation in particular must stay one
atomic ``UPDATE ... RETURNING``), so an identity map and unit-of-work would only
add overhead and hide the SQL that the concurrency guarantees depend on.

The tables are created and changed by the migrations in :mod:`moa.store.migrations`
(a test checks they build exactly what this module describes): changing a table here
means adding a migration there.

The same metadata is used on SQLite and PostgreSQL, so only portable types are
used: timestamps go through :class:`UTCDateTime`, which stores UTC and always
hands back timezone-aware values (SQLite has no timezone support of its own).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always stored as UTC and read back timezone-aware.

    SQLite drops the offset and returns naive values while PostgreSQL returns
    aware ones; normalising here means callers can compare timestamps from
    either backend without surprises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Current time as an aware UTC datetime (the only kind the store accepts)."""
    return datetime.now(UTC)


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    # SHA-256 hex of the plaintext key; the plaintext itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    # Set on successful authentication, at most once a minute (see keys.touch).
    Column("last_used_at", UTCDateTime, nullable=True),
    # Optional limits (moa.store.key_limits): USD the key may spend, and the models it may
    # name as a JSON array; NULL means no limit.
    Column("budget_usd", Float, nullable=True),
    Column("models", Text, nullable=True),
    # The sum of the key's usage records' cost_usd, kept in step with them (each record
    # adds its cost in the same transaction), so the budget check costs no query.
    Column("spent_usd", Float, nullable=False, server_default=text("0")),
    # Belt and braces: ``reserve`` already refuses to overdraw, but the database
    # rejects a negative balance too should any future statement get it wrong.
    CheckConstraint("credits >= 0", name="ck_api_keys_credits_nonnegative"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    # create | topup | reserve | refund; ``amount`` is signed (reserve < 0).
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("request_id", String(100), nullable=True),
    Index("ix_ledger_entries_key_id", "key_id"),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(100), nullable=False),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("route", String(200), nullable=False),
    Column("strategy", String(100), nullable=True),
    Column("models", Text, nullable=False),  # JSON array of model names
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("credits_charged", BigInteger, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("status", String(50), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_usage_records_key_created", "key_id", "created_at"),
    Index("ix_usage_records_request_id", "request_id"),
)

reservations = Table(
    "reservations",
    metadata,
    # Credits held for one running request: a lease its process renews (``owner``,
    # ``expires_at``). Settling deletes the row; a row whose lease ran out belongs to a
    # process that died, and any server refunds it (see :mod:`moa.store.reservations`).
    Column("id", String(40), primary_key=True),
    Column("request_id", String(100), nullable=False),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("credits", BigInteger, nullable=False),
    Column("owner", String(100), nullable=False),
    Column("route", String(200), nullable=False),
    Column("strategy", String(100), nullable=True),
    Column("models", Text, nullable=False),  # JSON array, for the `interrupted` usage record
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_reservations_owner", "owner"),
    Index("ix_reservations_expires_at", "expires_at"),
)
