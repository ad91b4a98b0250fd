"""API keys: creation, hashed storage, authentication and revocation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields

import pytest
from sqlalchemy import select

from moa.store import ApiKey, Store
from moa.store.schema import api_keys

from .conftest import Database


async def test_create_key_returns_record_and_plaintext_once(store: Store) -> None:
    key, plaintext = await store.create_key(credits=100, name="alice")
    assert re.fullmatch(r"key_[0-9a-f]{12}", key.id)
    assert plaintext.startswith("moa_sk_") and len(plaintext) >= 7 + 43
    assert key.prefix == plaintext[:12]
    assert (key.name, key.credits, key.revoked) == ("alice", 100, False)
    assert key.created_at.tzinfo is not None
    # Neither the secret nor its hash is part of the public record.
    assert {f.name for f in fields(ApiKey)} == {
        "id",
        "name",
        "prefix",
        "credits",
        "created_at",
        "revoked",
    }
    assert plaintext not in repr(key)
    assert hashlib.sha256(plaintext.encode()).hexdigest() not in repr(key)


async def test_authenticate(store: Store) -> None:
    key, plaintext = await store.create_key(credits=5)
    other, _ = await store.create_key(credits=7)
    assert await store.authenticate(plaintext) == key
    assert (await store.authenticate(plaintext)) != other
    for bad in ["", "moa_sk_", plaintext + "x", plaintext[:-1], "sk-" + plaintext[7:]]:
        assert await store.authenticate(bad) is None
    assert await store.authenticate("moa_sk_" + "a" * 10_000) is None


async def test_revoked_key_no_longer_authenticates(store: Store) -> None:
    key, plaintext = await store.create_key(credits=5)
    assert await store.revoke(key.id) is True
    assert await store.authenticate(plaintext) is None
    assert await store.revoke(key.id) is True  # idempotent
    assert await store.revoke("key_doesnotexist") is False
    (listed,) = await store.list_keys()
    assert listed.revoked is True and listed.credits == 5
    assert await store.get_key(key.id) == listed


async def test_list_keys_oldest_first(store: Store) -> None:
    created = [(await store.create_key(credits=i, name=f"k{i}"))[0] for i in range(3)]
    assert await store.list_keys() == created
    assert await store.get_key("key_missing") is None


async def test_create_key_validates(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.create_key(credits=-1)
    with pytest.raises(ValueError):
        await store.create_key(credits=1, name="x" * 201)
    assert await store.list_keys() == []


async def test_keys_are_stored_only_as_sha256(db: Database, store: Store) -> None:
    _, plaintext = await store.create_key(credits=3, name="secret-holder")
    digest = hashlib.sha256(plaintext.encode()).hexdigest()
    async with store._engine.connect() as conn:  # raw table, bypassing the API
        rows = (await conn.execute(select(api_keys))).mappings().all()
    assert [row["key_hash"] for row in rows] == [digest]
    assert all(plaintext not in str(value) for row in rows for value in row.values())
    await store.close()
    if db.sqlite_path is not None:
        # Every byte SQLite wrote (main file, WAL, shared memory) is secret-free;
        # the random part alone is searched too, in case of any re-encoding.
        for path in db.sqlite_path.parent.glob(db.sqlite_path.name + "*"):
            raw = path.read_bytes()
            assert plaintext.encode() not in raw, path
            assert plaintext[7:].encode() not in raw, path
            assert plaintext[12:].encode() not in raw, path
