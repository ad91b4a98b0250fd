"""Serving the scripted upstream: in-process on a free port, or as its own process.

In-process: ``with ScriptedUpstream() as up: ...``. As its own process (benchmarks):
``python -m moa.testing.upstream --port 9100`` and script it via ``POST /_script``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Self

import uvicorn

from moa.testing.threaded import ListeningServer, ThreadedServer
from moa.testing.upstream.app import UpstreamApp
from moa.testing.upstream.script import Behavior, FaultPlan, RecordedRequest


def _config(app: UpstreamApp, host: str, port: int, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "http": "h11",
        "interface": "asgi3",
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": 1.0,
    }
    return uvicorn.Config(app, **(options | overrides))


class ScriptedUpstream:
    """A scripted upstream served by uvicorn on a free port in a daemon thread.

    Use it as a (async) context manager; script models, then assert on ``requests``.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, default: Behavior | None = None):
        self.app = UpstreamApp(default)
        self.host, self.port = host, port
        self._server: ThreadedServer | None = None

    @property
    def url(self) -> str:
        """The server root, where the ``/_script``-style control routes live."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What an Anthropic client takes as ``base_url`` (it adds ``/v1/messages``)."""
        return self.url

    @property
    def gemini_base_url(self) -> str:
        """What moa's Gemini provider takes as ``base_url`` (``.../v1beta``)."""
        return f"{self.url}/v1beta"

    def start(self) -> Self:
        """Serve from a daemon thread; return once listening, with ``port`` set if it was 0.

        uvicorn binds the socket itself: asyncio only sets TCP_NODELAY on sockets it created
        with ``IPPROTO_TCP``, and a pre-bound one costs ~40 ms per keep-alive response.
        """
        # log_config=None: do not rewire the host process's logging (e.g. pytest's).
        config = _config(self.app, self.host, self.port, log_config=None)
        self._server = ThreadedServer(config, "scripted upstream")
        self.port = self._server.start(within=10)
        return self

    def stop(self) -> None:
        """Stop promptly: hang up on open exchanges first, so stalls cannot hold shutdown."""
        server, self._server = self._server, None
        if server is not None:
            server.call_soon(self.app.close_connections)
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def script(self, model: str, behavior: Behavior | None = None, **fields: Any) -> None:
        """Set how ``model`` answers from now on (replacing earlier scripts, restarting counts)."""
        self.app.state.script(model, behavior or Behavior(**fields))

    def set_default(self, behavior: Behavior | None = None, **fields: Any) -> None:
        """Set how unscripted models answer."""
        self.app.state.set_default(behavior or Behavior(**fields))

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Inject faults by rate; the dice restart from the plan's seed. ``None`` turns them off."""
        self.app.state.set_faults(plan)

    def reset(self) -> None:
        """Forget scripts, faults and records; the default returns to the constructor's."""
        self.app.state.reset()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        return self.app.state.records()

    def calls(self, model: str) -> list[RecordedRequest]:
        """A snapshot of the requests for one model."""
        return self.app.state.records(model)

    def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Block until ``predicate()`` holds; it is re-checked whenever a record changes."""
        if not self.app.state.wait_for(predicate, within):
            raise TimeoutError(f"upstream condition not met within {within} s")

    async def wait_for_async(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """``wait_for`` without blocking the caller's event loop."""
        await asyncio.to_thread(self.wait_for, predicate, within)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the upstream as its own process, e.g. for benchmarks that script it over HTTP."""
    parser = argparse.ArgumentParser(
        prog="python -m moa.testing.upstream", description="A scripted LLM upstream."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="default latency")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="default token delay")
    args = parser.parse_args(argv)
    default = Behavior(latency_ms=args.latency_ms, token_delay_ms=args.token_delay_ms)
    app = UpstreamApp(default)
    url = f"http://{args.host}:{args.port}/v1"
    ListeningServer(_config(app, args.host, args.port), lambda: print(url, flush=True)).run()
