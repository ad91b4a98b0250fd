"""The Python API of eval against the scripted upstream: every system's accuracy, calls and
answers are known in advance."""

from __future__ import annotations

from pathlib import Path

import pytest

from moa.eval import AnswerCache, EvalPlan, run_eval, summarise, wilson
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from tests.eval.conftest import ALPHA, TASK_COUNT, right_on, tasks


def three_models(**fields: object) -> EvalPlan:
    return EvalPlan.model_validate({"models": ["fake/alpha", "fake/beta", "fake/gamma"], **fields})


async def test_each_model_alone_and_the_vote_score_as_scripted(
    scripted: ScriptedUpstream, runtime: Runtime
) -> None:
    report = summarise(await run_eval(tasks(), three_models(strategies=["vote"]), runtime))
    scores = {s.system: s for s in report.systems}
    assert list(scores) == ["fake/alpha", "fake/beta", "fake/gamma", "vote"]
    assert {name: s.correct for name, s in scores.items()} == {
        "fake/alpha": 6,
        "fake/beta": 6,
        "fake/gamma": 7,
        "vote": 9,
    }
    vote = scores["vote"]
    assert (vote.n, vote.accuracy, vote.calls) == (TASK_COUNT, 0.9, 3 * TASK_COUNT)
    assert vote.ci95 == wilson(9, 10)
    assert scores["fake/alpha"].calls == TASK_COUNT
    assert report.tasks == TASK_COUNT


async def test_a_synthesizing_strategy_is_scored_on_the_synthesizers_answer(
    scripted: ScriptedUpstream, runtime: Runtime
) -> None:
    scripted.script("judge", reply=right_on({0, 1, 2, 3}, 5))
    plan = three_models(strategies=["consensus"], synthesizer="fake/judge")
    run = await run_eval(tasks(), plan, runtime)
    consensus = next(s for s in summarise(run).systems if s.system == "consensus")
    assert (consensus.correct, consensus.calls) == (4, 4 * TASK_COUNT)
    assert len(scripted.calls("judge")) == TASK_COUNT


async def test_every_answer_is_recorded_with_what_the_scorer_read(
    scripted: ScriptedUpstream, runtime: Runtime
) -> None:
    run = await run_eval(tasks(3), three_models(strategies=["vote"]), runtime)
    assert len(run.answers) == 3 * 4
    first = run.answers[0]
    assert (first.system, first.task_id, first.expected, first.extracted) == (
        "fake/alpha",
        "q0",
        "7",
        "7",
    )
    assert first.correct and first.error is None and not first.cached
    vote = next(a for a in run.answers if a.system == "vote" and a.task_id == "q2")
    assert vote.vote is not None and vote.vote.votes == {"27": 2, "30": 1}


async def test_one_model_sampled_by_vote_is_one_call_per_sample(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    upstream.script("alpha", reply=right_on(ALPHA, 1))
    plan = EvalPlan(models=["fake/alpha"], strategies=["vote"], samples=3)
    report = summarise(await run_eval(tasks(4), plan, runtime))
    assert [(s.system, s.correct, s.calls) for s in report.systems] == [
        ("fake/alpha", 4, 4),
        ("vote", 4, 12),
    ]


async def test_a_failed_answer_counts_as_wrong_and_names_its_error(
    scripted: ScriptedUpstream, runtime: Runtime
) -> None:
    scripted.script("beta", status=400, error_message="beta refuses")
    run = await run_eval(tasks(2), three_models(), runtime)
    beta = [a for a in run.answers if a.system == "fake/beta"]
    assert [a.correct for a in beta] == [False, False]
    assert all("HTTP 400: the upstream rejected the request" in (a.error or "") for a in beta)
    assert summarise(run).systems[1].correct == 0


async def test_no_more_than_concurrency_answers_are_in_flight(
    scripted: ScriptedUpstream, runtime: Runtime
) -> None:
    for name in ("alpha", "beta", "gamma"):
        scripted.script(name, reply=right_on(ALPHA, 1), latency_ms=40)
    await run_eval(tasks(6), three_models(concurrency=2), runtime)
    records = scripted.requests
    assert len(records) == 18
    events = sorted(
        [(r.received_at, 1) for r in records]
        + [(r.completed_at or r.received_at, -1) for r in records]
    )
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    assert peak == 2


async def test_a_rerun_with_the_cache_asks_nothing_and_reports_the_same(
    scripted: ScriptedUpstream, runtime: Runtime, tmp_path: Path
) -> None:
    cache = AnswerCache(tmp_path / "cache")
    plan = three_models(strategies=["vote"])
    first = summarise(await run_eval(tasks(), plan, runtime, cache=cache))
    asked = len(scripted.requests)
    second_run = await run_eval(tasks(), plan, runtime, cache=AnswerCache(tmp_path / "cache"))
    assert len(scripted.requests) == asked
    assert all(a.cached for a in second_run.answers)
    assert summarise(second_run).model_dump() == first.model_dump()


async def test_an_interrupted_run_resumes_where_it_stopped(
    scripted: ScriptedUpstream, runtime: Runtime, tmp_path: Path
) -> None:
    cache = AnswerCache(tmp_path / "cache")
    plan = three_models()
    await run_eval(tasks(4), plan, runtime, cache=cache)  # as if stopped after 4 tasks
    before = len(scripted.requests)
    run = await run_eval(tasks(), plan, runtime, cache=cache)
    assert len(scripted.requests) - before == 3 * (TASK_COUNT - 4)
    assert sum(a.cached for a in run.answers) == 3 * 4


async def test_failed_answers_are_not_cached_so_a_rerun_asks_again(
    scripted: ScriptedUpstream, runtime: Runtime, tmp_path: Path
) -> None:
    cache = AnswerCache(tmp_path / "cache")
    scripted.script("alpha", status=400)
    await run_eval(tasks(2), EvalPlan(models=["fake/alpha"]), runtime, cache=cache)
    scripted.script("alpha", reply=right_on(ALPHA, 1))
    run = await run_eval(tasks(2), EvalPlan(models=["fake/alpha"]), runtime, cache=cache)
    assert [a.correct for a in run.answers] == [True, True]
    assert not any(a.cached for a in run.answers)


async def test_other_settings_are_other_cache_entries(
    scripted: ScriptedUpstream, runtime: Runtime, tmp_path: Path
) -> None:
    cache = AnswerCache(tmp_path / "cache")
    await run_eval(tasks(2), EvalPlan(models=["fake/alpha"], seed=1), runtime, cache=cache)
    run = await run_eval(tasks(2), EvalPlan(models=["fake/alpha"], seed=2), runtime, cache=cache)
    assert not any(a.cached for a in run.answers)


def test_a_plan_that_cannot_run_fails_before_any_call_naming_the_strategy() -> None:
    from moa.errors import InvalidRequest

    plan = EvalPlan(models=["fake/alpha", "fake/beta"], strategies=["self_moa"])
    with pytest.raises(InvalidRequest, match="strategy self_moa: models"):
        plan.check()
