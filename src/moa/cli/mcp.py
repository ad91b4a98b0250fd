"""``moa mcp``: moa's tools for agents over stdio, on the user's own machine."""

from __future__ import annotations

import anyio

from moa import __version__
from moa.cli.common import ConfigOption, settings_or_exit


def mcp_command(config: ConfigOption = None) -> None:
    """Serve the blend, compare and judge tools over MCP's stdio transport (no key, no
    credits: like the CLI). Point an agent's MCP config at `moa mcp`."""
    settings = settings_or_exit(config)

    async def serve() -> None:
        from mcp.server.stdio import stdio_server

        from moa.mcp.server import OwnMachine, build_server
        from moa.runtime import Runtime

        async with Runtime(settings) as runtime, stdio_server() as (read, write):
            server = build_server(OwnMachine(runtime), version=__version__)
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)
