"""What the playground page needs from the server: a catalogue with prices and the
configured defaults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.server.conftest import Deployment


async def test_the_catalogue_carries_prices_and_the_configured_defaults(
    deploy: Callable[..., Awaitable[Deployment]],
) -> None:
    moa = await deploy(
        models={"fake/alpha": {"input_usd_per_mtok": 0.5, "output_usd_per_mtok": 1.5}},
        defaults={"models": ["fake/alpha", "fake/beta"], "strategy": "council"},
    )
    body = (await moa.client.get("/api/v1/models")).json()
    alpha = next(m for m in body["models"] if m["id"] == "fake/alpha")
    assert (alpha["input_usd_per_mtok"], alpha["output_usd_per_mtok"]) == (0.5, 1.5)
    assert alpha["ready"] is True
    assert body["defaults"] == {"models": ["fake/alpha", "fake/beta"], "strategy": "council"}


async def test_without_a_configured_strategy_the_default_is_consensus(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/v1/models")).json()
    assert body["defaults"]["strategy"] == "consensus"
    assert all("input_usd_per_mtok" in m and "output_usd_per_mtok" in m for m in body["models"])
