"""API keys: generation, hashed storage, authentication, revocation, limits.

A plaintext key is shown exactly once, by :func:`create_key`; the database only
ever holds its SHA-256 digest plus a short display prefix.

The store keeps no cache in front of :func:`authenticate`; the server does, for at most
``[server] auth_cache_s`` (moa.server.key_cache), which bounds how late a revocation or a
new limit reaches a server.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store import key_limits, ledger
from moa.store.schema import api_keys, utcnow

KEY_PREFIX = "moa_sk_"
#: Characters of the plaintext kept for display ("moa_sk_" + 5 random chars):
#: enough for a human to tell keys apart, far too little to help guess one.
DISPLAY_PREFIX_LEN = 12
#: Longer inputs cannot be our keys; reject them before hashing.
_MAX_PRESENTED_LEN = 256
MAX_NAME_LEN = 200
#: ``last_used_at`` is written when it is older than this: a key in use costs one write a
#: minute, not one per request.
TOUCH_EVERY = timedelta(minutes=1)
_PUBLIC_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.credits,
    api_keys.c.created_at,
    api_keys.c.revoked,
    api_keys.c.last_used_at,
    api_keys.c.budget_usd,
    api_keys.c.models,
    api_keys.c.spent_usd,
)


class Unset(enum.Enum):
    """A field :func:`update_key` leaves as it is (None would clear it)."""

    UNSET = enum.auto()


UNSET = Unset.UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """Public view of a key. Deliberately has no plaintext or hash field, so
    neither can leak through a repr, a log line or an API response."""

    id: str
    name: str
    prefix: str
    credits: int
    created_at: datetime
    revoked: bool
    last_used_at: datetime | None = None
    #: USD the key may spend in all (None: no budget); see moa.store.key_limits.
    budget_usd: float | None = None
    #: The models it may name (None: any), model ids or ``provider/*``.
    models: tuple[str, ...] | None = None
    #: USD its usage records add up to (what the budget is compared with).
    spent_usd: float = 0.0

    def public(self) -> dict[str, Any]:
        """The key as the admin API and ``moa keys list --json`` show it."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "credits": self.credits,
            "revoked": self.revoked,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "budget_usd": self.budget_usd,
            "models": list(self.models) if self.models is not None else None,
            "spent_usd": self.spent_usd,
        }


def generate_plaintext() -> str:
    """A new secret key: 32 random bytes (256 bits), URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of a key.

    A fast, unsalted hash is the right tool here, unlike for passwords: our
    keys carry 256 bits of randomness, so brute force or rainbow tables are
    hopeless even with a fast hash, and a slow KDF (bcrypt/argon2) would only
    burn CPU on every request. Being deterministic, the digest can also be
    looked up through a unique index.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def _to_api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        credits=int(row["credits"]),
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
        last_used_at=row["last_used_at"],
        budget_usd=None if row["budget_usd"] is None else float(row["budget_usd"]),
        models=None if row["models"] is None else tuple(json.loads(row["models"])),
        spent_usd=float(row["spent_usd"]),
    )


def _models_json(models: Sequence[str] | None) -> str | None:
    return None if models is None else json.dumps(list(models))


def _check_name(name: str) -> None:
    if len(name) > MAX_NAME_LEN:
        raise ValueError(f"name: longer than {MAX_NAME_LEN} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        # PostgreSQL refuses NUL in text, and a name is printed in logs and tables.
        raise ValueError("name: control characters (NUL, newline, ...) are not allowed")


async def create_key(
    conn: AsyncConnection,
    *,
    credits: int,
    name: str,
    budget_usd: float | None = None,
    models: Sequence[str] | None = None,
) -> tuple[ApiKey, str]:
    """Insert a key with its opening ledger entry; returns (record, plaintext).
    ValueError naming the field for a negative balance, a long name or a bad limit."""
    if credits < 0:
        raise ValueError(f"credits: must be >= 0, got {credits}")
    _check_name(name)
    budget_usd = None if budget_usd is None else key_limits.check_budget(budget_usd)
    allowed = None if models is None else key_limits.check_models(models)
    plaintext = generate_plaintext()
    values: dict[str, Any] = {
        "id": _new_key_id(),
        "name": name,
        "key_hash": hash_key(plaintext),
        "prefix": plaintext[:DISPLAY_PREFIX_LEN],
        "credits": credits,
        "created_at": utcnow(),
        "revoked": False,
        "budget_usd": budget_usd,
        "models": _models_json(allowed),
    }
    await conn.execute(insert(api_keys).values(**values))
    await ledger.append_entry(conn, key_id=values["id"], kind="create", amount=credits)
    record = ApiKey(
        id=values["id"],
        name=name,
        prefix=values["prefix"],
        credits=credits,
        created_at=values["created_at"],
        revoked=False,
        budget_usd=budget_usd,
        models=allowed,
    )
    return record, plaintext


async def authenticate(conn: AsyncConnection, presented: str) -> ApiKey | None:
    """The active key matching ``presented``, else None (unknown or revoked).

    The lookup goes through the unique index on the hash; the final
    ``hmac.compare_digest`` keeps the last comparison constant-time as well.
    """
    if not presented.startswith(KEY_PREFIX) or len(presented) > _MAX_PRESENTED_LEN:
        return None
    digest = hash_key(presented)
    stmt = select(*_PUBLIC_COLUMNS, api_keys.c.key_hash).where(api_keys.c.key_hash == digest)
    row = (await conn.execute(stmt)).mappings().first()
    if row is None or not hmac.compare_digest(row["key_hash"], digest) or row["revoked"]:
        return None
    return _to_api_key(row)


async def get_key(conn: AsyncConnection, key_id: str) -> ApiKey | None:
    """The key with this id (revoked or not), or None."""
    stmt = select(*_PUBLIC_COLUMNS).where(api_keys.c.id == key_id)
    row = (await conn.execute(stmt)).mappings().first()
    return None if row is None else _to_api_key(row)


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    """All keys, oldest first (id breaks ties so the order is stable)."""
    stmt = select(*_PUBLIC_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
    return [_to_api_key(row) for row in (await conn.execute(stmt)).mappings()]


async def revoke(conn: AsyncConnection, key_id: str) -> bool:
    """Mark the key revoked. True if the key exists (revoking twice is fine),
    False if there is no such key. The balance is kept for auditing."""
    stmt = update(api_keys).where(api_keys.c.id == key_id).values(revoked=True)
    result = await conn.execute(stmt.returning(api_keys.c.id))
    return result.first() is not None


async def update_key(
    conn: AsyncConnection,
    key_id: str,
    *,
    name: str | Unset = UNSET,
    budget_usd: float | Unset | None = UNSET,
    models: Sequence[str] | Unset | None = UNSET,
) -> ApiKey | None:
    """Change what is given (None clears a limit); the key afterwards, None if there is no
    such key. ValueError naming the field for a bad value. A revoked key may be changed:
    it stays revoked."""
    values: dict[str, Any] = {}
    if not isinstance(name, Unset):
        _check_name(name)
        values["name"] = name
    if not isinstance(budget_usd, Unset):
        values["budget_usd"] = None if budget_usd is None else key_limits.check_budget(budget_usd)
    if not isinstance(models, Unset):
        values["models"] = _models_json(None if models is None else key_limits.check_models(models))
    if values:
        stmt = update(api_keys).where(api_keys.c.id == key_id).values(**values)
        if (await conn.execute(stmt.returning(api_keys.c.id))).first() is None:
            return None
    return await get_key(conn, key_id)


async def touch(conn: AsyncConnection, key_id: str, now: datetime) -> None:
    """Record a use of the key, unless one was recorded within :data:`TOUCH_EVERY` (the
    condition is in the statement, so replicas racing to write it write it once)."""
    stmt = (
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .where(or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < now - TOUCH_EVERY))
        .values(last_used_at=now)
    )
    await conn.execute(stmt)


def needs_touch(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY
