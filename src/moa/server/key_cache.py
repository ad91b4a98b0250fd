"""A per-process memory of the keys that authenticated a moment ago.

Reading the key row is the largest cost of a cheap request after the ledger itself, and a
busy key presents the same token many times a second. A remembered key is trusted for at
most ``[server] auth_cache_s`` (0.5 s by default, 1 s at the most): replicas share only the
database, so that bound is how long a key revoked on one replica (or by ``moa keys revoke``)
can still be accepted by another. A revocation made through this process's own admin API
is forgotten at once. Only keys that authenticated are remembered (an unknown token is
always looked up, and counted against its client address); entries are keyed by the key's
hash, never its plaintext, and their number is bounded, so a flood of distinct valid keys
costs lookups, not memory.
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
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    async def authenticate(self, presented: str) -> ApiKey | None:
        """The active key for ``presented``, from memory while it is fresh."""
        if self._ttl_s <= 0:
            return await self._lookup(presented)
        digest = hash_key(presented)
        now = self._clock()
        remembered = self._keys.get(digest)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        key = await self._lookup(presented)
        if key is None:
            self._keys.pop(digest, None)
        else:
            self._remember(digest, now + self._ttl_s, key)
        return key

    def forget(self, key_id: str) -> None:
        """Drop a key at once (revoked or changed through this process)."""
        for digest, (_, key) in list(self._keys.items()):
            if key.id == key_id:
                del self._keys[digest]

    def _remember(self, digest: str, expires: float, key: ApiKey) -> None:
        self._keys.pop(digest, None)
        if len(self._keys) >= self._max_keys:
            now = self._clock()
            self._keys = {d: entry for d, entry in self._keys.items() if entry[0] > now}
            while len(self._keys) >= self._max_keys:
                del self._keys[next(iter(self._keys))]
        self._keys[digest] = (expires, key)
