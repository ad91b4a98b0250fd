"""Straggler quorum: once k sources answered, wait at most grace_ms for the rest, then
synthesize with what arrived; the others are reported as cut stragglers and cancelled."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import SourceEvent
from tests.helpers import collect, done_of, request, system_text


async def test_quorum_synthesizes_without_waiting_for_a_straggler(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", latency_ms=50)
    upstream.script("beta", latency_ms=50)
    upstream.script("slow", latency_ms=5000)
    events = await collect(
        request(
            "fake/alpha",
            "fake/beta",
            "fake/slow",
            synthesizer="spare/judge",
            quorum=2,
            grace_ms=100,
        ),
        runtime,
    )
    # The blend ended while slow was still working: it was not waited for.
    assert not upstream.calls("slow")[0].completed
    cut = [e for e in events if isinstance(e, SourceEvent) and e.status == "cut"]
    assert [(e.model, e.error) for e in cut] == [("fake/slow", "straggler")]
    slow = next(s for s in done_of(events).sources if s.model == "fake/slow")
    assert (slow.status, slow.error) == ("error", "cut (straggler)")
    assert "[slow]" not in system_text(upstream.calls("judge")[0].messages)


async def test_a_cut_straggler_has_its_upstream_call_cancelled(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("slow", latency_ms=5000)
    await blend(
        request(
            "fake/alpha", "fake/beta", "fake/slow", synthesizer="spare/judge", quorum=2, grace_ms=0
        ),
        runtime,
    )
    await upstream.wait_for_async(lambda: upstream.calls("slow")[0].disconnected, within=30)


async def test_a_straggler_arriving_within_grace_is_kept(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", latency_ms=20)
    upstream.script("beta", latency_ms=20)
    upstream.script("late", latency_ms=200)
    answer = await blend(
        request(
            "fake/alpha",
            "fake/beta",
            "fake/late",
            synthesizer="spare/judge",
            quorum=2,
            grace_ms=2000,
        ),
        runtime,
    )
    assert all(s.status == "ok" for s in answer.sources)


async def test_without_quorum_the_blend_waits_for_every_source(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("slow", latency_ms=400)
    answer = await blend(request("fake/alpha", "fake/slow", synthesizer="spare/judge"), runtime)
    assert all(s.status == "ok" for s in answer.sources)
    (slow,) = upstream.calls("slow")
    assert slow.completed_at is not None
    assert upstream.calls("judge")[0].received_at >= slow.completed_at, "synthesis came after"


async def test_quorum_applies_to_each_moa_layer(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("slow", latency_ms=3000)
    events = await collect(
        request(
            "fake/alpha",
            "fake/beta",
            "fake/slow",
            synthesizer="spare/judge",
            strategy="moa",
            layers=1,
            quorum=2,
            grace_ms=50,
        ),
        runtime,
    )
    cut_layers = [e.layer for e in events if isinstance(e, SourceEvent) and e.status == "cut"]
    assert cut_layers == [0, 1]


def test_a_quorum_larger_than_the_sources_is_rejected_naming_quorum() -> None:
    with pytest.raises(ValidationError, match="quorum"):
        request("fake/alpha", "fake/beta", quorum=3)
