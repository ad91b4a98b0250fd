"""``moa blend`` and ``moa compare``: build a request from flags, render the event stream."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Annotated

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
from moa.config import Settings
from moa.types import (
    STRATEGIES,
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    StrategyName,
)


def _strategy(value: str | None) -> str | None:
    if value is not None and value not in STRATEGIES:
        allowed = ", ".join(STRATEGIES)
        fail("invalid_request", f"strategy: {value!r} is not one of {allowed}", EXIT_USAGE)
    return value


def blend_command(
    prompt: Annotated[str, typer.Argument(help="The question to answer.")],
    model: ModelOption = None,
    synthesizer: Annotated[
        str | None, typer.Option("--synthesizer", "-s", help="Model that combines answers.")
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help=f"One of {', '.join(STRATEGIES)}. Default: consensus, or self_moa for one model.",
            callback=_strategy,
        ),
    ] = None,
    layers: Annotated[int, typer.Option(help="MoA refinement layers (1-3).")] = 1,
    samples: Annotated[
        int | None,
        typer.Option(
            help="Samples of the one model in self_moa or vote (2-8). Default: 4, or "
            "[engine] local_samples when the model is local.",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0-2).")] = 0.7,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on tokens per call.")] = None,
    quorum: Annotated[int | None, typer.Option(help="Synthesize once this many answered.")] = None,
    grace_ms: Annotated[int, typer.Option(help="Wait this long for the rest after quorum.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the answer object as JSON.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Ask several models, then blend their answers into one."""
    settings = settings_or_exit(config)
    request = _request(
        settings,
        prompt=prompt,
        models=model or settings.defaults.models,
        synthesizer=synthesizer,
        strategy=strategy,
        layers=layers,
        samples=samples,
        temperature=temperature,
        max_tokens=max_tokens,
        quorum=quorum,
        grace_ms=grace_ms,
    )
    code = asyncio.run(_run(request, settings, json_output))
    if code:
        raise typer.Exit(code)


def _request(
    settings: Settings, *, prompt: str, models: list[str], strategy: str | None, **fields: object
) -> BlendRequest:
    chosen: StrategyName = (
        strategy
        or settings.defaults.strategy
        or (  # type: ignore[assignment]
            "self_moa" if len(models) == 1 else "consensus"
        )
    )
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        return BlendRequest.model_validate(
            {
                **given,
                "models": models,
                "strategy": chosen,
                "messages": [{"role": "user", "content": prompt}],
            }
        )
    except ValidationError as exc:
        fail("invalid_request", validation_message(exc), EXIT_USAGE)


async def _run(request: BlendRequest, settings: Settings, json_output: bool) -> int:
    from moa.engine import stream_blend
    from moa.runtime import Runtime

    async with Runtime(settings) as runtime:
        if json_output:
            return await _run_json(stream_blend(request, runtime))
        from moa.cli.progress import ProgressView

        with ProgressView([s.model for s in request.sources]) as view:
            async for event in stream_blend(request, runtime):
                if isinstance(event, ErrorEvent):
                    return _failed(event)
                view.render(event)
    return 0


async def _run_json(events: AsyncIterator[Event]) -> int:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, ErrorEvent):
            return _failed(event)
        if isinstance(event, ChunkEvent):
            parts.append(event.content)
        elif isinstance(event, DoneEvent):
            print(event.answer("".join(parts)).model_dump_json(indent=2))
    return 0


def _failed(event: ErrorEvent) -> int:
    print(f"{event.code}: {event.message}", file=sys.stderr)
    return EXIT_USAGE if event.code == "invalid_request" else EXIT_FAILED
