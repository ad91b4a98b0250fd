"""A scripted, OpenAI-compatible upstream that stands in for real LLM providers.

Why it exists: everything hard in moa (timeouts, retries, partial failures, cancelling
calls nobody needs any more) happens on the wire, so mocking the SDK would hide the very
bugs the tests are for. This module runs a real HTTP server on 127.0.0.1 that speaks the
Chat Completions protocol (JSON and SSE), lets each model be scripted (latency, errors,
stalls, cut streams, bad JSON), injects faults at a seeded rate, and records every request,
including *when* the client hung up, so tests can prove that moa cancels upstream calls.

In-process: ``with ScriptedUpstream() as up: ...``. As its own process (benchmarks):
``python -m moa.testing.upstream --port 9100`` and script it via ``POST /_script``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Self

import pydantic
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = ["Behavior", "FaultPlan", "RecordedRequest", "ScriptedUpstream", "UpstreamApp", "main"]

FAULT_KINDS = ("429", "500", "stall", "cut", "malformed")
FAULT_RETRY_AFTER = 0.05
_TOKEN = re.compile(r"\s*\S+\s*|\s+")
_JSON = b"application/json"
_ERROR_TYPES = {429: "rate_limit_error", 401: "authentication_error", 404: "not_found_error"}
_STRICT = pydantic.ConfigDict(extra="forbid")


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class Behavior:
    """How one model answers; every field is optional so a test states only what it cares about."""

    latency_ms: float = 0.0
    token_delay_ms: float = 0.0
    content: str | None = None
    reply: Callable[[dict[str, Any]], str] | None = None
    status: int | None = None
    error_message: str | None = None
    retry_after: float | None = None
    fail_times: int = 0
    stall: bool = False
    cut_after: int | None = None
    malformed: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status is an error status (400-599), got {self.status}")

    def for_attempt(self, attempt: int) -> Behavior:
        """Resolve ``fail_times`` so the reply code only sees a plain fail-or-succeed behaviour."""
        if not self.fail_times:
            return self
        status = (self.status or 500) if attempt <= self.fail_times else None
        return dataclasses.replace(self, status=status, fail_times=0)

    def with_fault(self, kind: str) -> Behavior:
        """Swap the scripted outcome for an injected fault, keeping the timing and the text."""
        clean = dataclasses.replace(
            self, status=None, fail_times=0, stall=False, cut_after=None, malformed=False
        )
        if kind.isdigit():
            retry = FAULT_RETRY_AFTER if kind in ("429", "503") else None
            message = f"injected fault {kind}"
            return dataclasses.replace(
                clean, status=int(kind), error_message=message, retry_after=retry
            )
        if kind == "stall":
            return dataclasses.replace(clean, stall=True)
        if kind == "cut":
            return dataclasses.replace(clean, cut_after=1)
        return dataclasses.replace(clean, malformed=True)


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class FaultPlan:
    """Each call is replaced by a fault with probability ``rate``; a seed makes runs repeatable."""

    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    models: AbstractSet[str] | None = None  # stored as a frozenset

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if not k.isdigit() and k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be HTTP statuses or {FAULT_KINDS}, got {unknown}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate is a probability, got {self.rate}")


@dataclass
class RecordedRequest:
    """What the upstream received and how the exchange ended, for assertions after the fact."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None
    max_tokens: int | None
    stream: bool
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    fault: str | None = None
    status: int | None = None
    completed: bool = False
    completed_at: float | None = None
    disconnected: bool = False
    disconnected_at: float | None = None

    @property
    def authorization(self) -> str | None:
        """The Authorization header, so tests can check which key a provider was called with."""
        return self.headers.get("authorization")


class _State:
    """Scripts, fault dice and records, shared by the server thread and the test thread."""

    def __init__(self, default: Behavior) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._initial_default = default
        self.reset()

    def reset(self) -> None:
        with self._cond:
            self.default = self._initial_default
            self.scripts: dict[str, Behavior] = {}
            self._attempts: Counter[str] = Counter()
            self._faults: FaultPlan | None = None
            self._rng = random.Random(0)
            self._records: list[RecordedRequest] = []
            self._cond.notify_all()

    def script(self, model: str, behavior: Behavior) -> None:
        with self._cond:
            self.scripts[model] = behavior
            self._attempts[model] = 0

    def set_default(self, behavior: Behavior) -> None:
        with self._cond:
            self.default = behavior

    def set_faults(self, plan: FaultPlan | None) -> None:
        with self._cond:
            self._faults = plan
            self._rng = random.Random(plan.seed if plan else 0)

    def admit(
        self, payload: dict[str, Any], headers: dict[str, str]
    ) -> tuple[RecordedRequest, Behavior]:
        """Record a request and decide, atomically, what this particular call will get."""
        model = str(payload["model"])
        with self._cond:
            self._attempts[model] += 1
            behavior = self.scripts.get(model, self.default).for_attempt(self._attempts[model])
            fault = self._draw_fault(model)
            if fault is not None:
                behavior = behavior.with_fault(fault)
            record = _record(payload, headers, fault, behavior)
            self._records.append(record)
            self._cond.notify_all()
        return record, behavior

    def _draw_fault(self, model: str) -> str | None:
        plan = self._faults
        if plan is None or (plan.models is not None and model not in plan.models):
            return None
        hit = self._rng.random() < plan.rate
        kind = self._rng.choice(plan.kinds)  # drawn on every call so the sequence is stable
        return kind if hit else None

    def settle(self, record: RecordedRequest, *, completed: bool, disconnected: bool) -> None:
        with self._cond:
            now = time.monotonic()
            if completed:
                record.completed, record.completed_at = True, now
            if disconnected:
                record.disconnected, record.disconnected_at = True, now
            self._cond.notify_all()

    def models(self) -> list[str]:
        with self._cond:
            return sorted(self.scripts)

    def records(self, model: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [dataclasses.replace(r) for r in self._records if model in (None, r.model)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


def _record(
    payload: dict[str, Any], headers: dict[str, str], fault: str | None, behavior: Behavior
) -> RecordedRequest:
    return RecordedRequest(
        model=str(payload["model"]),
        messages=list(payload.get("messages") or []),
        temperature=payload.get("temperature"),
        max_tokens=payload.get("max_tokens", payload.get("max_completion_tokens")),
        stream=bool(payload.get("stream")),
        headers=headers,
        body=payload,
        received_at=time.monotonic(),
        fault=fault,
        status=None if behavior.stall else behavior.status or 200,
    )


def _text_of(content: Any) -> str:
    """Message content as plain text, for both strings and lists of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def default_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """A deterministic answer that names the model, so tests can tell the sources apart."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    words = _text_of(users[-1].get("content")).split()[:12] if users else []
    return f"[{model}] answer to: {' '.join(words)}"


def tokens_of(text: str) -> list[str]:
    """Split text into streamed tokens: one word with its surrounding whitespace each."""
    return _TOKEN.findall(text)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": str(status)}}


async def _sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def _send_json(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    length = str(len(body)).encode()
    headers = [(b"content-type", _JSON), (b"content-length", length), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


class _Exchange:
    """Writes one reply onto the wire; knows how to cut the connection mid-reply."""

    _ids = itertools.count(1)

    def __init__(self, state: _State, record: RecordedRequest, behavior: Behavior, send: Send):
        self.state, self.record, self.behavior, self.send = state, record, behavior, send
        self.id = f"chatcmpl-{next(self._ids)}"
        self.created = int(time.time())
        self.closed = False  # we cut the reply and closed the socket ourselves

    async def run(self) -> None:
        b = self.behavior
        await _sleep_ms(b.latency_ms)
        if b.status is not None:
            await self._send_error(b.status, b.error_message or f"scripted error {b.status}")
        elif b.stall:
            await asyncio.get_running_loop().create_future()  # only the client's hang-up ends it
        elif b.malformed:
            await self._send_malformed(b'{"id": "chatcmpl-broken", "choices": [')
        elif self.record.stream:
            await self._stream(tokens_of(self._reply_text()))
        else:
            await self._send_whole(_dumps(self._completion(self._reply_text())))

    def abort(self) -> None:
        """Close the socket without finishing the response, as a crashing provider would.

        ASGI has no abort, so reach uvicorn's transport through its bound ``send``. If that
        is not possible, returning early still makes the server drop the connection.
        """
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if isinstance(transport, asyncio.BaseTransport):
            transport.close()
            self.closed = True

    def _reply_text(self) -> str:
        b = self.behavior
        if b.reply is not None:
            return b.reply(self.record.body)
        if b.content is not None:
            return b.content
        return default_reply(self.record.model, self.record.messages)

    def _usage(self, text: str) -> dict[str, Any]:
        prompt = sum(len(_text_of(m.get("content")).split()) for m in self.record.messages)
        completion = len(text.split())
        total = prompt + completion
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
        return {"usage": usage}

    def _envelope(self, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        head = {"id": self.id, "object": kind, "created": self.created}
        return head | {"model": self.record.model, "choices": choices}

    def _completion(self, text: str) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return self._envelope("chat.completion", [choice]) | self._usage(text)

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._event(self._envelope("chat.completion.chunk", [choice]))

    def _event(self, value: dict[str, Any]) -> bytes:
        return b"data: " + _dumps(value) + b"\n\n"

    async def _start(self, status: int, content_type: bytes, *extra: tuple[bytes, bytes]) -> None:
        headers = [(b"content-type", content_type), *extra]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, body: bytes, *, more: bool = False) -> None:
        if not more:  # record first: uvicorn writes synchronously, the client may look at once
            self.state.settle(self.record, completed=True, disconnected=False)
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def _send_whole(
        self, body: bytes, status: int = 200, *extra: tuple[bytes, bytes]
    ) -> None:
        await self._start(status, _JSON, (b"content-length", str(len(body)).encode()), *extra)
        if self.behavior.cut_after is None or status != 200:
            await self._body(body)
            return
        await self._body(body[: len(body) // 2], more=True)
        self.abort()

    async def _send_malformed(self, broken: bytes) -> None:
        """Broken JSON where the client expects it: the body, or an SSE event's data."""
        if not self.record.stream:
            await self._send_whole(broken)
            return
        await self._start(200, b"text/event-stream")
        await self._body(b"data: " + broken + b"\n\ndata: [DONE]\n\n")

    async def _send_error(self, status: int, message: str) -> None:
        retry = self.behavior.retry_after
        extra = [] if retry is None else [(b"retry-after", f"{retry:g}".encode())]
        await self._send_whole(_dumps(_error_body(status, message)), status, *extra)

    async def _stream(self, tokens: list[str]) -> None:
        b = self.behavior
        await self._start(200, b"text/event-stream", (b"cache-control", b"no-cache"))
        await self._body(self._chunk({"role": "assistant", "content": ""}), more=True)
        limit = len(tokens) if b.cut_after is None else min(b.cut_after, len(tokens))
        for index, token in enumerate(tokens[:limit]):
            if index:
                await _sleep_ms(b.token_delay_ms)
            await self._body(self._chunk({"content": token}), more=True)
        if b.cut_after is not None:
            self.abort()
            return
        await self._body(self._chunk({}, finish="stop"), more=True)
        options = self.record.body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            usage = self._envelope("chat.completion.chunk", []) | self._usage("".join(tokens))
            await self._body(self._event(usage), more=True)
        await self._body(b"data: [DONE]\n\n")


class UpstreamApp:
    """The ASGI app. Completions take a hand-written fast path; control routes use Starlette.

    The fast path keeps benchmarks cheap and hands the handler uvicorn's own ``send``,
    which is what lets a scripted cut close the socket for real.
    """

    def __init__(self, default: Behavior | None = None) -> None:
        self.state = _State(default or Behavior())
        self._live: set[_Exchange] = set()
        self._router = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/_script", self._script, methods=["POST"]),
                Route("/_reset", self._reset, methods=["POST"]),
                Route("/_requests", self._requests, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/chat/completions":
            await self._completions(scope, receive, send)
        else:
            await self._router(scope, receive, send)

    def close_connections(self) -> None:
        """Hang up on every open exchange (stalls included) so a shutdown never waits on them."""
        for exchange in list(self._live):
            exchange.abort()

    def apply_script(self, data: Any) -> None:
        """Apply a ``/_script`` body: ``model`` plus fields, ``default`` and/or ``faults``."""
        if not isinstance(data, dict):
            raise ValueError("script body must be a JSON object")
        data = dict(data)
        if "faults" in data:
            faults = data.pop("faults")
            plan = (
                None if faults is None else pydantic.TypeAdapter(FaultPlan).validate_python(faults)
            )
            self.state.set_faults(plan)
        if "default" in data:
            self.state.set_default(_parse_behavior(data.pop("default")))
        if "model" in data:
            model = str(data.pop("model"))
            self.state.script(model, _parse_behavior(data))
        elif data:
            raise ValueError(f"unknown script keys: {sorted(data)}")

    async def _completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            payload = json.loads(await _read_body(receive))
            if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
                raise ValueError("missing model")
        except ValueError as exc:
            await _send_json(send, 400, _dumps(_error_body(400, f"bad request: {exc}")))
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        exchange = _Exchange(self.state, *self.state.admit(payload, headers), send)
        await self._supervise(exchange, receive)

    async def _supervise(self, exchange: _Exchange, receive: Receive) -> None:
        """Write the reply while listening for a hang-up, so a disconnect is noticed at once."""
        reply = asyncio.ensure_future(exchange.run())
        hangup = asyncio.ensure_future(receive())
        self._live.add(exchange)
        try:
            await asyncio.wait((reply, hangup), return_when=asyncio.FIRST_COMPLETED)
            if not reply.done():
                self.state.settle(exchange.record, completed=False, disconnected=True)
                return
            reply.result()
            if exchange.closed:  # let uvicorn see our own hang-up, or it logs an incomplete reply
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hangup, 1.0)
        finally:
            self._live.discard(exchange)
            reply.cancel()
            hangup.cancel()
            await asyncio.gather(reply, hangup, return_exceptions=True)

    async def _models(self, request: Request) -> JSONResponse:
        names = self.state.models()
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in names]
        return JSONResponse({"object": "list", "data": data})

    async def _script(self, request: Request) -> JSONResponse:
        try:
            self.apply_script(await request.json())
        except ValueError as exc:  # pydantic's ValidationError and JSON errors are ValueErrors
            return JSONResponse(_error_body(400, str(exc)), status_code=400)
        return JSONResponse({"ok": True})

    async def _reset(self, request: Request) -> JSONResponse:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def _requests(self, request: Request) -> JSONResponse:
        return JSONResponse([dataclasses.asdict(r) for r in self.state.records()])


def _parse_behavior(data: Any) -> Behavior:
    if isinstance(data, dict) and "reply" in data:
        raise ValueError("reply callables can only be scripted in-process")
    return pydantic.TypeAdapter(Behavior).validate_python(data)


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening, so nobody has to poll for it."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], object]) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.on_ready()


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
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """The server root, where the ``/_script``-style control routes live."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``."""
        return f"{self.url}/v1"

    def start(self) -> Self:
        """Serve from a daemon thread; return once listening, with ``port`` set if it was 0.

        uvicorn binds the socket itself: asyncio only sets TCP_NODELAY on sockets it created
        with ``IPPROTO_TCP``, and a pre-bound one costs ~40 ms per keep-alive response.
        """
        ready = threading.Event()
        # log_config=None: do not rewire the host process's logging (e.g. pytest's).
        config = _config(self.app, self.host, self.port, log_config=None)
        self._server = server = _Server(config, ready.set)
        self._thread = threading.Thread(target=self._run, args=(server, ready), daemon=True)
        self._thread.start()
        if not ready.wait(10) or not server.started:
            self.stop()
            raise RuntimeError(f"scripted upstream did not start on {self.url}")
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def _run(self, server: _Server, ready: threading.Event) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve()

        try:
            asyncio.run(serve())
        finally:
            ready.set()  # also when startup failed, so start() does not wait in vain

    def stop(self) -> None:
        """Stop promptly: hang up on open exchanges first, so stalls cannot hold shutdown."""
        server, thread, loop = self._server, self._thread, self._loop
        self._server = self._thread = self._loop = None
        if server is None or thread is None:
            return
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(self.app.close_connections)
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)

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
    parser = argparse.ArgumentParser(prog="python -m moa.testing.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="default latency")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="default token delay")
    args = parser.parse_args(argv)
    default = Behavior(latency_ms=args.latency_ms, token_delay_ms=args.token_delay_ms)
    app = UpstreamApp(default)
    url = f"http://{args.host}:{args.port}/v1"
    _Server(_config(app, args.host, args.port), lambda: print(url, flush=True)).run()


if __name__ == "__main__":
    main()
