"""A per-process memory of the keys that authenticated a moment ago.

Reading the key row is the largest cost of a cheap request after the ledger itself, and a
busy key presents the same token many times a second. A remembered key is trusted for at
most ``[server] auth_cache_s`` (0.5 s by default, 1 s at the most): replicas share only the
database, so that bound is how long a key revoked on one replica (or by ``moa keys revoke``)
can still be accepted by another. A key revoked or changed through this process's own
admin API, or a key with a USD budget whose spending this process just recorded (the
budget check reads its ``spent_usd``), is read afresh on its next request; a lookup that
was already running when that happened is not remembered, so it cannot bring back the row
as it was. Only keys that authenticated are remembered (an unknown token is always looked
up, and counted against its client address); entries are keyed by the key's hash, never
its plaintext, and their number is bounded, so a flood of distinct valid keys costs
lookups, not memory.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from moa.store import ApiKey
from moa.store.keys import hash_key

Lookup = Callable[[str], Awaitable[ApiKey | None]]


class KeyCache:
    def __init__(
        self,
        lookup: Lookup,
        ttl_s: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._clock = clock
        self._keys: dict[str, tuple[float, ApiKey]] = {}  # by the key's hash
        self._hashes: dict[str, str] = {}  # key id -> hash (a key has one plaintext)
        self._forgotten = 0  # how many times a key was forgotten: a lookup's row is stale
        # if this moved while it ran

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key for ``presented``, from memory while it is fresh."""
        if self._ttl_s <= 0:
            return await self._lookup(presented)
        digest = hash_key(presented)
        remembered = self._keys.get(digest)
        if remembered is not None and remembered[0] > self._clock():
            return remembered[1]
        forgotten = self._forgotten
        key = await self._lookup(presented)
        self._drop(digest)
        if key is not None and forgotten == self._forgotten:
            self._remember(digest, key)
        return key

    def forget(self, key_id: str) -> None:
        """Read the key afresh next time: this process revoked or changed it, or recorded
        spending against its budget."""
        self._forgotten += 1
        digest = self._hashes.get(key_id)
        if digest is not None:
            self._drop(digest)

    def _remember(self, digest: str, key: ApiKey) -> None:
        now = self._clock()
        if len(self._keys) >= self._max_keys:
            for stale in [d for d, (expires, _) in self._keys.items() if expires <= now]:
                self._drop(stale)
        while len(self._keys) >= self._max_keys:
            self._drop(next(iter(self._keys)))  # the oldest remembered
        self._keys[digest] = (now + self._ttl_s, key)
        self._hashes[key.id] = digest

    def _drop(self, digest: str) -> None:
        entry = self._keys.pop(digest, None)
        if entry is not None:
            self._hashes.pop(entry[1].id, None)
