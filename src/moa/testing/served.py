"""Serve moa's real ASGI app under uvicorn on 127.0.0.1 from a background thread.

Tests and benchmarks talk to it over real HTTP, so SSE timing, disconnects and
cancellation behave exactly as in production (an in-memory ASGI transport would only
return once a stream ended). Several ``ServedApp``s on one database stand in for several
server processes.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

import uvicorn

from moa.config import Settings


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        self._ready.set()


class ServedApp:
    """``with ServedApp(settings) as served: served.url``: moa serving on a free port."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        from moa.server.app import create_app

        self.settings = settings
        self.host = host
        self.port = port
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            log_config=None,
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self._ready = threading.Event()
        self._server = _Server(config, self._ready)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        finally:
            self._ready.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(20) or not self._server.started:
            self.stop()
            raise RuntimeError("moa did not start (see the log above)")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
