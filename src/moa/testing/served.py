"""Serve moa's real ASGI app under uvicorn on 127.0.0.1 from a background thread.

Tests and benchmarks talk to it over real HTTP, so SSE timing, disconnects and
cancellation behave exactly as in production (an in-memory ASGI transport would only
return once a stream ended). Several ``ServedApp``s on one database stand in for several
server processes. ``stop()`` drains the app as SIGTERM does in ``moa serve``: requests in
flight get ``[server] shutdown_grace_s`` to finish, then end with ``shutting_down``.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import uvicorn

from moa.config import Settings
from moa.testing.threaded import ThreadedServer


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
        self._server = ThreadedServer(config, "moa")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        """Drain (as SIGTERM does), then stop; forced if the server does not end in time."""
        self._server.stop(self._drain.start, within=self.settings.server.shutdown_grace_s + 10)

    def wait_idle(self, within: float = 60.0) -> None:
        """Block until no request is in flight: a server several tests share lets each
        test's hung-up or cancelled requests end before the next test starts."""
        self._server.run(self._drain.idle(), within)

    def kill(self) -> None:
        """Stop as a crash looks to clients: open connections are cut, nothing drains."""
        self._server.drop_connections()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
