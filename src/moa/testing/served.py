"""Serve moa's real ASGI app under uvicorn on 127.0.0.1 from a background thread.

Tests and benchmarks talk to it over real HTTP, so SSE timing, disconnects and
cancellation behave exactly as in production (an in-memory ASGI transport would only
return once a stream ended). Several ``ServedApp``s on one database stand in for several
server processes. ``stop()`` drains the app as SIGTERM does in ``moa serve``: requests in
flight get ``[server] shutdown_grace_s`` to finish, then end with ``shutting_down``.
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
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)  # type: ignore[arg-type]
        self._ready.set()

    def exit(self) -> None:
        self.should_exit = True


class ServedApp:
    """``with ServedApp(settings) as served: served.url``: moa serving on a free port."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0) -> None:
        from moa.server.app import create_app
        from moa.server.drain import Drain

        self.settings = settings
        self.host = host
        self.port = port
        app = create_app(settings)
        self._drain: Drain = app.state.drain
        config = uvicorn.Config(
            app,
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
        """Drain (as SIGTERM does), then stop; forced if the server does not end in time."""
        try:
            if self._server.started and self._server.loop is not None:
                self._server.loop.call_soon_threadsafe(self._drain.start, self._server.exit)
            else:
                self._server.exit()
        except RuntimeError:  # the loop has already closed
            self._server.exit()
        self._thread.join(timeout=self.settings.server.shutdown_grace_s + 10)
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
