"""The files of an eval run: ``results.json`` (the ``--json`` document plus the task set,
the plan and failed answers per system), ``answers.jsonl`` (every scored answer, one per
line, system by system) and the two plots (when matplotlib is installed)."""

from __future__ import annotations

import json
from pathlib import Path

from moa.eval.plan import EvalPlan
from moa.eval.plots import PlotsUnavailable, write_plots
from moa.eval.report import EvalReport, errors_by_system
from moa.eval.runner import EvalRun


def write_results(
    directory: Path, run: EvalRun, report: EvalReport, plan: EvalPlan, task_set: str
) -> tuple[list[Path], str | None]:
    """Write every file; return them, and why the plots are missing if they are."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "task_set": task_set,
        "plan": plan.model_dump(mode="json"),
        **report.model_dump(mode="json"),
        "errors": errors_by_system(run),
    }
    results = directory / "results.json"
    results.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    answers = directory / "answers.jsonl"
    answers.write_text("".join(a.model_dump_json() + "\n" for a in run.answers), encoding="utf-8")
    try:
        plots = write_plots(report, directory)
    except PlotsUnavailable as exc:
        return [results, answers], str(exc)
    return [results, answers, *plots], None
