"""Credit ledger: reserve / settle / top-up semantics and the audit invariant."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from moa.store import Reservation, Store
from moa.store.schema import ledger_entries


async def _held(store: Store, key_id: str, credits: int, **fields: str) -> Reservation:
    reservation = await store.reserve(key_id, credits, **fields)
    assert reservation is not None, f"reserving {credits} was refused"
    return reservation


async def test_reserve_takes_credits_and_refuses_overdraw(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    assert (await _held(store, key.id, 4)).remaining == 6
    assert (await _held(store, key.id, 6)).remaining == 0
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
    for bad in (-1, -5):
        with pytest.raises(ValueError):
            await store.reserve(key.id, bad)
    assert await store.balance(key.id) == 10


async def test_a_free_request_reserves_nothing_but_needs_an_active_key(store: Store) -> None:
    key, _ = await store.create_key(credits=0)
    free = await _held(store, key.id, 0)
    assert (await store.settle(free, 0)).remaining == 0
    await store.revoke(key.id)
    assert await store.reserve(key.id, 0) is None
    assert await store.ledger_total(key.id) == 0


async def test_settle_refunds_the_unused_part(store: Store) -> None:
    key, _ = await store.create_key(credits=100)
    first = await _held(store, key.id, 30)
    assert first.remaining == 70
    assert (await store.settle(first, 12)).remaining == 88
    second = await _held(store, key.id, 8)
    assert (await store.settle(second, 8)).remaining == 80  # nothing back
    third = await _held(store, key.id, 5)
    assert (await store.settle(third, 0)).remaining == 80  # all back
    assert await store.ledger_total(key.id) == 80


async def test_settle_charges_no_more_than_was_reserved(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    reservation = await _held(store, key.id, 5)
    for charged in (6, -1):
        with pytest.raises(ValueError):
            await store.settle(reservation, charged)
    assert await store.balance(key.id) == 5


async def test_settle_refunds_even_after_revocation(store: Store) -> None:
    key, _ = await store.create_key(credits=10)
    reservation = await _held(store, key.id, 10)
    await store.revoke(key.id)
    assert (await store.settle(reservation, 4)).remaining == 6


async def test_top_up(store: Store) -> None:
    key, _ = await store.create_key(credits=0)
    assert await store.reserve(key.id, 1) is None
    assert await store.top_up(key.id, 25) == 25
    assert (await _held(store, key.id, 1)).remaining == 24
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
    await store.settle(await _held(store, a.id, 20, request_id="r1"), 7)
    await store.top_up(a.id, 15)
    assert await store.reserve(a.id, 1000) is None  # refused: not journaled
    await store.settle(await _held(store, b.id, 5), 5)
    await _held(store, a.id, 3, request_id="r2")
    await store.revoke(a.id)
    assert await store.reserve(a.id, 3) is None  # refused
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
        ("reserve", -3, "r2"),
    ]
