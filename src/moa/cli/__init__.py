"""The ``moa`` command. Each command group is its own module and imports its heavy
dependencies (llama.cpp, the database, the server) only when it runs, so ``moa --help``
starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from moa import __version__
from moa.cli import blend, compare, keys, mcp, models, serve, usage
from moa.cli.eval import eval_command

app = typer.Typer(
    name="moa",
    help="Mixture-of-Agents: several LLMs answer, a synthesizer blends their answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("blend")(blend.blend_command)
app.command("compare")(compare.compare_command)
app.command("eval")(eval_command)
app.command("models")(models.models_command)
app.command("serve")(serve.serve_command)
app.command("mcp")(mcp.mcp_command)
app.add_typer(keys.app, name="keys")
app.command("usage")(usage.usage_command)


def _version(shown: bool) -> None:
    if shown:
        print(f"moa {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Mixture-of-Agents: several LLMs answer, a synthesizer blends their answers."""


def main() -> None:
    app()
