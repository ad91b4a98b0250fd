"""Fixtures shared by every test: a scripted upstream on loopback and settings pointing
moa's ``fake`` provider at it. No test reaches a real provider: there are no keys here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

from moa.config import Settings, settings_from_dict
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream

# Tests on the embedded model run llama.cpp on the CPU: with every core busy a blend can take
# minutes, so they get a longer limit than the suite's (pyproject's pytest-timeout, 300 s).
# A hang still fails, with a stack trace; no test of theirs times itself.
LOCAL_MODEL_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("local_model") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(LOCAL_MODEL_TIMEOUT_S))


@pytest.fixture(scope="session")
def shared_upstream() -> Iterator[ScriptedUpstream]:
    with ScriptedUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(shared_upstream: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    """The session's upstream, reset so each test scripts it from scratch."""
    shared_upstream.reset()
    yield shared_upstream
    shared_upstream.reset()


def fake_settings(upstream: ScriptedUpstream, **sections: Any) -> Settings:
    """Settings with provider ``fake`` (and ``spare``) on the scripted upstream."""
    data: dict[str, Any] = {
        "providers": {
            "fake": {"kind": "openai", "base_url": upstream.base_url, "api_key": "sk-fake"},
            "spare": {"kind": "openai", "base_url": upstream.base_url, "api_key": "sk-spare"},
        },
        "engine": {"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.05, "min_timeout_s": 0.01},
    }
    for name, section in sections.items():
        merged = dict(data.get(name, {}))
        for key, value in section.items():
            old = merged.get(key)
            merged[key] = (
                {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
            )
        data[name] = merged
    return settings_from_dict(data)


@pytest.fixture
def settings(upstream: ScriptedUpstream) -> Settings:
    return fake_settings(upstream)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with Runtime(settings) as rt:
        yield rt


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis on 127.0.0.1:6379, started if it was not running."""
    from tests.services import ensure_redis

    return ensure_redis()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """PostgreSQL on 127.0.0.1:5432, started if it was not running."""
    from tests.services import ensure_postgres

    return ensure_postgres()


@pytest.fixture(autouse=True)
def no_blocking_calls_on_the_event_loop() -> Iterator[None]:
    """Fail any test in which moa's own code makes a blocking call (sleep, file or socket
    I/O, a lock wait, ...) on an event loop: one such call stalls every blend. BlockBuster
    intercepts the calls themselves and looks for a ``moa`` frame on the stack, so a busy
    machine (slow callbacks) cannot fail a test and blocking test code is not blamed.

    ``moa.testing`` is exempt: the scripted upstream's request log is shared with the test
    thread under a lock, which is the test double's business, not moa's."""
    with blockbuster_ctx("moa", excluded_modules=["moa.testing"]) as buster:
        for library, function in LIBRARY_ONE_OFFS:
            for call in FILE_READS:
                buster.functions[call].can_block_in(library, function)
        for blocking in buster.functions.values():  # a module's first import runs once
            blocking.can_block_in("<frozen importlib._bootstrap>", "_find_and_load")
        yield


# Files libraries read once per process (their own metadata, say, or a database file's
# path when an engine is made at start-up) the first time a moa frame is under them.
LIBRARY_ONE_OFFS = [
    ("redis/utils.py", "get_lib_version"),
    ("sqlalchemy/ext/asyncio/engine.py", "create_async_engine"),
    ("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args"),  # ~/.pgpass, per connection
]
FILE_READS = (
    "os.stat",
    "os.listdir",
    "os.scandir",
    "os.path.abspath",
    "io.BufferedReader.read",
    "io.TextIOWrapper.read",
)
