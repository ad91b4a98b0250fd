"""From answers to the verdict: accuracy with a 95% Wilson interval, cost, calls and
latency per system, as ``--json`` prints it and as a table.

Wilson's interval rather than the normal approximation because eval sets are small and
accuracies near 0 or 1 are common: it never leaves [0, 1] and is honest at n = 20.
Latency percentiles interpolate linearly between closest ranks. A failed answer counts
as wrong; its latency and known calls count too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel
from rich.table import Table

from moa.eval.runner import AnswerRecord, EvalRun

Z95 = 1.959963984540054


class Latency(BaseModel):
    p50: int
    p95: int


class SystemScore(BaseModel):
    system: str
    n: int
    correct: int
    accuracy: float
    ci95: tuple[float, float]
    cost_usd: float
    calls: int
    latency_ms: Latency


class EvalReport(BaseModel):
    """The ``--json`` document."""

    tasks: int
    systems: list[SystemScore]


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def score_system(system: str, answers: Sequence[AnswerRecord]) -> SystemScore:
    n = len(answers)
    correct = sum(a.correct for a in answers)
    latencies = [a.latency_ms for a in answers]
    return SystemScore(
        system=system,
        n=n,
        correct=correct,
        accuracy=round(correct / n, 4) if n else 0.0,
        ci95=wilson(correct, n),
        cost_usd=round(sum(a.usage.cost_usd for a in answers), 6),
        calls=sum(a.usage.calls for a in answers),
        latency_ms=Latency(
            p50=round(quantile(latencies, 0.50)), p95=round(quantile(latencies, 0.95))
        ),
    )


def summarise(run: EvalRun) -> EvalReport:
    return EvalReport(
        tasks=run.task_count,
        systems=[
            score_system(name, [a for a in run.answers if a.system == name]) for name in run.systems
        ],
    )


def errors_by_system(run: EvalRun) -> dict[str, int]:
    return {
        name: sum(a.system == name and a.error is not None for a in run.answers)
        for name in run.systems
    }


def table(report: EvalReport, errors: dict[str, int]) -> Table:
    grid = Table(title=f"moa eval · {report.tasks} tasks", title_justify="left")
    for column in ("system", "accuracy", "95% CI", "correct", "cost $", "calls", "p50 ms"):
        grid.add_column(column, justify="left" if column == "system" else "right")
    grid.add_column("p95 ms", justify="right")
    grid.add_column("errors", justify="right")
    for s in report.systems:
        grid.add_row(
            s.system,
            f"{s.accuracy:.1%}",
            f"{s.ci95[0]:.1%}-{s.ci95[1]:.1%}",
            f"{s.correct}/{s.n}",
            f"{s.cost_usd:.4f}",
            str(s.calls),
            str(s.latency_ms.p50),
            str(s.latency_ms.p95),
            str(errors.get(s.system, 0)),
        )
    return grid
