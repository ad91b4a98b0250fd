"""The fault suite: blends through the real server while the upstream injects faults into
30% of source calls (429, 500, stall, cut stream, malformed JSON), with a fixed seed.

Every blend with at least one live source must succeed; every total failure must be a 502
with its credits refunded; the ledger must match the usage records exactly.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from moa.store import Store
from moa.testing import FaultPlan, ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings

BLENDS = 60
SOURCES = ("alpha", "beta", "gamma")


def _prompt(i: int) -> str:
    return f"fault suite question {i}"


def _live_sources(upstream: ScriptedUpstream, prompt: str) -> set[str]:
    """Sources that answered this blend's prompt cleanly on some attempt."""
    live = set()
    for record in upstream.requests:
        same_blend = record.model in SOURCES and record.messages[-1]["content"] == prompt
        if same_blend and record.fault is None and record.completed:
            live.add(record.model)
    return live


async def test_blends_survive_30_percent_injected_faults_and_the_ledger_balances(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}"
    settings = fake_settings(
        upstream,
        server={"database_url": database_url, "rate_limit_per_minute": 10_000},
        engine={"source_timeout_s": 1.0, "max_retries": 2, "breaker_failures": 1000},
    )
    upstream.set_faults(FaultPlan(rate=0.3, seed=20261125, models=set(SOURCES)))
    credits = BLENDS * 4
    with ServedApp(settings) as served:
        store = await Store.open(database_url)
        key, plaintext = await store.create_key(credits=credits)
        limit = asyncio.Semaphore(10)

        async def one(i: int) -> httpx.Response:
            body = {
                "models": [f"fake/{m}" for m in SOURCES],
                "synthesizer": "spare/judge",
                "messages": [{"role": "user", "content": _prompt(i)}],
            }
            async with limit:
                return await http.post("/api/v1/blend", json=body)

        async with httpx.AsyncClient(
            base_url=served.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
        ) as http:
            responses = await asyncio.gather(*(one(i) for i in range(BLENDS)))

        faults = Counter(r.fault for r in upstream.requests if r.fault)
        outcomes: Counter[str] = Counter()
        lost = []
        for i, response in enumerate(responses):
            live = _live_sources(upstream, _prompt(i))
            outcomes[str(response.status_code)] += 1
            if live and response.status_code != 200:
                lost.append((i, response.status_code, response.text[:200]))
            if not live:
                assert response.status_code == 502
                assert response.json()["error"]["code"] == "all_sources_failed"
        print(
            f"\nfault suite: {BLENDS} blends, {sum(faults.values())} faults injected "
            f"{dict(faults)}, outcomes {dict(outcomes)}, blends lost {len(lost)}"
        )
        assert lost == [], f"blends with a live source failed: {lost}"
        assert sum(faults.values()) > BLENDS * 0.5, "the suite must really inject faults"

        records = await store.recent_usage(key.id, limit=500)
        balance = await store.balance(key.id)
        assert len(records) == BLENDS
        assert balance == credits - sum(r.credits_charged for r in records)
        assert await store.ledger_total(key.id) == balance
        failed: list[Any] = [r for r in records if r.status != "ok"]
        assert all(r.credits_charged == 0 for r in failed), "total failures are refunded"
        assert len(failed) == outcomes.get("502", 0)
        await store.close()
