"""Fixtures shared by every test: a scripted upstream on loopback and settings pointing
moa's ``fake`` provider at it. No test reaches a real provider: there are no keys here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from moa.config import Settings, settings_from_dict
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream


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
    from moa.testing.services import ensure_redis

    return ensure_redis()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """PostgreSQL on 127.0.0.1:5432, started if it was not running."""
    from moa.testing.services import ensure_postgres

    return ensure_postgres()


class _SlowCallbacks(logging.Handler):
    """Collects asyncio's debug-mode reports of callbacks that blocked the loop."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and " took " in message:
            self.reports.append(message)


@pytest.fixture(autouse=True)
async def no_blocking_calls_on_the_event_loop(
    request: pytest.FixtureRequest,
) -> AsyncIterator[None]:
    """Fail any async test whose code blocked the event loop for over 250 ms (asyncio's
    debug mode times every callback): a blocking call in moa would stall every blend.

    Server tests are exempt: their moa runs on another thread's loop in this process, so
    their own steps are timed with that thread's work (and the GIL) mixed in."""
    if "server" in request.path.parts:
        yield
        return
    loop = asyncio.get_running_loop()
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    loop.set_debug(True)
    loop.slow_callback_duration = 0.25
    try:
        yield
    finally:
        loop.set_debug(False)
        logger.removeHandler(handler)
    assert not handler.reports, f"the event loop was blocked: {handler.reports}"
