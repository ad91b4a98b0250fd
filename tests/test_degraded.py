"""Honest answers: when sources failed, were skipped by an open breaker or were cut as
stragglers, the answer and the done event say which and why (``degraded``)."""

from __future__ import annotations

from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from tests.helpers import collect, done_of, request


async def test_a_full_panel_is_not_degraded(upstream: ScriptedUpstream, runtime: Runtime) -> None:
    answer = await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    assert answer.degraded is False
    assert answer.degraded_sources == []


async def test_a_failed_source_makes_the_answer_degraded_naming_it(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("beta", status=400, error_message="beta is gone")
    answer = await blend(
        request("fake/alpha", "fake/beta", "fake/gamma", synthesizer="fake/judge"), runtime
    )
    assert answer.degraded is True
    (source,) = answer.degraded_sources
    assert (source.model, source.layer, source.sample, source.status) == (
        "fake/beta",
        0,
        None,
        "failed",
    )
    assert source.error == "HTTP 400: the upstream rejected the request"


async def test_a_source_skipped_by_its_open_breaker_is_reported_as_skipped(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=503)
    req = request("fake/alpha", "fake/beta", synthesizer="fake/beta", max_tokens=16)
    for _ in range(3):  # three failed requests open the breaker
        first = done_of(await collect(req, runtime))
        assert [s.status for s in first.degraded_sources] == ["failed"]
    done = done_of(await collect(req, runtime))
    assert done.degraded is True
    assert [(s.model, s.status, s.error) for s in done.degraded_sources] == [
        ("fake/alpha", "skipped", "skipped (circuit_open)")
    ]


async def test_a_straggler_cut_by_the_quorum_is_reported_as_cut(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("slow", latency_ms=5000)
    events = await collect(
        request(
            "fake/alpha",
            "fake/beta",
            "fake/slow",
            synthesizer="spare/judge",
            quorum=2,
            grace_ms=0,
        ),
        runtime,
    )
    done = done_of(events)
    assert done.degraded is True
    assert [(s.model, s.status) for s in done.degraded_sources] == [("fake/slow", "cut")]


async def test_a_failed_sample_of_one_model_is_named_by_its_sample_number(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=400, fail_times=1)  # whichever sample calls first fails
    answer = await blend(
        request("fake/alpha", strategy="self_moa", samples=2, synthesizer="fake/judge"), runtime
    )
    (source,) = answer.degraded_sources
    assert (source.model, source.status) == ("fake/alpha", "failed")
    ok = [s.sample for s in answer.sources if s.status == "ok"]
    assert source.sample in (0, 1) and ok == [1 - source.sample]
