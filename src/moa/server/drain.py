"""Graceful shutdown: SIGTERM drains the server instead of cutting its requests mid-write.

At SIGTERM the server keeps listening but answers every new request 503 `shutting_down`
(so load balancers move on), and lets the requests in flight finish for up to
``[server] shutdown_grace_s``. Those still running then end themselves: a stream with an
``error`` event ``shutting_down`` and ``[DONE]``, a JSON request with 503 ``shutting_down``,
each settled like a client that left (the finished share of its planned calls). Only then
is the ASGI server told to exit, so its own shutdown deadline (which cancels tasks
mid-write) is a backstop, not the plan.

The signal reaches the drain through the handler :meth:`Drain.on_signals` installs at
startup in front of the server's own (uvicorn's): that works in every worker process of
``moa serve --workers N``, each running its own lifespan. A server run off the main
thread, where no signal arrives (tests' ``ServedApp``), calls :meth:`Drain.start` itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from moa.server.errors import error_response

T = TypeVar("T")
log = logging.getLogger("moa.server")

SHUTTING_DOWN = "shutting_down"
MESSAGE = "the server is shutting down; retry the request"
#: After the grace, how long the requests it ended get to settle and send their last bytes.
SETTLE_S = 5.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_END = object()


class ShuttingDown(Exception):
    """The drain ended this request's work; the request settles and says so."""


class _Cut:
    """Where one request waits for its next event, so the drain can interrupt the wait."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting: asyncio.Timeout | None = None

    def now(self) -> None:
        if self.waiting is not None and not self.waiting.expired():
            self.waiting.reschedule(0)  # in the past: expires on the next loop iteration


class Drain:
    """One server's shutdown: which requests are in flight, and ending them in time."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self._cutting = False
        self._in_flight = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._cuts: set[_Cut] = set()
        self._task: asyncio.Task[None] | None = None

    @contextmanager
    def request(self) -> Iterator[None]:
        """Count one HTTP request as in flight while inside."""
        self._in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()

    async def idle(self) -> None:
        """Return once no request is in flight (at once if none is)."""
        await self._quiet.wait()

    def start(self, then: Callable[[], object]) -> None:
        """Begin draining (once; later calls do nothing) and call ``then`` when every
        request has ended. Runs on the server's event loop."""
        if self._task is None:
            self.draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain(then))

    async def _drain(self, then: Callable[[], object]) -> None:
        log.info("draining %d request(s) for up to %.1f s", self._in_flight, self.grace_s)
        if not await self._quiet_within(self.grace_s):
            log.warning("ending %d request(s) still running: shutting down", self._in_flight)
            self._cutting = True
            for cut in list(self._cuts):
                cut.now()
            await self._quiet_within(SETTLE_S)
        then()

    async def _quiet_within(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._quiet.wait()
        except TimeoutError:
            return False
        return True

    async def guarded(self, events: AsyncIterator[T]) -> AsyncGenerator[T, None]:
        """``events`` as they come, until the drain ends the request: then ShuttingDown.
        Either way ``events`` is closed at the end, which cancels the work behind them."""
        cut = _Cut()
        self._cuts.add(cut)
        try:
            while not self._cutting:
                event = await self._next(events, cut)
                if event is _END:
                    return
                yield event
            raise ShuttingDown
        finally:
            self._cuts.discard(cut)
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    @staticmethod
    async def _next(events: AsyncIterator[T], cut: _Cut) -> Any:
        try:
            async with asyncio.timeout(None) as cut.waiting:
                return await anext(events, _END)
        except TimeoutError:
            if cut.waiting is not None and cut.waiting.expired():
                raise ShuttingDown from None
            raise
        finally:
            cut.waiting = None

    async def aclose(self) -> None:
        """Stop a drain still running (the server is going away regardless)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """While inside: SIGTERM and SIGINT start the drain, and the handler they had
        before (the server's) runs once it is over; a second signal goes straight to that
        handler. Only on the main thread, the one signals are delivered to."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _SIGNALS}

        def handle(sig: int, frame: FrameType | None) -> None:
            pass_on = functools.partial(_pass_on, previous[sig], sig)
            if self.draining:
                pass_on()
            else:
                loop.call_soon_threadsafe(self.start, pass_on)

        for sig in _SIGNALS:
            signal.signal(sig, handle)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _pass_on(handler: Any, sig: int) -> None:
    """Deliver ``sig`` to the handler installed before ours."""
    if callable(handler):
        handler(sig, None)
    elif handler == signal.SIG_DFL:
        signal.signal(sig, signal.SIG_DFL)
        signal.raise_signal(sig)


#: Liveness stays 200 while draining: the process is alive and finishing its requests, and
#: a failed liveness probe would have it killed mid-drain. Readiness says 503.
_ALWAYS_ANSWERED = frozenset({"/healthz"})


class Draining:
    """ASGI middleware: counts HTTP requests in flight and, once the drain has begun,
    answers new ones (but liveness) 503 ``shutting_down``, closing the connection."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _ALWAYS_ANSWERED:
            await self.app(scope, receive, send)
        elif self.drain.draining:
            refusal = error_response(503, SHUTTING_DOWN, MESSAGE, {"Connection": "close"})
            await refusal(scope, receive, send)
        else:
            with self.drain.request():
                await self.app(scope, receive, send)
