"""Live progress of ``moa eval`` on stderr: one bar per system, with its accuracy so far.
Shown only on a terminal; it renders, the runner decides."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from moa.eval.runner import AnswerRecord


class EvalProgress:
    def __init__(self, systems: list[str], tasks: int) -> None:
        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[accuracy]}"),
            console=console,
            disable=not console.is_terminal,
        )
        self._bars: dict[str, TaskID] = {
            s: self._progress.add_task(escape(s), total=tasks, accuracy="") for s in systems
        }
        self._scores: dict[str, list[bool]] = {s: [] for s in systems}

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def add(self, answer: AnswerRecord) -> None:
        scores = self._scores[answer.system]
        scores.append(answer.correct)
        accuracy = f"{sum(scores) / len(scores):.0%} correct"
        self._progress.update(self._bars[answer.system], advance=1, accuracy=accuracy)
