"""Credit ledger: reserve / settle / top-up semantics and the audit invariant."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from moa.store import Store
from moa.store.schema import ledger_entries


async def test_reserve_takes_credits_and_refuses_overdraw(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    assert await store.reserve(key.id, 4) == 6
    assert await store.reserve(key.id, 6) == 0
    assert await store.reserve(key.id, 1) is None
    assert await store.balance(key.id) == 0


async def test_reserve_refused_when_too_low_leaves_balance(store: Store) -> None:
    key, _ = await store.create_key(credits=3)
    assert await store.reserve(key.id, 4) is None
    assert await store.balance(key.id) == 3
    assert await store.ledger_total(key.id) == 3


async def test_revoked_key_cannot_reserve(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    await store.revoke(key.id)
    assert await store.reserve(key.id, 1) is None
    assert await store.balance(key.id) == 10


async def test_reserve_validates(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    with pytest.raises(KeyError):
        await store.reserve("key_unknown", 1)
    for bad in (0, -5):
        with pytest.raises(ValueError):
            await store.reserve(key.id, bad)
    assert await store.balance(key.id) == 10


async def test_settle_refunds_the_unused_part(store: Store) -> None:
    key, _ = await store.create_key(credits=100)
    assert await store.reserve(key.id, 30) == 70
    assert await store.settle(key.id, reserved=30, charged=12) == 88
    assert await store.reserve(key.id, 8) == 80
    assert await store.settle(key.id, reserved=8, charged=8) == 80  # nothing back
    assert await store.reserve(key.id, 5) == 75
    assert await store.settle(key.id, reserved=5, charged=0) == 80  # all back
    assert await store.ledger_total(key.id) == 80


async def test_settle_validates(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    for reserved, charged in [(5, 6), (5, -1), (-1, -1)]:
        with pytest.raises(ValueError):
            await store.settle(key.id, reserved, charged)
    with pytest.raises(KeyError):
        await store.settle("key_unknown", 5, 1)
    with pytest.raises(KeyError):
        await store.settle("key_unknown", 5, 5)
    assert await store.balance(key.id) == 10


async def test_settle_refunds_even_after_revocation(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    await store.reserve(key.id, 10)
    await store.revoke(key.id)
    assert await store.settle(key.id, 10, 4) == 6


async def test_top_up(store: Store) -> None:
    key, _ = await store.create_key(credits=0)
    assert await store.reserve(key.id, 1) is None
    assert await store.top_up(key.id, 25) == 25
    assert await store.reserve(key.id, 1) == 24
    with pytest.raises(KeyError, match="unknown API key"):
        await store.top_up("key_unknown", 5)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="positive"):
            await store.top_up(key.id, bad)
    assert await store.balance(key.id) == 24


async def test_balance_and_ledger_total_unknown_key(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.balance("key_unknown")
    with pytest.raises(KeyError):
        await store.ledger_total("key_unknown")


async def test_ledger_total_matches_balance_after_a_mix(store: Store) -> None:
    a, _ = await store.create_key(credits=50)
    b, _ = await store.create_key(credits=5)
    await store.reserve(a.id, 20, request_id="r1")
    await store.settle(a.id, 20, 7, request_id="r1")
    await store.top_up(a.id, 15)
    await store.reserve(a.id, 1000)  # refused: not journaled
    await store.reserve(b.id, 5)
    await store.settle(b.id, 5, 5)
    await store.reserve(a.id, 3)
    await store.revoke(a.id)
    await store.reserve(a.id, 3)  # refused
    for key, expected in [(a, 50 - 20 + 13 + 15 - 3), (b, 0)]:
        assert await store.balance(key.id) == expected
        assert await store.ledger_total(key.id) == expected

    async with store._engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ledger_entries.c.kind, ledger_entries.c.amount, ledger_entries.c.request_id)
                .where(ledger_entries.c.key_id == a.id)
                .order_by(ledger_entries.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("create", 50, None),
        ("reserve", -20, "r1"),
        ("refund", 13, "r1"),
        ("topup", 15, None),
        ("reserve", -3, None),
    ]
