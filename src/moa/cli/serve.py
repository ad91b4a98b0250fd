"""``moa serve``: the HTTP API and playground under uvicorn.

uvicorn runs on uvloop and httptools (dependencies of moa on the platforms they support;
uvicorn falls back to asyncio and h11 elsewhere): they cut the server's CPU per request
(bench/README has the before and after). Once the app has started, everything it built
(modules, routes, schemas, clients) is moved out of the garbage collector's sight with
``gc.freeze()``, so a full collection under load walks only what requests allocate: with
the whole start-up heap in view, each full collection stopped the server for 200-400 ms.
What the first requests build lazily is frozen after the first full collection they cause.
"""

from __future__ import annotations

import copy
import gc
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from moa.cli.common import EXIT_FAILED, ConfigOption, fail, settings_or_exit

if TYPE_CHECKING:
    from fastapi import FastAPI

LogFormat = Literal["text", "json"]


def serve_command(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default from moa.toml).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default from moa.toml).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_format: Annotated[
        str, typer.Option("--log-format", help="Request log lines as text or json.")
    ] = "text",
    config: ConfigOption = None,
) -> None:
    """Serve the API, the OpenAI-compatible endpoint and the playground."""
    import os

    import uvicorn

    if log_format not in ("text", "json"):
        fail("invalid_request", f"--log-format: {log_format!r} is not one of text, json", 2)
    settings = settings_or_exit(config)
    if config:
        os.environ["MOA_CONFIG"] = config  # worker processes rebuild Settings from it
    bind_host = host or settings.server.host
    bind_port = settings.server.port if port is None else port
    listening = _listen(bind_host, bind_port)  # fail here, before saying we serve
    uvicorn_config = uvicorn.Config(
        "moa.cli.serve:served_app",
        factory=True,
        loop="auto",  # uvloop when importable
        http="auto",  # httptools when importable
        workers=workers,
        log_config=log_config(log_format),
        access_log=False,  # moa logs its own line per request, with the request id
        proxy_headers=False,  # X-Forwarded-For is moa's to judge ([server] trusted_proxies)
        timeout_graceful_shutdown=5,
    )
    shown_port = listening.getsockname()[1]
    serving = f"moa serving on http://{bind_host}:{shown_port} (config: {settings.source})"
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        print(serving, flush=True)  # each worker loads its local models before it accepts
        Multiprocess(uvicorn_config, sockets=[listening]).run()
    else:
        _ANNOUNCE.append(serving)  # said by the app once started, local models loaded
        uvicorn.Server(uvicorn_config).run(sockets=[listening])


# The line ``moa serve`` prints once the app has started (single process).
_ANNOUNCE: list[str] = []


def served_app() -> FastAPI:
    """The app as ``moa serve`` runs it (built in each worker process): ``create_app()``
    whose start-up loads the local models (a model that loads on its first call made that
    call 19 s slower), then freezes the heap it built, then says it serves."""
    from moa.server.app import create_app

    app = create_app()
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with started(app) as state:
            await _load_local_models(app)
            gc.collect()
            gc.freeze()  # what start-up built lives as long as the process
            warmed = WarmedUp()
            gc.callbacks.append(warmed)
            for line in _ANNOUNCE:
                print(line, flush=True)
            try:
                yield state
            finally:
                gc.callbacks.remove(warmed)

    app.router.lifespan_context = lifespan
    return app


async def _load_local_models(app: FastAPI) -> None:
    """Load the embedded model's contexts now; if it cannot load (llama-cpp-python or the
    GGUF missing), say why and serve the rest: its calls will fail with the same reason."""
    from moa.errors import ConfigError

    try:
        await app.state.moa.runtime.load_local_models()
    except ConfigError as exc:
        logging.getLogger("moa.serve").warning("the local model did not load: %s", exc)


class WarmedUp:
    """Freezes the heap once more, after the first full collection that requests caused.

    Much is built only when the first requests need it (provider clients and the modules
    they import, compiled SQL, schema caches); it lives as long as the process, and until
    frozen every full collection walks it again (77 ms pauses at 32 concurrent chats on the
    bench). What survived the first full collection under load is that, plus the state of
    the requests in flight at that moment: freezing those keeps them from the cyclic
    collector for good, a one-time cost bounded by one moment's in-flight requests."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.done and phase == "stop" and info.get("generation") == 2:
            self.done = True
            gc.freeze()


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket. ``IPPROTO_TCP`` explicitly: asyncio sets TCP_NODELAY only
    on sockets whose protocol says TCP, and without it keep-alive replies wait ~40 ms."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail("cannot_listen", f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED)
    sock.set_inheritable(True)
    return sock


def log_config(log_format: LogFormat | str) -> dict[str, Any]:
    """uvicorn's logging config plus moa's loggers at INFO on stderr, applied in every
    worker process: one line per request (``moa.requests``), warnings from the rest."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["moa"] = (
        {"()": "moa.server.request_scope.JsonLines"}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    config["handlers"]["moa"] = {
        "class": "logging.StreamHandler",
        "formatter": "moa",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["moa"] = {"handlers": ["moa"], "level": "INFO", "propagate": False}
    config["loggers"]["uvicorn"]["level"] = "WARNING"
    return config
