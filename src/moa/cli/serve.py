"""``moa serve``: the HTTP API and playground under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from moa.cli.common import ConfigOption, settings_or_exit


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from moa.toml).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default from moa.toml).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Serve the API, the OpenAI-compatible endpoint and the playground."""
    import os

    import uvicorn

    settings = settings_or_exit(config)
    if config:
        os.environ["MOA_CONFIG"] = config  # worker processes rebuild Settings from it
    bind_host = host or settings.server.host
    bind_port = settings.server.port if port is None else port
    print(f"moa serving on http://{bind_host}:{bind_port} (config: {settings.source})")
    uvicorn.run(
        "moa.server.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
