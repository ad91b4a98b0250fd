"""Credit reservations are leases, so that no credit is lost when a server process dies.

A request reserves its worst-case price before any work (:func:`reserve`): in one
transaction the key's balance drops (the ledger's single conditional ``UPDATE``) and a
``reservations`` row records who holds the credits (``owner``, one id per process) and
until when (``expires_at``, the lease). While the process lives it renews every lease it
holds with one statement (:func:`renew`), however many requests are running, so renewal
costs nothing per request. Settling deletes the row and refunds what was not charged
(:func:`settle`). A row whose lease ran out belongs to a process that died: any server
refunds it in full and records the request as ``interrupted`` (:func:`reap_one`).

Settle and the reaper both begin by deleting the row (``DELETE ... RETURNING``), so
exactly one of them finds it and refunds; never both. On PostgreSQL the reaper skips rows
another transaction holds (``FOR UPDATE SKIP LOCKED``) and the lease is re-checked under
the row lock, so a renewal in flight wins; SQLite serialises every writer
(``BEGIN IMMEDIATE``).

A process that stalls past its lease (event loop blocked, host paused) finds, when it
finally settles, that the reaper refunded everything. It then charges what it owes as far
as the balance allows (:func:`moa.store.ledger.charge_at_most`, never below zero), never
refunds a second time, and its own usage record replaces the reaper's ``interrupted`` one.

Clocks: on PostgreSQL leases are set and compared with the database's clock, so replicas
on hosts whose clocks disagree still agree on expiry; SQLite lives on one host and uses it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store import ledger, usage
from moa.store.schema import UTCDateTime, reservations, utcnow
from moa.store.usage import UsageRecord

#: Usage status of a request whose process died while it held a reservation.
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """Credits held for one running request; hand it back to :func:`settle`."""

    id: str
    request_id: str
    key_id: str
    credits: int
    remaining: int  # the key's balance right after reserving


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling charged and the balance it left. ``charged`` is less than asked only
    when a reaper had refunded the reservation and the balance could not cover it."""

    charged: int
    remaining: int


def new_owner() -> str:
    """An id for this process's leases: host and pid for operators, random for uniqueness."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _clock(conn: AsyncConnection, after_s: float = 0.0) -> ColumnElement[Any]:
    """Now (plus ``after_s``) by the clock every replica shares; see the module doc."""
    if conn.dialect.name == "postgresql":
        return func.now() + timedelta(seconds=after_s) if after_s else func.now()
    return literal(utcnow() + timedelta(seconds=after_s), UTCDateTime())


async def reserve(
    conn: AsyncConnection,
    *,
    key_id: str,
    credits: int,
    request_id: str,
    route: str,
    strategy: str | None,
    models: Sequence[str],
    owner: str,
    lease_s: float,
) -> Reservation | None:
    """Take ``credits`` and record the lease; None when the ledger refuses (too few
    credits, revoked key). KeyError for an unknown key, ValueError for negative credits."""
    remaining = await ledger.reserve(conn, key_id, credits, request_id=request_id)
    if remaining is None:
        return None
    reservation_id = "rsv_" + secrets.token_hex(12)
    await conn.execute(
        insert(reservations).values(
            id=reservation_id,
            request_id=request_id,
            key_id=key_id,
            credits=credits,
            owner=owner,
            route=route,
            strategy=strategy,
            models=json.dumps(list(models)),
            created_at=utcnow(),
            expires_at=_clock(conn, lease_s),
        )
    )
    return Reservation(
        id=reservation_id,
        request_id=request_id,
        key_id=key_id,
        credits=credits,
        remaining=remaining,
    )


async def settle(
    conn: AsyncConnection,
    reservation: Reservation,
    charged: int,
    record: UsageRecord | None = None,
) -> Settlement:
    """Keep ``charged`` of the reservation, refund the rest, store ``record`` (with the
    credits actually charged). ValueError unless ``0 <= charged <= reservation.credits``."""
    if not 0 <= charged <= reservation.credits:
        raise ValueError(f"need 0 <= charged <= {reservation.credits}, got {charged}")
    released = delete(reservations).where(reservations.c.id == reservation.id)
    held = (await conn.execute(released.returning(reservations.c.id))).first() is not None
    key_id, request_id = reservation.key_id, reservation.request_id
    if held:
        remaining = await ledger.settle(
            conn, key_id, reservation.credits, charged, request_id=request_id
        )
    else:  # reaped while we ran: see the module doc
        charged, remaining = await ledger.charge_at_most(
            conn, key_id, charged, request_id=request_id
        )
        await usage.forget(conn, key_id=key_id, request_id=request_id, status=INTERRUPTED)
    if record is not None:
        await usage.record_usage(conn, replace(record, credits_charged=charged))
    return Settlement(charged, remaining)


async def renew(
    conn: AsyncConnection, owner: str, lease_s: float, abandoned: Set[str] = frozenset()
) -> int:
    """Extend every lease ``owner`` holds, but the ``abandoned`` ones, to ``lease_s`` from
    now; how many there were."""
    stmt = (
        update(reservations)
        .where(reservations.c.owner == owner)
        .values(expires_at=_clock(conn, lease_s))
    )
    if abandoned:
        stmt = stmt.where(reservations.c.id.not_in(abandoned))
    result = await conn.execute(stmt)
    return int(result.rowcount)


async def still_held(conn: AsyncConnection, ids: Set[str]) -> set[str]:
    """Which of these reservations have not been settled or reaped yet."""
    stmt = select(reservations.c.id).where(reservations.c.id.in_(ids))
    return set((await conn.execute(stmt)).scalars())


async def reap_one(conn: AsyncConnection) -> str | None:
    """Refund one reservation whose lease ran out, with its ``interrupted`` usage record;
    the request id, or None when no lease has expired."""
    expired = (
        select(reservations.c.id)
        .where(reservations.c.expires_at < _clock(conn))
        .order_by(reservations.c.expires_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = delete(reservations).where(reservations.c.id == expired).returning(*reservations.c)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        return None
    key_id, request_id = row["key_id"], row["request_id"]
    await ledger.settle(conn, key_id, int(row["credits"]), 0, request_id=request_id)
    await usage.record_usage(conn, _interrupted(row, utcnow()))
    return str(request_id)


def _interrupted(row: Any, now: datetime) -> UsageRecord:
    return UsageRecord(
        request_id=row["request_id"],
        key_id=row["key_id"],
        route=row["route"],
        strategy=row["strategy"],
        models=list(json.loads(row["models"])),
        latency_ms=max(0, int((now - row["created_at"]).total_seconds() * 1000)),
        status=INTERRUPTED,
    )
