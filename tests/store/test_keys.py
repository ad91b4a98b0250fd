"""API keys: creation, hashed storage, authentication and revocation."""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields
from datetime import timedelta

import pytest
from sqlalchemy import select

from moa.store import ApiKey, Store, UsageRecord
from moa.store.keys import TOUCH_EVERY
from moa.store.schema import api_keys, utcnow

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
        "last_used_at",
        "budget_usd",
        "models",
        "spent_usd",
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


async def test_limits_are_kept_changed_and_lifted(store: Store) -> None:
    key, _ = await store.create_key(
        credits=1, budget_usd=2.5, models=["fake/alpha", "spare/*", "fake/alpha"]
    )
    assert (key.budget_usd, key.models) == (2.5, ("fake/alpha", "spare/*"))
    assert await store.get_key(key.id) == key
    changed = await store.update_key(key.id, budget_usd=None)
    assert changed is not None and (changed.budget_usd, changed.models) == (None, key.models)
    changed = await store.update_key(key.id, models=None, name="renamed")
    assert changed is not None and (changed.models, changed.name) == (None, "renamed")
    assert await store.update_key("key_000000000000", budget_usd=1) is None


@pytest.mark.parametrize(
    "limits, field",
    [
        ({"models": []}, "models"),
        ({"models": ["no-slash"]}, "models[0]"),
        ({"models": ["fake/a", "with space/x"]}, "models[1]"),
        ({"models": [f"fake/m{i}" for i in range(101)]}, "models"),
        ({"budget_usd": -0.01}, "budget_usd"),
        ({"budget_usd": 1e10}, "budget_usd"),
    ],
)
async def test_bad_limits_are_refused_naming_the_field(
    store: Store, limits: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        await store.create_key(credits=1, **limits)  # type: ignore[arg-type]
    key, _ = await store.create_key(credits=1)
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}:"):
        await store.update_key(key.id, **limits)  # type: ignore[arg-type]
    assert await store.get_key(key.id) == key


async def _last_used(store: Store, key_id: str) -> object:
    key = await store.get_key(key_id)
    assert key is not None
    return key.last_used_at


async def test_a_use_is_recorded_at_most_once_a_minute(store: Store) -> None:
    key, plaintext = await store.create_key(credits=1)
    assert key.last_used_at is None
    await store.authenticate(plaintext)
    await store.recorded_uses()
    first = await _last_used(store, key.id)
    assert first is not None
    await store.authenticate(plaintext)
    await store.recorded_uses()
    assert await _last_used(store, key.id) == first, "no write within a minute"
    long_ago = utcnow() - TOUCH_EVERY - timedelta(seconds=1)
    async with store._engine.begin() as conn:
        stmt = api_keys.update().where(api_keys.c.id == key.id).values(last_used_at=long_ago)
        await conn.execute(stmt)
    await store.authenticate(plaintext)
    await store.recorded_uses()
    last = await _last_used(store, key.id)
    assert isinstance(last, type(long_ago)) and last > long_ago


async def test_spent_usd_is_the_sum_of_the_keys_usage_records(store: Store) -> None:
    spender, _ = await store.create_key(credits=5)
    other, _ = await store.create_key(credits=1)
    for cost in (0.25, 0.5, 0.0):
        record = UsageRecord(request_id="r", key_id=spender.id, route="/x", cost_usd=cost)
        await store.record_usage(record)
    reservation = await store.reserve(spender.id, 2)
    assert reservation is not None
    settled = UsageRecord(request_id="s", key_id=spender.id, route="/x", cost_usd=1.0)
    await store.settle(reservation, 1, record=settled)
    spent = {key.id: key.spent_usd for key in await store.list_keys()}
    assert spent == {spender.id: 1.75, other.id: 0.0}
