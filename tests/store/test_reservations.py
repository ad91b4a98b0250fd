"""Reservations are leases: settled once, renewed by their owner, refunded (and recorded
`interrupted`) by any store once their owner stops renewing, never refunded twice.

A dead process is played by a Store whose leases are pushed into the past with one UPDATE:
that is exactly the state a SIGKILL leaves behind, without waiting for a clock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from moa.store import Reservation, Store, UsageRecord
from moa.store.schema import reservations, utcnow

from .conftest import Database


async def _held(store: Store, key_id: str, credits: int = 4, request_id: str = "r") -> Reservation:
    reservation = await store.reserve(
        key_id, credits, request_id=request_id, route="/api/v1/blend", models=["fake/alpha"]
    )
    assert reservation is not None
    return reservation


async def _expire(store: Store, owner: str) -> None:
    """The owner stopped renewing long ago (its process died)."""
    async with store._engine.begin() as conn:
        await conn.execute(
            update(reservations)
            .where(reservations.c.owner == owner)
            .values(expires_at=utcnow().replace(year=2000))
        )


async def _held_ids(store: Store) -> set[str]:
    async with store._engine.connect() as conn:
        return set((await conn.execute(select(reservations.c.id))).scalars())


async def _books_balance(store: Store, key_id: str, expected: int) -> None:
    assert await store.balance(key_id) == expected
    assert await store.ledger_total(key_id) == expected


async def test_settling_releases_the_reservation(db: Database) -> None:
    store = await db.open()
    key, _ = await store.create_key(credits=10)
    reservation = await _held(store, key.id)
    assert await _held_ids(store) == {reservation.id}
    settlement = await store.settle(reservation, 3)
    assert (settlement.charged, settlement.remaining) == (3, 7)
    assert await _held_ids(store) == set()


async def test_a_dead_process_reservation_is_refunded_and_recorded_interrupted(
    db: Database,
) -> None:
    dead, alive = await db.open(), await db.open()
    key, _ = await dead.create_key(credits=10)
    await _held(dead, key.id, 4, request_id="req_lost")
    await _expire(dead, dead.owner)
    assert await alive.reap_expired() == ["req_lost"]
    await _books_balance(alive, key.id, 10)
    [record] = await alive.recent_usage(key.id)
    assert (record.request_id, record.status, record.credits_charged) == (
        "req_lost",
        "interrupted",
        0,
    )
    assert (record.route, record.models) == ("/api/v1/blend", ["fake/alpha"])
    assert await alive.reap_expired() == []


async def test_a_live_reservation_on_another_store_is_never_reaped(db: Database) -> None:
    owner, other = await db.open(), await db.open()
    key, _ = await owner.create_key(credits=10)
    reservation = await _held(owner, key.id)
    assert await other.reap_expired() == []
    await _books_balance(other, key.id, 6)
    assert (await owner.settle(reservation, 4)).remaining == 6


async def test_renewal_rescues_only_the_renewing_store_leases(db: Database) -> None:
    a, b = await db.open(), await db.open()
    key, _ = await a.create_key(credits=20)
    await _held(a, key.id, request_id="a1")
    await _held(a, key.id, request_id="a2")
    await _held(b, key.id, request_id="b1")
    await _expire(a, a.owner)
    await _expire(b, b.owner)
    assert await a.renew_leases() == 2  # one statement renews every lease a holds
    assert await b.reap_expired() == ["b1"]
    await _books_balance(b, key.id, 20 - 8)


async def test_entering_keep_leases_refunds_expired_reservations_at_once(db: Database) -> None:
    dead, starting = await db.open(), await db.open()
    key, _ = await dead.create_key(credits=10)
    await _held(dead, key.id)
    await _expire(dead, dead.owner)
    async with starting.keep_leases():
        await _books_balance(starting, key.id, 10)


async def test_a_settle_after_the_reaper_charges_once_and_keeps_one_usage_record(
    db: Database,
) -> None:
    stalled, reaper = await db.open(), await db.open()
    key, _ = await stalled.create_key(credits=10)
    reservation = await _held(stalled, key.id, 4, request_id="req_late")
    await _expire(stalled, stalled.owner)
    assert await reaper.reap_expired() == ["req_late"]
    record = UsageRecord(request_id="req_late", key_id=key.id, route="/api/v1/blend")
    settlement = await stalled.settle(reservation, 3, record=record)
    assert (settlement.charged, settlement.remaining) == (3, 7)
    await _books_balance(reaper, key.id, 7)
    [kept] = await reaper.recent_usage(key.id)
    assert (kept.status, kept.credits_charged) == ("ok", 3)


async def test_a_late_settle_never_overdraws_the_key(db: Database) -> None:
    stalled, reaper = await db.open(), await db.open()
    key, _ = await stalled.create_key(credits=4)
    reservation = await _held(stalled, key.id, 4)
    await _expire(stalled, stalled.owner)
    await reaper.reap_expired()
    spent = await _held(reaper, key.id, 3, request_id="meanwhile")  # the refund is spent
    await reaper.settle(spent, 3)
    settlement = await stalled.settle(reservation, 4)
    assert (settlement.charged, settlement.remaining) == (1, 0)
    await _books_balance(reaper, key.id, 0)


async def test_settle_and_reaper_racing_refund_each_reservation_exactly_once(
    db: Database,
) -> None:
    """Every request keeps 2 of its 4 credits whoever wins the race for its row: a
    double refund would leave more, a lost one less."""
    owner, reapers = await db.open(), [await db.open() for _ in range(3)]
    key, _ = await owner.create_key(credits=400)
    held = [await _held(owner, key.id, 4, request_id=f"r{i}") for i in range(60)]
    await _expire(owner, owner.owner)
    settled = [owner.settle(r, 2) for r in held]
    reaped = [reaper.reap_expired() for reaper in reapers]
    await asyncio.gather(*settled, *reaped)
    await _books_balance(owner, key.id, 400 - 60 * 2)
    assert await _held_ids(owner) == set()


async def test_a_reservation_whose_settlement_failed_is_left_to_expire_and_be_refunded(
    db: Database,
) -> None:
    owner, other = await db.open(), await db.open()
    key, _ = await owner.create_key(credits=10)
    failed = await _held(owner, key.id, 4, request_id="failed")
    await _held(owner, key.id, 4, request_id="running")
    broken = UsageRecord(request_id="failed", key_id="key_missing", route="/api/v1/blend")
    with pytest.raises(IntegrityError):  # the usage record names no key: nothing commits
        await owner.settle(failed, 4, record=broken)
    await _expire(owner, owner.owner)
    assert await owner.renew_leases() == 1, "only the running request is renewed"
    assert await other.reap_expired() == ["failed"]
    await _books_balance(other, key.id, 6)
