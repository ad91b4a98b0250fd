"""Scripting the upstream over HTTP: who answers how fast, and what the upstream has seen.

The upstream runs in its own process, so it is scripted through its control routes
(``POST /_script``, ``POST /_reset``, ``GET /_requests``) rather than in-process calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

SOURCES = ("alpha", "beta", "gamma")
SYNTH = "synth"


class Upstream:
    """An async client for the upstream's control routes."""

    def __init__(self, root_url: str) -> None:
        self._client = httpx.AsyncClient(base_url=root_url, timeout=30.0)
        self._scripts: dict[str, dict[str, Any]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def reset(self) -> None:
        (await self._client.post("/_reset")).raise_for_status()
        self._scripts = {}

    async def reset_records(self) -> None:
        """Forget the records but keep the scripts: ``/_reset`` clears both, so re-apply."""
        scripts = self._scripts
        await self.reset()
        for model, behavior in scripts.items():
            await self.script(model, **behavior)

    async def script(self, model: str, **behavior: Any) -> None:
        """Script one model: ``latency_ms``, ``token_delay_ms``, ``content``, ``stall``..."""
        response = await self._client.post("/_script", json={"model": model, **behavior})
        response.raise_for_status()
        self._scripts[model] = behavior

    async def script_sources(self, latencies_ms: tuple[float, ...], content: str) -> None:
        for model, latency in zip(SOURCES, latencies_ms, strict=True):
            await self.script(model, latency_ms=latency, content=content)

    async def requests(self) -> list[dict[str, Any]]:
        response = await self._client.get("/_requests")
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()
        return records

    async def wait_for_requests(self, count: int, timeout_s: float, every_s: float = 0.25) -> int:
        """Poll (bounded) until the upstream has received ``count`` requests since the reset.
        Each poll returns every record, so poll big counts rarely."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            seen = len(await self.requests())
            if seen >= count:
                return seen
            await asyncio.sleep(every_s)
        return seen

    async def wait_for_hangups(self, timeout_s: float, every_s: float = 0.5) -> int:
        """Poll until no recorded request is still open; returns how many still are."""
        deadline = time.monotonic() + timeout_s
        still_open = -1
        while time.monotonic() < deadline:
            records = await self.requests()
            still_open = sum(1 for r in records if not (r["completed"] or r["disconnected"]))
            if still_open == 0:
                return 0
            await asyncio.sleep(every_s)
        return still_open
