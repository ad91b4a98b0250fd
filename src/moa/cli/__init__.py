"""The ``moa`` command. Each command group is its own module and imports its heavy
dependencies (llama.cpp, the database, the server) only when it runs, so ``moa --help``
starts fast."""

from __future__ import annotations

import typer

from moa.cli import blend, keys, mcp, models, serve

app = typer.Typer(
    name="moa",
    help="Mixture-of-Agents: several LLMs answer, a synthesizer blends their answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("blend")(blend.blend_command)
app.command("compare")(blend.compare_command)
app.command("models")(models.models_command)
app.command("serve")(serve.serve_command)
app.command("mcp")(mcp.mcp_command)
app.add_typer(keys.app, name="keys")


def main() -> None:
    app()
