"""SIGTERM drains `moa serve`: new requests get 503 `shutting_down`, requests in flight get
`[server] shutdown_grace_s` to finish, then a stream ends with an `error` event
`shutting_down` and `[DONE]`, a JSON request with 503 `shutting_down`, each settled like a
client that left; then the process exits. A real `moa serve` process."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from moa.store import Store
from moa.testing import ScriptedUpstream

from .processes import MoaProcess, eventually, write_config

BLEND = {
    "models": ["fake/alpha", "fake/stuck"],
    "synthesizer": "fake/alpha",
    "messages": [{"role": "user", "content": "Will this outlive the server?"}],
}


async def _draining(http: httpx.AsyncClient) -> bool:
    response = await http.get("/healthz/ready")
    return response.status_code == 503 and response.json()["error"]["code"] == "shutting_down"


async def _rest_of_stream(lines: Any) -> list[str]:
    return [line async for line in lines if line.startswith("data: ")]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_ends_streams_and_json_requests_with_shutting_down_and_settles_them(
    upstream: ScriptedUpstream, tmp_path: Path, workers: int
) -> None:
    """With ``--workers 2`` the signal goes to the supervisor, which passes it on: each
    worker drains itself."""
    upstream.script("stuck", stall=True)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    config = write_config(tmp_path / "moa.toml", upstream, database_url, shutdown_grace_s=3)
    store = await Store.open(database_url)
    try:
        key, plaintext = await store.create_key(credits=20)
        headers = {"Authorization": f"Bearer {plaintext}"}
        async with (
            MoaProcess(config, workers=workers) as moa,
            httpx.AsyncClient(base_url=moa.url, headers=headers, timeout=60) as http,
            http.stream("POST", "/api/v1/blend", json={**BLEND, "stream": True}) as stream,
        ):
            lines = stream.aiter_lines()
            async for line in lines:
                if '"event":"source"' in line:
                    break  # fake/alpha answered; fake/stuck never will
            plain = asyncio.create_task(http.post("/api/v1/blend", json=BLEND))
            await upstream.wait_for_async(lambda: len(upstream.calls("stuck")) == 2, within=30)

            moa.signal(signal.SIGTERM)
            await eventually(lambda: _draining(http), message="new requests are refused")
            refused = await http.post("/api/v1/blend", json=BLEND)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "shutting_down"
            assert (await http.get("/healthz")).status_code == 200, "alive while draining"

            frames = await _rest_of_stream(lines)
            answered = await plain
            await moa.exited()
        assert json.loads(frames[-2].removeprefix("data: "))["code"] == "shutting_down"
        assert frames[-1] == "data: [DONE]"
        assert answered.status_code == 503
        assert answered.json()["error"]["code"] == "shutting_down"

        records = await store.recent_usage(key.id)
        assert [r.status for r in records] == ["shutting_down", "shutting_down"]
        # 1 of 3 planned calls (2 sources + synthesis) had finished: ceil(4 x 1/3) = 2 each.
        assert [r.credits_charged for r in records] == [2, 2]
        assert await store.balance(key.id) == await store.ledger_total(key.id) == 16
    finally:
        await store.close()


async def test_a_request_that_finishes_within_the_grace_gets_its_answer(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.script("slow", latency_ms=1500)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    config = write_config(tmp_path / "moa.toml", upstream, database_url, shutdown_grace_s=60)
    store = await Store.open(database_url)
    try:
        key, plaintext = await store.create_key(credits=20)
        headers = {"Authorization": f"Bearer {plaintext}"}
        body = {**BLEND, "models": ["fake/alpha", "fake/slow"]}
        async with (
            MoaProcess(config) as moa,
            httpx.AsyncClient(base_url=moa.url, headers=headers, timeout=60) as http,
        ):
            blend = asyncio.create_task(http.post("/api/v1/blend", json=body))
            await upstream.wait_for_async(lambda: len(upstream.calls("slow")) == 1, within=30)
            moa.signal(signal.SIGTERM)
            answered = await blend
            await moa.exited(within=30)  # as soon as the last request ended, not after 60 s
        assert answered.status_code == 200, answered.text
        assert answered.json()["credits_charged"] == 4
        [record] = await store.recent_usage(key.id)
        assert record.status == "ok"
    finally:
        await store.close()
