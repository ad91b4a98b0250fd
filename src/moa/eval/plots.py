"""Two pictures of an eval: accuracy against cost, and accuracy against latency, one point
per system with its 95% interval as an error bar.

matplotlib is the optional extra ``moa[eval]``: without it, ``write_plots`` raises
``PlotsUnavailable`` naming the install, and everything else of eval still works. When no
model has a price (local or unpriced models), the cost axis is calls per task instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moa.eval.report import EvalReport, SystemScore


class PlotsUnavailable(RuntimeError):
    pass


def write_plots(report: EvalReport, directory: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotsUnavailable("plots need matplotlib: pip install 'moa[eval]'") from exc
    priced = any(s.cost_usd > 0 for s in report.systems)
    cost_label = "cost per task (USD)" if priced else "calls per task (no prices configured)"

    def cost(s: SystemScore) -> float:
        return (s.cost_usd if priced else s.calls) / max(1, s.n)

    written = []
    for name, x_of, label in (
        ("accuracy_vs_cost.png", cost, cost_label),
        ("accuracy_vs_latency.png", lambda s: s.latency_ms.p50 / 1000, "p50 latency (s)"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        _points(ax, report, x_of)
        ax.set(xlabel=label, ylabel="accuracy (95% Wilson interval)", ylim=(0, 1))
        ax.set_title(f"moa eval · {report.tasks} tasks", loc="left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _points(ax: Any, report: EvalReport, x_of: Any) -> None:
    for s in report.systems:
        x = x_of(s)
        low, high = s.ci95
        ax.errorbar(
            [x], [s.accuracy], yerr=[[s.accuracy - low], [high - s.accuracy]], fmt="o", capsize=4
        )
        ax.annotate(s.system, (x, s.accuracy), textcoords="offset points", xytext=(6, 4))
