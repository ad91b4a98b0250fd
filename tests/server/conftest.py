"""Fixtures for server tests: moa's real app on loopback, backed by a SQLite file, calling
the scripted upstream; plus funded API keys made through the real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moa.config import Settings
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"


@pytest.fixture
def server_settings(upstream: ScriptedUpstream, database_url: str) -> Settings:
    return fake_settings(upstream, server={"database_url": database_url})


@pytest.fixture
def served(server_settings: Settings) -> Iterator[ServedApp]:
    with ServedApp(server_settings) as app:
        yield app


@pytest.fixture
async def store(database_url: str, served: ServedApp) -> AsyncIterator[Store]:
    """The same database the server uses, opened from the test's side."""
    opened = await Store.open(database_url)
    yield opened
    await opened.close()


@pytest.fixture
def make_key(store: Store) -> Callable[..., Any]:
    async def make(credits: int = 100, name: str = "test") -> tuple[str, str]:
        record, plaintext = await store.create_key(credits=credits, name=name)
        return record.id, plaintext

    return make


@pytest.fixture
async def api_key(make_key: Callable[..., Any]) -> str:
    _, plaintext = await make_key()
    return str(plaintext)


@pytest.fixture
async def client(served: ServedApp, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as http:
        yield http


def sse_events(body: str) -> list[dict[str, Any]]:
    """Parse ``data:`` frames; the final ``[DONE]`` is returned as {"done": True}."""
    import json

    events: list[dict[str, Any]] = []
    for frame in body.split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: ") :]
            events.append({"done": True} if data == "[DONE]" else json.loads(data))
    return events


async def gather_limited(*coros: Any) -> list[Any]:
    return await asyncio.gather(*coros)
