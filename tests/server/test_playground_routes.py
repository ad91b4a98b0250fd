"""What the playground page needs from the server: its files, served under a strict
Content-Security-Policy, and a catalogue with prices and the configured defaults."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx

from tests.server.conftest import Deployment


async def test_the_page_forbids_inline_scripts_and_other_origins(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in response.text  # every script is a file the policy allows


async def test_every_file_the_page_names_is_served(anonymous: httpx.AsyncClient) -> None:
    page = (await anonymous.get("/")).text
    named = set(re.findall(r'(?:src|href)="(/playground/[^"]+)"', page))
    scripts = (await anonymous.get("/playground/playground.js")).text
    named |= {f"/playground/{m}" for m in re.findall(r'from "\./([\w.]+)"', scripts)}
    statuses = {path: (await anonymous.get(path)).status_code for path in named}
    assert statuses == dict.fromkeys(named, 200)
    assert len(named) >= 4


async def test_scripts_are_served_as_javascript(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/playground/markdown.js")
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_only_the_playgrounds_own_files_are_served(anonymous: httpx.AsyncClient) -> None:
    for path in ["/playground/index.py", "/playground/..%2Fapp.py", "/playground/nope.js"]:
        response = await anonymous.get(path)
        assert response.status_code == 404, path


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
