"""Renders blend events in a terminal: live source progress on stderr, then the answer
streaming on stdout. It only renders; the engine decides everything."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from moa.types import (
    ChunkEvent,
    DoneEvent,
    Event,
    LayerEvent,
    RouteEvent,
    SourceEvent,
    SynthesisEvent,
)

_STATUS_STYLE = {"complete": "green", "failed": "red", "skipped": "yellow", "cut": "yellow"}


class ProgressView:
    """A live table of sources while they run; the synthesis streams below it."""

    def __init__(self, models: list[str]) -> None:
        self._console = Console(stderr=True)
        self._rows: dict[tuple[str, int, int | None], tuple[str, str]] = {}
        self._pending = list(models)
        self._started = time.perf_counter()
        self._live: Live | None = None
        self._streaming = False

    def __enter__(self) -> ProgressView:
        if self._console.is_terminal:
            self._live = Live(self._table(), console=self._console, refresh_per_second=12)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_live()
        if self._streaming:
            sys.stdout.write("\n")
            sys.stdout.flush()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)
            self._live = None

    def _table(self) -> Table:
        elapsed = time.perf_counter() - self._started
        table = Table(title=f"moa · {elapsed:0.1f}s", title_justify="left", show_edge=False)
        for column in ("source", "layer", "status", "detail"):
            table.add_column(column)
        for (model, layer, sample), (status, detail) in self._rows.items():
            name = _source_name(model, sample)
            style = _STATUS_STYLE.get(status, "")
            table.add_row(escape(name), str(layer), f"[{style}]{status}[/]", escape(detail))
        return table

    def render(self, event: Event) -> None:
        if isinstance(event, SourceEvent):
            self._source(event)
        elif isinstance(event, RouteEvent) and self._live is None:
            line = f"route {event.source} -> {event.model}: {event.status}"
            self._console.print(line, markup=False)
        elif isinstance(event, LayerEvent) and self._live is None:
            self._console.print(f"layer {event.layer}: {event.successes} answers")
        elif isinstance(event, SynthesisEvent):
            self._stop_live()
            model = escape(event.model)
            self._console.print(f"[dim]synthesizing ({event.strategy}) with {model}…[/]")
        elif isinstance(event, ChunkEvent):
            self._streaming = True
            sys.stdout.write(event.content)
            sys.stdout.flush()
        elif isinstance(event, DoneEvent):
            self._done(event)
        if self._live is not None:
            self._live.update(self._table())

    def _source(self, event: SourceEvent) -> None:
        detail = event.error or f"{event.tokens} tok · {event.latency_ms} ms"
        self._rows[(event.model, event.layer, event.sample)] = (event.status, detail)
        if self._live is None:
            name = _source_name(event.model, event.sample)
            line = f"{name} [layer {event.layer}]: {event.status} · {detail}"
            self._console.print(line, markup=False)

    def _done(self, event: DoneEvent) -> None:
        self._stop_live()
        if self._streaming:
            sys.stdout.write("\n")
            self._streaming = False
        sys.stdout.write(_council_sections(event))
        sys.stdout.flush()
        usage = event.usage
        self._console.print(
            f"[dim]{event.strategy} · {usage.calls} calls · "
            f"{usage.prompt_tokens}+{usage.completion_tokens} tokens · "
            f"${usage.cost_usd:.4f} · {event.latency_ms} ms"
            + (" · early stop" if event.early_stopped else "")
            + (f" · picked {escape(event.best_of_pick)}" if event.best_of_pick else "")
            + _vote_note(event)
            + (f" · degraded: {len(event.degraded_sources)} missing" if event.degraded else "")
            + "[/]"
        )


def _source_name(model: str, sample: int | None) -> str:
    """Samples of one model are numbered from 1, as the user counts them."""
    return model if sample is None else f"{model} #{sample + 1}"


def _council_sections(event: DoneEvent) -> str:
    """What a council found beyond its answer, below the answer on stdout."""
    council = event.council
    if council is None:
        return ""
    sections = [
        ("Agreements", council.agreement_points),
        ("Disagreements", council.disagreement_points),
        ("Follow-up questions", council.follow_up_questions),
    ]
    return "".join(
        f"\n{title}:\n" + "".join(f"- {point}\n" for point in points)
        for title, points in sections
        if points
    )


def _vote_note(event: DoneEvent) -> str:
    if event.vote is None:
        return ""
    counted = sum(event.vote.votes.values())
    winner = event.vote.votes[event.vote.answer]
    return f" · vote {escape(event.vote.answer)!r} {winner}/{counted}"
