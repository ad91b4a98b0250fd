"""What every command shares: the --config option and one-line errors with exit codes."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from moa.config import Settings, load_settings
from moa.errors import MoaError
from moa.validation import describe_errors

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", help="moa.toml to use (default: $MOA_CONFIG, else ./moa.toml)."),
]

ModelOption = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="A source model id (provider/model); repeat for more."),
]

EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(code: str, message: str, exit_code: int) -> NoReturn:
    """One line on stderr, then exit: ``code: message``."""
    print(f"{code}: {message}", file=sys.stderr)
    raise typer.Exit(exit_code)


def settings_or_exit(config: str | None) -> Settings:
    """The settings, with the ``OTEL_*`` variables checked too: one line on a bad value."""
    from moa.tracing import check

    try:
        settings = load_settings(config)
        check(settings.env)
    except MoaError as exc:
        fail(exc.code, exc.message, EXIT_USAGE)
    return settings


def validation_message(exc: ValidationError) -> str:
    """The first problem, naming the field: ``layers: Input should be less than or equal to 3``."""
    return describe_errors(exc.errors())
