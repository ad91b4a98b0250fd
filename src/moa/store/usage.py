"""Usage records: one row per served request, for billing queries and audits.

Kept separate from the ledger on purpose: the ledger answers "how many credits
does this key have", usage answers "what was done with them" (models, tokens,
cost in USD, latency, outcome) and can be pruned or exported independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select, update
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
