"""``moa compare``: models answer side by side; the summary names fastest and longest."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from moa.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    ConfigOption,
    ModelOption,
    fail,
    settings_or_exit,
    validation_message,
)
from moa.config import Settings
from moa.errors import MoaError
from moa.types import CompareAnswer, CompareRequest, DeltaEvent, Message, SourceEvent


def _table(models: list[str], texts: list[str], status: dict[int, str]) -> Table:
    """One column per model named, by position: a model named twice is two columns."""
    table = Table(expand=True, show_lines=False)
    for index, model in enumerate(models):
        table.add_column(f"{model} · {status.get(index, 'running')}", ratio=1)
    table.add_row(*(text[-1200:] for text in texts))
    return table


async def run_compare(
    settings: Settings,
    prompt: str,
    models: list[str],
    temperature: float,
    max_tokens: int | None,
    json_output: bool,
) -> int:
    from moa.modes.compare import run_compare as compare
    from moa.runtime import Runtime

    try:
        request = CompareRequest(
            models=models,
            messages=[Message(role="user", content=prompt)],
            temperature=temperature,
            max_tokens=max_tokens,
        )
    except ValidationError as exc:
        fail("invalid_request", validation_message(exc), EXIT_USAGE)
    texts = ["" for _ in models]
    status: dict[int, str] = {}
    console = Console(stderr=True)
    async with Runtime(settings) as runtime:
        try:
            with Live(
                _table(models, texts, status),
                console=console,
                transient=False,
                auto_refresh=not json_output,
            ) as live:
                async for event in compare(request, runtime):
                    if isinstance(event, DeltaEvent) and event.index is not None:
                        texts[event.index] += event.content
                    elif isinstance(event, SourceEvent) and event.index is not None:
                        status[event.index] = event.error or f"{event.latency_ms} ms"
                    elif isinstance(event, CompareAnswer):
                        return _finish(event, json_output)
                    if not json_output:
                        live.update(_table(models, texts, status))
        except MoaError as exc:
            print(f"{exc.code}: {exc.message}", file=sys.stderr)
            return EXIT_USAGE if exc.code == "invalid_request" else EXIT_FAILED
    return EXIT_FAILED


def _finish(answer: CompareAnswer, json_output: bool) -> int:
    if json_output:
        print(answer.model_dump_json(indent=2))
        return 0
    for result in answer.results:
        print(f"## {result.model} ({result.latency_ms} ms)\n{result.content or result.error}\n")
    print(f"fastest: {answer.fastest} · longest: {answer.longest}")
    return 0


def compare_command(
    prompt: Annotated[str, typer.Argument(help="The question every model answers.")],
    model: ModelOption = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0-2).")] = 0.7,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on tokens per call.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Ask 2-9 models the same question and show their answers side by side."""
    settings = settings_or_exit(config)
    code = asyncio.run(
        run_compare(settings, prompt, model or [], temperature, max_tokens, json_output)
    )
    if code:
        raise typer.Exit(code)
