"""The credit ledger: balances on ``api_keys.credits`` plus an audit trail.

The balance column is what requests are checked against; ``ledger_entries`` is
an append-only journal written in the *same transaction* as every balance
change, so at any committed point ``sum(entries.amount) == credits`` for each key
(see :func:`ledger_total`). That makes lost or doubled updates detectable.

Every balance change is a single ``UPDATE ... RETURNING`` rather than a
read-then-write: the condition and the arithmetic run inside the database under
its write lock, which is what keeps concurrent requests - from one process or
many - from overdrawing a key.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store.schema import api_keys, ledger_entries, utcnow

#: ``charge`` is the rare late charge of a request whose reservation a reaper had already
#: refunded (see :mod:`moa.store.reservations`); everything else reserves, then refunds.
EntryKind = Literal["create", "topup", "reserve", "refund", "charge"]


async def append_entry(
    conn: AsyncConnection,
    *,
    key_id: str,
    kind: EntryKind,
    amount: int,
    request_id: str | None = None,
) -> None:
    """Journal a balance change (signed: reserves are negative)."""
    await conn.execute(
        insert(ledger_entries).values(
            key_id=key_id,
            kind=kind,
            amount=amount,
            created_at=utcnow(),
            request_id=request_id,
        )
    )


async def _require_key(conn: AsyncConnection, key_id: str) -> int:
    """Balance of ``key_id``; KeyError if the key does not exist."""
    row = (await conn.execute(select(api_keys.c.credits).where(api_keys.c.id == key_id))).first()
    if row is None:
        raise KeyError(f"unknown API key id: {key_id!r}")
    return int(row[0])


async def _add(conn: AsyncConnection, key_id: str, amount: int) -> int | None:
    """``credits += amount`` for any key, revoked or not; new balance or None."""
    stmt = (
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(credits=api_keys.c.credits + amount)
        .returning(api_keys.c.credits)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else int(row[0])


async def top_up(
    conn: AsyncConnection, key_id: str, credits: int, *, request_id: str | None = None
) -> int:
    """Add credits; returns the new balance.

    Raises ValueError for ``credits <= 0`` (a "negative top-up" would bypass the
    reservation checks) and KeyError for an unknown key. Revoked keys may be
    topped up: revocation is about access, not about the account's money.
    """
    if credits <= 0:
        raise ValueError(f"top-up credits must be positive, got {credits}")
    new_balance = await _add(conn, key_id, credits)
    if new_balance is None:
        raise KeyError(f"unknown API key id: {key_id!r}")
    await append_entry(conn, key_id=key_id, kind="topup", amount=credits, request_id=request_id)
    return new_balance


async def reserve(
    conn: AsyncConnection, key_id: str, credits: int, *, request_id: str | None = None
) -> int | None:
    """Atomically take ``credits`` from an active key.

    Returns the remaining balance, or None if the balance is too low or the key
    is revoked; the balance never goes negative. KeyError for an unknown key,
    ValueError for ``credits < 0`` (a free route reserves 0: the key must still be
    active). The check and the subtraction are one statement, so there is no
    window in which two reservations can both see the same balance.
    """
    if credits < 0:
        raise ValueError(f"reserved credits must not be negative, got {credits}")
    stmt = (
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.credits >= credits,
            api_keys.c.revoked.is_(False),
        )
        .values(credits=api_keys.c.credits - credits)
        .returning(api_keys.c.credits)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        await _require_key(conn, key_id)  # distinguish "no such key" from "refused"
        return None
    if credits:
        await append_entry(
            conn, key_id=key_id, kind="reserve", amount=-credits, request_id=request_id
        )
    return int(row[0])


async def settle(
    conn: AsyncConnection,
    key_id: str,
    reserved: int,
    charged: int,
    *,
    request_id: str | None = None,
) -> int:
    """Finish a reservation: keep ``charged``, refund ``reserved - charged``.

    Requires ``0 <= charged <= reserved`` (ValueError otherwise): we reserve the
    worst case up front precisely so that settling can only give money back and
    can never fail for lack of funds. Returns the balance after the refund.
    """
    if not 0 <= charged <= reserved:
        raise ValueError(f"need 0 <= charged <= reserved, got {charged=} {reserved=}")
    refund = reserved - charged
    if refund == 0:
        return await _require_key(conn, key_id)
    new_balance = await _add(conn, key_id, refund)
    if new_balance is None:
        raise KeyError(f"unknown API key id: {key_id!r}")
    await append_entry(conn, key_id=key_id, kind="refund", amount=refund, request_id=request_id)
    return new_balance


async def charge_at_most(
    conn: AsyncConnection, key_id: str, credits: int, *, request_id: str | None = None
) -> tuple[int, int]:
    """Take up to ``credits`` without overdrawing; returns (taken, balance after).

    Only for a request whose reservation is gone (a reaper refunded it while the request
    still ran): what it owes is charged if the balance allows, else whatever is left.
    """
    balance = await _require_key(conn, key_id)
    taken = min(credits, balance)
    if taken <= 0:
        return 0, balance
    stmt = (
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.credits >= taken)
        .values(credits=api_keys.c.credits - taken)
        .returning(api_keys.c.credits)
    )
    row = (await conn.execute(stmt)).first()
    if row is None:  # a concurrent writer spent it first (PostgreSQL); charge nothing
        return 0, await _require_key(conn, key_id)
    await append_entry(conn, key_id=key_id, kind="charge", amount=-taken, request_id=request_id)
    return taken, int(row[0])


async def balance(conn: AsyncConnection, key_id: str) -> int:
    """Current balance; KeyError for an unknown key."""
    return await _require_key(conn, key_id)


async def ledger_total(conn: AsyncConnection, key_id: str) -> int:
    """Sum of the key's journal entries; equals :func:`balance` when consistent."""
    await _require_key(conn, key_id)
    stmt = select(func.coalesce(func.sum(ledger_entries.c.amount), 0)).where(
        ledger_entries.c.key_id == key_id
    )
    return int((await conn.execute(stmt)).scalar_one())
