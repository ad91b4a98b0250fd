"""best_of: the synthesizer's `PICK: n` line names the chosen source and is never shown."""

from __future__ import annotations

from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest
from tests.helpers import collect, content_of, done_of, request

IMPROVED = "Paris is the capital of France, and has been since 987."


def best_of_request() -> BlendRequest:
    return request(
        "fake/alpha", "fake/beta", "fake/gamma", synthesizer="fake/judge", strategy="best_of"
    )


async def test_the_pick_line_names_the_chosen_sources_full_model_id(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content=f"PICK: 2\n{IMPROVED}")
    events = await collect(best_of_request(), runtime)
    assert done_of(events).best_of_pick == "fake/beta"


async def test_the_pick_line_is_never_streamed_to_the_user(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content=f"PICK: 2\n{IMPROVED}")
    events = await collect(best_of_request(), runtime)
    assert content_of(events) == IMPROVED


async def test_the_pick_counts_only_the_answers_the_synthesizer_saw(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("judge", content=f"PICK: 2\n{IMPROVED}")
    events = await collect(best_of_request(), runtime)
    assert done_of(events).best_of_pick == "fake/gamma", "answer 2 of beta and gamma is gamma"


async def test_without_a_pick_line_no_pick_is_reported(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", content="The sky looks blue because of Rayleigh scattering.")
    upstream.script("beta", content="Cats are small mammals that purr when content.")
    upstream.script("gamma", content="Rust has no garbage collector.")
    upstream.script("judge", content="Cats are small, purring mammals.")
    events = await collect(best_of_request(), runtime)
    assert done_of(events).best_of_pick is None
    assert content_of(events) == "Cats are small, purring mammals."


async def test_an_out_of_range_pick_is_reported_as_no_pick(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("gamma", content="Paris has been the capital of France since 987.")
    upstream.script("judge", content=f"PICK: 7\n{IMPROVED}")
    events = await collect(best_of_request(), runtime)
    assert done_of(events).best_of_pick is None
    assert content_of(events) == IMPROVED


async def test_a_pick_line_after_a_leading_blank_line_is_still_read_and_hidden(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("judge", content=f"\nPICK: 2\n{IMPROVED}")
    events = await collect(best_of_request(), runtime)
    assert content_of(events) == IMPROVED
    assert done_of(events).best_of_pick == "fake/beta"
