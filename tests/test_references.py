"""The reference budget (3,200 characters each, then one common ratio down to 12,000
total), and fence lines a synthesizer echoes kept out of the answer."""

from __future__ import annotations

from moa.engine import blend
from moa.references import FenceFilter, apply_budget, strip_fences
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from tests.helpers import collect, content_of, request, system_text
from tests.strategies.fences import fenced


def long_text(chars: int, seed: str = "0123456789") -> str:
    """Text whose every prefix is distinct, so a cut shows exactly where it was made."""
    return (seed * (chars // len(seed) + 1))[:chars]


def test_each_reference_is_cut_to_its_first_3200_characters() -> None:
    text = long_text(5_000)
    assert apply_budget([text, "short"]) == [text[:3_200], "short"]


def test_references_totalling_at_most_12000_are_left_untouched() -> None:
    texts = [long_text(3_200), long_text(3_200, "abc"), long_text(3_200, "xyz"), long_text(2_400)]
    assert apply_budget(texts) == texts


def test_references_over_the_total_are_all_scaled_by_the_same_ratio() -> None:
    texts = [long_text(5_000), *(long_text(3_000, s) for s in ("abc", "xyz", "pq", "uvw"))]
    ratio = 12_000 / (3_200 + 4 * 3_000)
    budgeted = apply_budget(texts)
    assert [len(t) for t in budgeted] == [int(3_200 * ratio)] + [int(3_000 * ratio)] * 4
    assert all(text.startswith(cut) for text, cut in zip(texts, budgeted, strict=True))
    assert sum(len(t) for t in budgeted) <= 12_000


async def test_a_long_answer_reaches_the_synthesizer_as_its_first_3200_characters(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    answer = long_text(5_000)
    upstream.script("alpha", content=answer)
    await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    system = system_text(upstream.calls("judge")[0].messages)
    assert fenced(system, "answer 1") == answer[:3_200]


async def test_five_long_answers_reach_the_synthesizer_scaled_to_fit_12000_together(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    names = ("alpha", "beta", "gamma", "delta", "epsilon")
    for name in names:
        upstream.script(name, content=long_text(4_000, name))
    models = [f"fake/{n}" for n in names]
    await blend(request(*models, synthesizer="fake/judge"), runtime)
    system = system_text(upstream.calls("judge")[0].messages)
    for number, name in enumerate(names, 1):
        assert fenced(system, f"answer {number}") == long_text(2_400, name)


async def test_fence_lines_a_synthesizer_echoes_never_reach_the_user(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    echo = "<<<answer 1 a748292c>>>\nParis is the capital.\n<<<end of answer 1 a748292c>>>"
    upstream.script("judge", content=echo)
    events = await collect(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    streamed = content_of(events)
    assert "<<<" not in streamed and ">>>" not in streamed
    assert "Paris is the capital." in streamed
    answer = await blend(request("fake/alpha", "fake/beta", synthesizer="fake/judge"), runtime)
    assert answer.content == streamed


def test_a_stream_stripped_piece_by_piece_equals_the_whole_stripped() -> None:
    text = "a <<<answer 2 ff>>> b <<x>> <<<<c>>> <<< open\n d <<"
    for size in range(1, len(text) + 1):
        fences = FenceFilter()
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(fences(p) for p in pieces) + fences.flush() == strip_fences(text)
