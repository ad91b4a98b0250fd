"""Usage records: one row per served request, for billing queries and audits.

Kept separate from the ledger on purpose: the ledger answers "how many credits
does this key have", usage answers "what was done with them" (models, tokens,
cost in USD, latency, outcome) and can be pruned or exported independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store.schema import api_keys, usage_records, utcnow


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """What one request consumed. ``status`` is "ok", an error code (e.g.
    "all_sources_failed", "timeout", "shutting_down"), "cancelled" (the client left) or
    "interrupted" (its server process died; written by the server that refunded it).
    Failed requests are recorded too, since they may still have cost provider tokens."""

    request_id: str
    key_id: str
    route: str
    strategy: str | None = None
    models: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    credits_charged: int = 0
    latency_ms: int = 0
    status: str = "ok"
    created_at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        # Fail where the mistake is made, not later inside an INSERT: a naive
        # timestamp is ambiguous and would sort wrongly against UTC ones.
        if self.created_at.tzinfo is None:
            raise ValueError("UsageRecord.created_at must be timezone-aware (UTC)")


def _to_record(row: RowMapping) -> UsageRecord:
    return UsageRecord(
        request_id=row["request_id"],
        key_id=row["key_id"],
        route=row["route"],
        strategy=row["strategy"],
        models=list(json.loads(row["models"])),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        cost_usd=float(row["cost_usd"]),
        credits_charged=int(row["credits_charged"]),
        latency_ms=int(row["latency_ms"]),
        status=row["status"],
        created_at=row["created_at"],
    )


async def record_usage(conn: AsyncConnection, record: UsageRecord) -> None:
    """Insert ``record`` and add its cost to the key's ``spent_usd``, in the caller's
    transaction; the key must exist (foreign key)."""
    await _add_spent(conn, record.key_id, record.cost_usd)
    await conn.execute(
        insert(usage_records).values(
            request_id=record.request_id,
            key_id=record.key_id,
            route=record.route,
            strategy=record.strategy,
            # JSON text rather than a native JSON type keeps the column identical
            # on SQLite and PostgreSQL; nobody queries inside it.
            models=json.dumps(list(record.models)),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            cost_usd=record.cost_usd,
            credits_charged=record.credits_charged,
            latency_ms=record.latency_ms,
            status=record.status,
            created_at=record.created_at,
        )
    )


async def recent_usage(conn: AsyncConnection, key_id: str, limit: int = 50) -> list[UsageRecord]:
    """The key's latest ``limit`` records, newest first.

    Equal timestamps (coarse clocks, bulk inserts) fall back to insertion order
    via the autoincrement id, so the order is deterministic.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    stmt = (
        select(usage_records)
        .where(usage_records.c.key_id == key_id)
        .order_by(usage_records.c.created_at.desc(), usage_records.c.id.desc())
        .limit(limit)
    )
    return [_to_record(row) for row in (await conn.execute(stmt)).mappings()]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page of usage ended: its last record's ``created_at`` and row id. Keyset
    rather than an offset, so records written or deleted while a client pages through
    neither shift a record onto a second page nor past every page."""

    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class UsagePage:
    """Records newest first; ``next`` is where the following page starts (after it),
    None when this page is the last."""

    records: list[UsageRecord]
    next: Position | None


async def usage_page(
    conn: AsyncConnection,
    key_id: str,
    *,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Position | None = None,
) -> UsagePage:
    """Up to ``limit`` of the key's records with ``since <= created_at < until``, newest
    first, strictly after ``after`` in that order. One more row is read than returned, so
    the last page says it is the last instead of leaving an empty page to fetch."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    c = usage_records.c
    stmt = select(usage_records).where(c.key_id == key_id)
    if since is not None:
        stmt = stmt.where(c.created_at >= since)
    if until is not None:
        stmt = stmt.where(c.created_at < until)
    if after is not None:
        same_time = and_(c.created_at == after.created_at, c.id < after.id)
        stmt = stmt.where(or_(c.created_at < after.created_at, same_time))
    stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
    rows = list((await conn.execute(stmt)).mappings())
    last = rows[limit - 1] if len(rows) > limit else None
    following = Position(last["created_at"], int(last["id"])) if last is not None else None
    return UsagePage([_to_record(row) for row in rows[:limit]], following)


async def forget(conn: AsyncConnection, *, key_id: str, request_id: str, status: str) -> None:
    """Delete the request's records with ``status``: a late settlement replaces the
    ``interrupted`` record a reaper wrote, so a request keeps one record."""
    stmt = delete(usage_records).where(
        usage_records.c.key_id == key_id,
        usage_records.c.request_id == request_id,
        usage_records.c.status == status,
    )
    costs = (await conn.execute(stmt.returning(usage_records.c.cost_usd))).scalars().all()
    await _add_spent(conn, key_id, -sum(costs))


async def _add_spent(conn: AsyncConnection, key_id: str, cost_usd: float) -> None:
    """Keep ``api_keys.spent_usd`` the sum of the key's records (see moa.store.key_limits)."""
    if cost_usd:
        spent = api_keys.c.spent_usd + cost_usd
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(spent_usd=spent))
