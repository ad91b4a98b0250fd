"""``moa eval``: run a task set through models alone and strategies over them, then print
the comparison (a table, or ``--json``) and with ``--out`` write results, answers, plots."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from moa.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOption,
    ModelOption,
    fail,
    settings_or_exit,
    validation_message,
)
from moa.errors import MoaError
from moa.types import STRATEGIES

if TYPE_CHECKING:
    from moa.config import Settings
    from moa.eval import AnswerCache, EvalPlan, EvalRun, Task


def eval_command(
    tasks: Annotated[
        str | None,
        typer.Argument(help="Task set: a JSONL file, or the name of a shipped set (--list)."),
    ] = None,
    model: ModelOption = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A strategy over the models ({', '.join(STRATEGIES)}); repeat for more. "
            "Default: the blend default (self_moa for one model, else consensus) and vote."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Samples of one model (self_moa, vote).")] = 4,
    synthesizer: Annotated[
        str | None, typer.Option("--synthesizer", "-s", help="Model that combines answers.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N tasks.")] = None,
    concurrency: Annotated[int, typer.Option(help="Answers in flight at once (1-64).")] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0-2).")] = 0.7,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on tokens per call.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed, where the provider takes one.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the results as JSON.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write results.json, answers.jsonl and plots here.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ask again instead of reusing cached answers.")
    ] = False,
    list_sets: Annotated[
        bool, typer.Option("--list", help="List the task sets moa ships, then exit.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Measure whether blending helps: models alone vs strategies, on a task set."""
    from moa.eval import AnswerCache, EvalPlan, default_cache_dir, load_tasks

    if list_sets:
        _print_sets()
        return
    if tasks is None:
        fail(
            "invalid_request",
            "tasks: name a JSONL file or a shipped set (moa eval --list)",
            EXIT_USAGE,
        )
    settings = settings_or_exit(config)
    models = model or settings.defaults.models
    try:
        task_set = load_tasks(tasks)
        plan = EvalPlan(
            models=models,
            strategies=strategy or [_default_strategy(models), "vote"],
            samples=samples,
            synthesizer=synthesizer,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            concurrency=concurrency,
        )
        plan.check()
    except ValidationError as exc:
        fail("invalid_request", validation_message(exc), EXIT_USAGE)
    except MoaError as exc:
        fail(exc.code, exc.message, EXIT_USAGE)
    chosen = task_set.tasks[:limit] if limit else task_set.tasks
    cache = None if no_cache else AnswerCache(_cache_dir(out, default_cache_dir(settings.env)))
    run = asyncio.run(_run(list(chosen), plan, settings, cache))
    _finish(run, plan, task_set.name, json_output, out)


def _default_strategy(models: list[str]) -> str:
    return "self_moa" if len(models) == 1 else "consensus"


def _cache_dir(out: Path | None, default: Path) -> Path:
    return out / "cache" if out is not None else default


def _print_sets() -> None:
    from moa.eval.tasks import SHIPPED, parse_tasks, shipped_text

    for entry in SHIPPED:
        count = len(parse_tasks(shipped_text(entry).splitlines(), entry.name))
        print(f"{entry.name:<12} {count:>5} tasks  {entry.description}")


async def _run(
    tasks: list[Task], plan: EvalPlan, settings: Settings, cache: AnswerCache | None
) -> EvalRun:
    from moa.cli.eval_progress import EvalProgress
    from moa.eval import run_eval
    from moa.runtime import Runtime

    async with Runtime(settings) as runtime:
        with EvalProgress([s.name for s in plan.systems()], len(tasks)) as progress:
            try:
                return await run_eval(tasks, plan, runtime, cache=cache, on_answer=progress.add)
            except MoaError as exc:
                fail(exc.code, exc.message, EXIT_USAGE)


def _finish(
    run: EvalRun, plan: EvalPlan, task_set: str, json_output: bool, out: Path | None
) -> None:
    from rich.console import Console

    from moa.eval.report import errors_by_system, summarise, table

    report = summarise(run)
    if json_output:
        print(report.model_dump_json(indent=2))
    else:
        Console(width=max(100, Console().width)).print(table(report, errors_by_system(run)))
    if out is not None:
        from moa.eval.results import write_results

        written, missing = write_results(out, run, report, plan, task_set)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
        if missing:
            print(f"plots skipped: {missing}", file=sys.stderr)
    cached = sum(a.cached for a in run.answers)
    if cached:
        print(f"{cached} of {len(run.answers)} answers came from the cache", file=sys.stderr)
    if run.answers and all(a.error is not None for a in run.answers):
        print(f"every answer failed; first: {run.answers[0].error}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)
