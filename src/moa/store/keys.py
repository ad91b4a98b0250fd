"""API keys: generation, hashed storage, authentication, revocation.

A plaintext key is shown exactly once, by :func:`create_key`; the database only
ever holds its SHA-256 digest plus a short display prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store import ledger
from moa.store.schema import api_keys, utcnow

KEY_PREFIX = "moa_sk_"
#: Characters of the plaintext kept for display ("moa_sk_" + 5 random chars):
#: enough for a human to tell keys apart, far too little to help guess one.
DISPLAY_PREFIX_LEN = 12
#: Longer inputs cannot be our keys; reject them before hashing.
_MAX_PRESENTED_LEN = 256
_MAX_NAME_LEN = 200
_PUBLIC_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.credits,
    api_keys.c.created_at,
    api_keys.c.revoked,
)


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
    )


async def create_key(conn: AsyncConnection, *, credits: int, name: str) -> tuple[ApiKey, str]:
    """Insert a key with its opening ledger entry; returns (record, plaintext)."""
    if credits < 0:
        raise ValueError(f"credits must be >= 0, got {credits}")
    if len(name) > _MAX_NAME_LEN:
        raise ValueError(f"name longer than {_MAX_NAME_LEN} characters")
    plaintext = generate_plaintext()
    values: dict[str, Any] = {
        "id": _new_key_id(),
        "name": name,
        "key_hash": hash_key(plaintext),
        "prefix": plaintext[:DISPLAY_PREFIX_LEN],
        "credits": credits,
        "created_at": utcnow(),
        "revoked": False,
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
