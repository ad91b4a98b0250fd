"""Routing through real HTTP: retries with Retry-After, failover routes, breakers in a
blend, per-provider concurrency caps, and streams cut mid-answer."""

from __future__ import annotations

from moa.engine import blend
from moa.routing.budget import RetryBudget
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import ChunkEvent, RouteEvent, SourceEvent
from tests.conftest import fake_settings
from tests.helpers import collect, content_of, done_of, error_of, request


async def test_a_429_is_retried_after_the_retry_after_it_asked_for(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=429, retry_after=0.3, fail_times=1)
    answer = await blend(request("fake/alpha", "fake/beta", synthesizer="fake/beta"), runtime)
    assert all(s.status == "ok" for s in answer.sources)
    first, second = upstream.calls("alpha")
    assert second.received_at - first.received_at >= 0.3


async def test_a_client_error_is_not_retried(upstream: ScriptedUpstream, runtime: Runtime) -> None:
    upstream.script("alpha", status=400)
    await blend(request("fake/alpha", "fake/beta", synthesizer="fake/beta"), runtime)
    assert len(upstream.calls("alpha")) == 1


async def test_retries_stop_when_the_retry_budget_is_spent() -> None:
    budget = RetryBudget(ratio=0.1, reserve=2)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    for _ in range(10):
        budget.on_attempt()
    assert budget.try_spend()


async def test_a_failing_source_fails_over_to_its_fallback_and_reports_each_attempt(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=400, error_message="alpha is down")
    req = request(
        {"model": "fake/alpha", "fallback": ["spare/beta"]}, "fake/gamma", synthesizer="fake/gamma"
    )
    events = await collect(req, runtime)
    routes = [(e.model, e.status) for e in events if isinstance(e, RouteEvent)]
    assert routes == [
        ("fake/alpha", "trying"),
        ("fake/alpha", "failed"),
        ("spare/beta", "trying"),
        ("spare/beta", "success"),
    ]
    done = done_of(events)
    assert {s.model for s in done.sources} == {"spare/beta", "fake/gamma"}
    assert upstream.calls("beta")[0].authorization == "Bearer sk-spare"


async def test_an_open_circuit_skips_the_model_without_calling_it(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=503)
    req = request("fake/alpha", "fake/beta", synthesizer="fake/beta", max_tokens=16)
    for _ in range(3):  # three failed requests (each retried) open the breaker
        await collect(req, runtime)
    calls_before = len(upstream.calls("alpha"))
    events = await collect(req, runtime)
    skipped = [e for e in events if isinstance(e, SourceEvent) and e.model == "fake/alpha"]
    assert [(e.status, e.error) for e in skipped] == [("skipped", "skipped (circuit_open)")]
    assert len(upstream.calls("alpha")) == calls_before
    assert done_of(events).sources[0].error == "skipped (circuit_open)"


async def test_a_breaker_counts_failed_requests_not_their_retries(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=503)
    req = request("fake/alpha", "fake/beta", synthesizer="fake/beta", max_tokens=16)
    await collect(req, runtime)
    await collect(req, runtime)
    assert len(upstream.calls("alpha")) > 2, "each request retried"
    assert await runtime.router.breakers.state("fake/alpha") == "closed"


async def test_a_provider_cap_bounds_concurrent_calls_to_that_provider(
    upstream: ScriptedUpstream,
) -> None:
    settings = fake_settings(upstream, providers={"fake": {"max_concurrency": 2}})
    for name in ("a", "b", "c", "d", "e", "f"):
        upstream.script(name, latency_ms=150)
    models = [f"fake/{n}" for n in "abcdef"]
    async with Runtime(settings) as rt:
        await blend(request(*models, synthesizer="spare/z"), rt)
    spans = [
        (r.received_at, r.completed_at or r.received_at)
        for r in upstream.requests
        if r.model != "z"
    ]
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak == 2


async def test_a_synthesis_stream_cut_mid_answer_fails_without_repeating_text(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content="one two three four five six", cut_after=3)
    events = await collect(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    assert error_of(events).code == "synthesis_failed"
    assert content_of(events) == "one two three "
    assert len([e for e in events if isinstance(e, ChunkEvent)]) == 3
    assert len(upstream.calls("judge")) == 1, "no retry once text reached the user"


async def test_a_source_whose_response_is_cut_is_a_failed_source_not_a_crash(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", cut_after=1)
    upstream.script("beta", content="fine")
    answer = await blend(request("fake/alpha", "fake/beta", synthesizer="fake/beta"), runtime)
    alpha = next(s for s in answer.sources if s.model == "fake/alpha")
    assert alpha.status == "error"
    assert answer.content == "fine"


async def test_a_malformed_synthesis_stream_fails_the_blend_cleanly(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", malformed=True)
    events = await collect(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    error = error_of(events)
    assert error.code == "synthesis_failed"
    assert "bad response" in error.message
    assert content_of(events) == ""


async def test_a_rate_limited_synthesis_stream_is_retried_before_its_first_token(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content="all good here", status=429, retry_after=0.05, fail_times=1)
    events = await collect(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    assert content_of(events) == "all good here"
    assert len(upstream.calls("judge")) == 2
