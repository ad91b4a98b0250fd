"""The chat load generator: one JSON chat completion as a timed aiohttp exchange.

Why aiohttp here when the blend scenarios use httpx: at 600 requests/s the load generator
shares the 2 cores with the server it measures, and aiohttp costs ~0.2 ms of CPU per
request against httpx's ~1 ms. The request body is encoded once; the reply is read whole
and only its status is checked (every system answers the same upstream text).

``pooled=False`` opens a new connection for every request (``Connection: close``), as
clients that do not keep connections alive do; the server then pays for accept, the TCP
handshake and teardown on every request.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from bench.load import CALL_TIMEOUT_S, Timing


class ChatClient:
    """POSTs one body to one URL, again and again, over its own connection pool."""

    def __init__(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        pooled: bool = True,
        connections: int = 64,
    ) -> None:
        self._url = url
        self._data = json.dumps(body).encode()
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._pooled = pooled
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp binds it to the running event loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._connections, force_close=not self._pooled, ttl_dns_cache=None
            )
            timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session

    async def call(self) -> Timing:
        started = time.perf_counter()
        session = self._open()
        async with session.post(self._url, data=self._data, headers=self._headers) as response:
            body = await response.read()
            total = time.perf_counter() - started
            if response.status != 200:
                error = f"HTTP {response.status}: {body[:200].decode(errors='replace')}"
                return Timing(total, None, total, error)
        return Timing(total, total, total)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
