"""``moa serve``: the HTTP API and playground under uvicorn.

The address is announced once the socket is bound (so ``--port 0`` prints the real port,
and a busy port fails before anything claims to be serving). SIGTERM drains each worker
(see ``moa.server.drain``); uvicorn's own shutdown deadline only backs it up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from moa.cli.common import ConfigOption, settings_or_exit

if TYPE_CHECKING:
    import socket

    import uvicorn

#: Seconds uvicorn waits for connections after moa's drain has ended every request.
_BACKSTOP_S = 5


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

    def uvicorn_config(app: Any, **extra: Any) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=bind_host,
            port=bind_port,
            log_level="warning",
            timeout_graceful_shutdown=_BACKSTOP_S,
            **extra,
        )

    if workers == 1:
        from moa.server.app import create_app

        server = _announcing_server(uvicorn_config(create_app(settings)), settings.source)
        server.run()
        if not server.started:
            raise typer.Exit(1)
        return
    from uvicorn.supervisors import Multiprocess

    supervised = uvicorn_config("moa.server.app:create_app", factory=True, workers=workers)
    sock = supervised.bind_socket()
    _announce(sock, settings.source)
    Multiprocess(supervised, sockets=[sock]).run()


def _announce(sock: socket.socket, source: str) -> None:
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"moa serving on http://{bound_host}:{bound_port} (config: {source})", flush=True)


def _announcing_server(config: uvicorn.Config, source: str) -> uvicorn.Server:
    """A uvicorn server that says where it serves once it does (uvicorn is imported here,
    not at the CLI's start)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                _announce(self.servers[0].sockets[0], source)

    return AnnouncingServer(config)
