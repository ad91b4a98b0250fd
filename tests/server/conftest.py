"""Fixtures for server tests: moa's real app on loopback, backed by a SQLite file, calling
the scripted upstream; plus funded API keys made through the real store.

``served`` is one server per test module (starting and draining one per test was half the
time of these tests): each test gets keys of its own, so balances, usage and per-key limits
start fresh, and the next test starts once the last one's requests are over. A test that
needs a server with other settings, or a fresh one, starts its own with ``deploy`` or
``serve``; a module whose tests all need one overrides ``served`` with ``fresh_served``."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from moa.config import Settings
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A database of this test's own, for the servers it starts itself."""
    return f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"


@pytest.fixture(scope="module")
def module_server(
    shared_upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The module's server, with default settings on a database of its own."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('served') / 'moa.db'}"
    with ServedApp(fake_settings(shared_upstream, server={"database_url": url})) as app:
        yield app


@pytest.fixture
def served(module_server: ServedApp, upstream: ScriptedUpstream) -> Iterator[ServedApp]:
    """moa with default settings, shared by the module's tests (see above)."""
    yield module_server
    module_server.wait_idle()  # before ``upstream`` is reset for the next test


@pytest.fixture
def server_settings(upstream: ScriptedUpstream, database_url: str) -> Settings:
    """What ``fresh_served`` serves: default settings on this test's own database."""
    return fake_settings(upstream, server={"database_url": database_url})


@pytest.fixture
def fresh_served(server_settings: Settings) -> Iterator[ServedApp]:
    """moa started for this test alone (a module may override ``server_settings``)."""
    with ServedApp(server_settings) as app:
        yield app


@pytest.fixture
async def store(served: ServedApp) -> AsyncIterator[Store]:
    """The same database the server uses, opened from the test's side."""
    opened = await Store.open(served.settings.server.database_url)
    yield opened
    await opened.close()


@pytest.fixture
def make_key(store: Store) -> Callable[..., Any]:
    async def make(credits: int = 100, name: str = "test") -> tuple[str, str]:
        record, plaintext = await store.create_key(credits=credits, name=name)
        return record.id, plaintext

    return make


@pytest.fixture
async def funded_key(make_key: Callable[..., Any]) -> tuple[str, str]:
    """(key id, plaintext) of a key with 100 credits."""
    key_id, plaintext = await make_key()
    return str(key_id), str(plaintext)


@pytest.fixture
def api_key(funded_key: tuple[str, str]) -> str:
    return funded_key[1]


@pytest.fixture
def key_id(funded_key: tuple[str, str]) -> str:
    return funded_key[0]


@pytest.fixture
async def client(served: ServedApp, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as http:
        yield http


@pytest.fixture
async def anonymous(served: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no Authorization header."""
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        yield http


@pytest.fixture
async def openai_client(served: ServedApp, api_key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official OpenAI SDK pointed at moa's /v1."""
    async with openai.AsyncOpenAI(
        base_url=served.url + "/v1", api_key=api_key, max_retries=0, timeout=30
    ) as sdk:
        yield sdk


def sse_events(body: str) -> list[dict[str, Any]]:
    """Parse ``data:`` frames; the final ``[DONE]`` is returned as {"done": True}."""
    events: list[dict[str, Any]] = []
    for frame in body.split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: ") :]
            events.append({"done": True} if data == "[DONE]" else json.loads(data))
    return events


# ---- servers with their own settings ------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Settings], ServedApp]]:
    """Start any number of ServedApps (stand-ins for server processes); all stop at the end."""
    with contextlib.ExitStack() as stack:
        yield lambda settings: stack.enter_context(ServedApp(settings))


@pytest.fixture
async def open_store() -> AsyncIterator[Callable[[str], Awaitable[Store]]]:
    """Open Stores on any database URL from the test's side; all are closed at the end."""
    opened: list[Store] = []

    async def open_(url: str) -> Store:
        store = await Store.open(url)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@dataclass
class Deployment:
    """One moa server with its own settings, a funded key and a client that sends it."""

    app: ServedApp
    store: Store
    key_id: str
    key: str
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.app.url

    async def balance(self) -> int:
        return await self.store.balance(self.key_id)


@pytest.fixture
async def deploy(
    upstream: ScriptedUpstream, database_url: str, serve: Callable[[Settings], ServedApp]
) -> AsyncIterator[Callable[..., Awaitable[Deployment]]]:
    """``await deploy(server={...}, presets={...}, credits=N)``: moa with those settings on
    this test's SQLite file. Clients close before the servers stop."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            *, server: dict[str, Any] | None = None, credits: int = 100, **sections: Any
        ) -> Deployment:
            settings = fake_settings(
                upstream, server={"database_url": database_url, **(server or {})}, **sections
            )
            app = serve(settings)
            store = await Store.open(database_url)
            stack.push_async_callback(store.close)
            record, plaintext = await store.create_key(credits=credits, name="deployed")
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=app.url, headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
                )
            )
            return Deployment(app, store, record.id, plaintext, http)

        yield make


# ---- PostgreSQL: a fresh database per test ------------------------------------------------


def _asyncpg_dsn(sqlalchemy_url: str, database: str) -> str:
    base = sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return base.rsplit("/", 1)[0] + "/" + database


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """A database of its own (``moa_race_<hex>``), dropped afterwards: the server cannot be
    pointed at a schema (Settings has no schema and asyncpg rejects URL options), so this
    is the only way to keep test runs from sharing tables."""
    import asyncpg

    name = f"moa_race_{secrets.token_hex(6)}"
    admin_dsn = _asyncpg_dsn(postgres_url, postgres_url.rsplit("/", 1)[1])
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# ---- Redis: a database number of its own, emptied of what the test used --------------------


@dataclass
class RedisLimits:
    """Where rate-limit tests keep their windows; add every key id the test uses to
    ``key_ids`` so its counters (and loopback's) are deleted afterwards."""

    url: str
    key_ids: list[str]


@pytest.fixture
async def redis_limits(redis_url: str) -> AsyncIterator[RedisLimits]:
    import redis.asyncio as redis

    limits = RedisLimits(redis_url.rsplit("/", 1)[0] + "/5", [])
    yield limits
    connection = redis.Redis.from_url(limits.url)
    try:
        used = [
            key
            async for key in connection.scan_iter(match="LIMITS:*")
            if any(who.encode() in key for who in ["/127.0.0.1/", *limits.key_ids])
        ]
        if used:
            await connection.delete(*used)
    finally:
        await connection.aclose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database several `moa serve` processes share: a SQLite file, or a PostgreSQL
    database of its own."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url
