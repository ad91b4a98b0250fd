"""Usage records: round-trip and newest-first listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from moa.store import Store, UsageRecord


def _record(key_id: str, n: int, created_at: datetime) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{n}",
        key_id=key_id,
        route="/api/v1/blend",
        strategy="moa" if n % 2 else None,
        models=[f"model-{n}", "synth"],
        prompt_tokens=100 + n,
        completion_tokens=50 + n,
        cost_usd=0.00123 * n,
        credits_charged=n,
        latency_ms=1000 + n,
        status="ok" if n % 3 else "all_sources_failed",
        created_at=created_at,
    )


async def test_record_and_read_back(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    record = _record(key.id, 7, datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    await store.record_usage(record)
    assert await store.recent_usage(key.id) == [record]


async def test_recent_usage_newest_first_with_limit(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    other, _ = await store.create_key(credits=1)
    base = datetime(2025, 6, 1, tzinfo=UTC)
    # Inserted out of order on purpose: ordering is by time, not insertion.
    offsets = [3, 0, 4, 1, 2]
    for n in offsets:
        await store.record_usage(_record(key.id, n, base + timedelta(seconds=n)))
    await store.record_usage(_record(other.id, 99, base + timedelta(days=1)))

    recent = await store.recent_usage(key.id)
    assert [r.request_id for r in recent] == ["req-4", "req-3", "req-2", "req-1", "req-0"]
    assert [r.request_id for r in await store.recent_usage(key.id, limit=2)] == [
        "req-4",
        "req-3",
    ]
    assert [r.request_id for r in await store.recent_usage(other.id)] == ["req-99"]
    assert await store.recent_usage("key_nobody") == []
    with pytest.raises(ValueError):
        await store.recent_usage(key.id, limit=0)


async def test_same_timestamp_falls_back_to_insertion_order(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    moment = datetime.now(UTC)
    for n in range(3):
        await store.record_usage(_record(key.id, n, moment))
    assert [r.request_id for r in await store.recent_usage(key.id)] == [
        "req-2",
        "req-1",
        "req-0",
    ]


async def test_defaults_and_timezone(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    before = datetime.now(UTC)
    await store.record_usage(UsageRecord(request_id="r", key_id=key.id, route="/x"))
    (got,) = await store.recent_usage(key.id)
    assert got.models == [] and got.status == "ok" and got.strategy is None
    assert got.created_at.tzinfo is not None and got.created_at >= before
    with pytest.raises(ValueError, match="timezone-aware"):
        UsageRecord(request_id="r2", key_id=key.id, route="/x", created_at=datetime.now())


async def test_usage_for_unknown_key_is_rejected(store: Store) -> None:
    with pytest.raises(IntegrityError):
        await store.record_usage(UsageRecord(request_id="r", key_id="key_nobody", route="/x"))
