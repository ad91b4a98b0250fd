"""The server's memory of recently authenticated keys, over a real store: a revoked key is
refused once the cache's time is up (the bound every replica keeps), a key revoked
through the same process is refused at once, and unknown tokens are never remembered."""

from __future__ import annotations

from dataclasses import dataclass, field

from moa.server.key_cache import KeyCache
from moa.store import ApiKey, Store


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class CountedLookup:
    """The store's own lookup, counted: how often the cache went to the database."""

    store: Store
    calls: list[str] = field(default_factory=list)

    async def __call__(self, presented: str) -> ApiKey | None:
        self.calls.append(presented)
        return await self.store.authenticate(presented)


async def test_a_revoked_key_is_refused_once_the_cache_time_is_up(store: Store) -> None:
    record, plaintext = await store.create_key(credits=10, name="team")
    clock = Clock()
    lookup = CountedLookup(store)
    cache = KeyCache(lookup, 0.5, clock=clock)

    assert (await cache.authenticate(plaintext)) == record
    await store.revoke(record.id)
    clock.now += 0.4
    assert (await cache.authenticate(plaintext)) == record  # within the documented bound
    assert len(lookup.calls) == 1
    clock.now += 0.2
    assert (await cache.authenticate(plaintext)) is None
    assert len(lookup.calls) == 2


async def test_a_key_forgotten_by_this_process_is_read_again_at_once(store: Store) -> None:
    record, plaintext = await store.create_key(credits=10, name="team")
    cache = KeyCache(store.authenticate, 1.0, clock=Clock())
    await cache.authenticate(plaintext)
    await store.revoke(record.id)
    cache.forget(record.id)
    assert (await cache.authenticate(plaintext)) is None


async def test_unknown_tokens_are_looked_up_every_time(store: Store) -> None:
    lookup = CountedLookup(store)
    cache = KeyCache(lookup, 1.0, clock=Clock())
    for _ in range(3):
        assert (await cache.authenticate("moa_sk_not_a_real_key")) is None
    assert len(lookup.calls) == 3


async def test_zero_reads_the_key_on_every_request(store: Store) -> None:
    _, plaintext = await store.create_key(credits=10, name="team")
    lookup = CountedLookup(store)
    cache = KeyCache(lookup, 0, clock=Clock())
    for _ in range(3):
        assert (await cache.authenticate(plaintext)) is not None
    assert len(lookup.calls) == 3


async def test_the_cache_holds_at_most_max_keys(store: Store) -> None:
    keys = [(await store.create_key(credits=1, name=f"k{i}"))[1] for i in range(3)]
    lookup = CountedLookup(store)
    cache = KeyCache(lookup, 1.0, max_keys=2, clock=Clock())
    for plaintext in keys:
        await cache.authenticate(plaintext)
    await cache.authenticate(keys[0])  # the oldest was dropped to make room
    assert lookup.calls == [*keys, keys[0]]
    await cache.authenticate(keys[2])  # the newest is still remembered
    assert len(lookup.calls) == 4


async def test_a_lookup_running_when_the_key_was_forgotten_is_not_remembered(
    store: Store,
) -> None:
    """A request reads the key; while it does, the admin API revokes the key and forgets
    it. The row that request read (still active) must not be remembered."""
    record, plaintext = await store.create_key(credits=10, name="team")
    lookups: list[str] = []

    async def revoked_during_the_first(presented: str) -> ApiKey | None:
        lookups.append(presented)
        key = await store.authenticate(presented)
        if len(lookups) == 1:
            await store.revoke(record.id)
            cache.forget(record.id)
        return key

    cache = KeyCache(revoked_during_the_first, 1.0, clock=Clock())
    assert (await cache.authenticate(plaintext)) == record  # the row as it was read
    assert (await cache.authenticate(plaintext)) is None  # read again, not remembered
    assert len(lookups) == 2
