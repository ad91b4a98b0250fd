"""A uvicorn server in a daemon thread of this process: what tests and benchmarks use to
serve moa and the scripted upstream on loopback, for real HTTP without a subprocess.

``start()`` returns once the server listens (no polling) with the port it got;
``stop(first)`` runs ``first`` on the server's loop (a drain, hanging up on stalls) and
waits for the server to end, forcing it after ``within`` seconds; ``kill()`` ends it at
once, as a crash would, dropping open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvicorn

Ready = Callable[[], object]
T = TypeVar("T")


class ListeningServer(uvicorn.Server):
    """A uvicorn server that says when it is listening, so nobody has to poll for it."""

    def __init__(self, config: uvicorn.Config, on_ready: Ready) -> None:
        super().__init__(config)
        self.on_ready = on_ready
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        if self.started:
            self.on_ready()


class ThreadedServer:
    def __init__(self, config: uvicorn.Config, name: str) -> None:
        self._name = name
        self._ready = threading.Event()
        self._server = ListeningServer(config, self._ready.set)
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve())
        finally:
            self._ready.set()  # also when startup failed, so start() does not wait in vain

    def start(self, within: float = 20.0) -> int:
        """Serve; return the port once listening."""
        self._thread.start()
        if not self._ready.wait(within) or not self._server.started:
            self.kill()
            raise RuntimeError(f"{self._name} did not start (see the log above)")
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    def stop(
        self, first: Callable[[Callable[[], None]], object] | None = None, within: float = 5.0
    ) -> None:
        """End the server: ``first(exit)`` runs on its loop and calls ``exit`` when it is
        done (a drain); without it the server exits at once. Forced after ``within`` s."""
        loop = self._server.loop
        if first is not None and self._server.started and loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(first, self._exit)
        else:
            self._exit()
        self._thread.join(timeout=within)
        if self._thread.is_alive():
            self.kill()

    def kill(self) -> None:
        """End at once, open connections and all."""
        self._server.should_exit = True
        self._server.force_exit = True
        self._thread.join(timeout=5)

    def drop_connections(self, within: float = 10.0) -> None:
        """As a crash looks to clients: every open connection is cut at once. The server
        then stops without draining, but still closes what it holds (no leaks in tests)."""

        def cut() -> None:
            for connection in list(self._server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
            self._exit()

        self.call_soon(cut)
        self._thread.join(timeout=within)
        if self._thread.is_alive():
            self.kill()

    def run(self, coroutine: Coroutine[Any, Any, T], within: float) -> T:
        """Run ``coroutine`` on the server's loop (from another thread) and return its result;
        TimeoutError after ``within`` seconds."""
        loop = self._server.loop
        if loop is None:
            coroutine.close()
            raise RuntimeError(f"{self._name} is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(within)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the server's loop (from any thread)."""
        loop = self._server.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)

    def _exit(self) -> None:
        self._server.should_exit = True
