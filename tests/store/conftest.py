"""Fixtures for store tests: real SQLite files and the real PostgreSQL server.

Nothing is mocked: concurrency guarantees live in the databases' locking, so
only real databases can show them. PostgreSQL tests each get a fresh schema
(dropped afterwards), so parallel or repeated runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

SRC = Path(__file__).resolve().parents[2] / "src"
# The package is not installed into the venv; make ``import moa`` work both
# here and in the subprocesses some tests start.
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from moa.store import Store  # noqa: E402

PG_URL = os.environ.get("MOA_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _pg_execute(sql: str) -> None:
    """Run one statement on a throwaway connection (no pool left behind)."""
    engine = create_async_engine(PG_URL, poolclass=NullPool, connect_args={"timeout": 3})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _pg_answers() -> bool:
    try:
        await _pg_execute("SELECT 1")
    except (OSError, TimeoutError, DBAPIError):
        return False
    return True


def _start_postgres() -> None:
    """Start the local cluster the way the dev box expects (no systemd)."""
    ctl = shutil.which("pg_ctlcluster")
    if ctl is None or not Path("/etc/postgresql").is_dir():
        pytest.skip("PostgreSQL is not running and pg_ctlcluster is not installed")
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(
            [ctl, "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, after making sure the server answers (starting it if
    needed). Fails loudly if it is installed but will not come up."""
    if asyncio.run(_pg_answers()):
        return PG_URL
    _start_postgres()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if asyncio.run(_pg_answers()):
            return PG_URL
        time.sleep(0.5)
    pytest.fail(f"PostgreSQL at {PG_URL} did not answer after trying to start it")


@dataclass
class Database:
    """Where a test's store lives; ``open()`` may be called several times to
    get independent engines/pools on the same data (like several processes)."""

    backend: str
    url: str
    schema: str | None = None
    sqlite_path: Path | None = None
    _opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = await Store.open(self.url, schema=self.schema)
        self._opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self._opened:
            await store.close()


def sqlite_database(tmp_path: Path) -> Database:
    path = tmp_path / "moa.db"
    return Database("sqlite", f"sqlite+aiosqlite:///{path}", sqlite_path=path)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = sqlite_database(tmp_path)
    yield db
    await db.close_all()


async def _drop_schema(schema: str) -> None:
    await _pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def postgres_db(postgres_server: str) -> AsyncIterator[Database]:
    schema = f"moa_test_{os.getpid()}_{secrets.token_hex(4)}"
    db = Database("postgres", postgres_server, schema=schema)
    yield db
    await db.close_all()
    await _drop_schema(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on both backends."""
    database: Database = request.getfixturevalue(f"{request.param}_db")
    return database


@pytest.fixture
async def store(db: Database) -> Store:
    return await db.open()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes that import ``moa``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env
