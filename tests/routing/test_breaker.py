"""Circuit breakers: closed -> open after N failures -> half-open after the cooldown with
exactly one trial -> closed on success, open again on failure. Memory and Redis alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from moa.routing.breaker import Breakers, MemoryBreakers
from moa.routing.redis_breakers import RedisBreakers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def trip(breakers: Breakers, model: str, times: int = 3) -> None:
    for _ in range(times):
        await breakers.record_failure(model)


async def test_breaker_opens_after_three_consecutive_failures() -> None:
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=Clock())
    await trip(breakers, "fake/alpha", 2)
    assert await breakers.allow("fake/alpha")
    await trip(breakers, "fake/alpha", 1)
    assert await breakers.state("fake/alpha") == "open"
    assert not await breakers.allow("fake/alpha")


async def test_a_success_resets_the_failure_count() -> None:
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=Clock())
    await trip(breakers, "fake/alpha", 2)
    await breakers.record_success("fake/alpha")
    await trip(breakers, "fake/alpha", 2)
    assert await breakers.state("fake/alpha") == "closed"


async def test_after_the_cooldown_exactly_one_trial_call_passes() -> None:
    clock = Clock()
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=clock)
    await trip(breakers, "fake/alpha")
    clock.now += 30
    assert await breakers.state("fake/alpha") == "half_open"
    assert await breakers.allow("fake/alpha")
    assert not await breakers.allow("fake/alpha"), "only one trial while half-open"


async def test_a_successful_trial_closes_the_circuit() -> None:
    clock = Clock()
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=clock)
    await trip(breakers, "fake/alpha")
    clock.now += 31
    assert await breakers.allow("fake/alpha")
    await breakers.record_success("fake/alpha")
    assert await breakers.state("fake/alpha") == "closed"
    assert await breakers.allow("fake/alpha")


async def test_a_failed_trial_opens_the_circuit_for_another_cooldown() -> None:
    clock = Clock()
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=clock)
    await trip(breakers, "fake/alpha")
    clock.now += 31
    assert await breakers.allow("fake/alpha")
    await breakers.record_failure("fake/alpha")
    assert await breakers.state("fake/alpha") == "open"
    clock.now += 29
    assert not await breakers.allow("fake/alpha")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def redis_pair(
    redis_url: str, clock: Clock
) -> AsyncIterator[tuple[RedisBreakers, RedisBreakers]]:
    """Two processes' breakers on one Redis, on one clock."""
    prefix = f"moa:test:{uuid.uuid4().hex[:8]}:"
    url = redis_url
    one = RedisBreakers(url, failures=3, cooldown_s=30, prefix=prefix, clock=clock)
    two = RedisBreakers(url, failures=3, cooldown_s=30, prefix=prefix, clock=clock)
    yield one, two
    await one.record_success("fake/alpha")
    await one.aclose()
    await two.aclose()


@pytest.mark.redis
async def test_a_circuit_opened_in_one_process_is_open_in_another(
    redis_pair: tuple[RedisBreakers, RedisBreakers],
) -> None:
    one, two = redis_pair
    await trip(one, "fake/alpha", 2)
    await trip(two, "fake/alpha", 1)
    assert await one.state("fake/alpha") == "open"
    assert not await two.allow("fake/alpha")


@pytest.mark.redis
async def test_only_one_process_wins_the_half_open_trial(
    redis_pair: tuple[RedisBreakers, RedisBreakers], clock: Clock
) -> None:
    one, two = redis_pair
    await trip(one, "fake/alpha")
    clock.now += 30
    assert await two.state("fake/alpha") == "half_open"
    wins = [await one.allow("fake/alpha"), await two.allow("fake/alpha")]
    assert sorted(wins) == [False, True]
    await two.record_success("fake/alpha")
    assert await one.state("fake/alpha") == "closed"


async def one_key_fails(breakers: Breakers, times: int, key: str = "key_a") -> None:
    for _ in range(times):
        await breakers.record_failure("fake/alpha", key)


async def test_one_keys_failures_alone_never_open_a_breaker_every_key_shares() -> None:
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=Clock(), keys=2)
    await one_key_fails(breakers, 10)
    assert await breakers.state("fake/alpha") == "closed"
    await one_key_fails(breakers, 1, key="key_b")
    assert await breakers.state("fake/alpha") == "open"


async def test_a_breaker_of_one_user_opens_by_count_alone() -> None:
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=Clock(), keys=2)
    await trip(breakers, "fake/alpha")  # no tenant: the CLI's or the Python API's one user
    assert await breakers.state("fake/alpha") == "open"


async def test_an_operator_may_let_one_key_open_a_breaker() -> None:
    breakers = MemoryBreakers(failures=3, cooldown_s=30, clock=Clock(), keys=1)
    await one_key_fails(breakers, 3)
    assert await breakers.state("fake/alpha") == "open"


@pytest.mark.redis
async def test_shared_breakers_need_two_keys_failures_across_processes(
    redis_pair: tuple[RedisBreakers, RedisBreakers],
) -> None:
    one, two = redis_pair
    await one_key_fails(one, 5)
    assert await two.state("fake/alpha") == "closed"
    await one_key_fails(two, 1, key="key_b")
    assert await one.state("fake/alpha") == "open"
