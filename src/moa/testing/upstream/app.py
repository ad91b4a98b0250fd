"""The scripted upstream's ASGI app: three protocols' endpoints and the control routes.

Protocol endpoints take a hand-written fast path: it keeps benchmarks cheap and hands the
exchange uvicorn's own ``send``, which is what lets a scripted cut close the socket for
real. Control routes (``/_script``, ``/_reset``, ``/_requests``, ``/v1/models``) use Starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import Any
from urllib.parse import parse_qs

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from moa.testing.upstream.anthropic_wire import AnthropicWire
from moa.testing.upstream.exchange import Exchange, send_json
from moa.testing.upstream.gemini_wire import GeminiWire
from moa.testing.upstream.openai_wire import OpenAIWire
from moa.testing.upstream.script import Behavior, FaultPlan, State
from moa.testing.upstream.wire import Wire, dumps

OPENAI, ANTHROPIC, GEMINI = OpenAIWire(), AnthropicWire(), GeminiWire()
GEMINI_MODELS = "/v1beta/models/"


class UpstreamApp:
    """The ASGI app; ``state`` holds the scripts and the records."""

    def __init__(self, default: Behavior | None = None) -> None:
        self.state = State(default or Behavior())
        self._live: set[Exchange] = set()
        self._router = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/_script", self._script, methods=["POST"]),
                Route("/_reset", self._reset, methods=["POST"]),
                Route("/_requests", self._requests, methods=["GET"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self._router(scope, receive, send)
            return
        wire, target = endpoint
        await self._answer(wire, target, scope, receive, send)

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

    async def _answer(
        self, wire: Wire, target: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            payload = json.loads(await _read_body(receive))
            if not isinstance(payload, dict):
                raise ValueError("the body is not a JSON object")
            record = wire.parse(payload, headers, target)
        except ValueError as exc:
            await send_json(send, 400, dumps(wire.error(400, f"bad request: {exc}", None)))
            return
        client = scope.get("client")
        record.connection = f"{client[0]}:{client[1]}" if client else None
        behavior = self.state.admit(record)
        query = scope.get("query_string", b"")
        url = scope.get("raw_path") or scope["path"].encode()
        exchange = Exchange(
            self.state, wire, record, behavior, send, target=url + b"?" + query if query else url
        )
        await self._supervise(exchange, receive)

    async def _supervise(self, exchange: Exchange, receive: Receive) -> None:
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
            return JSONResponse(OPENAI.error(400, str(exc), None), status_code=400)
        return JSONResponse({"ok": True})

    async def _reset(self, request: Request) -> JSONResponse:
        self.state.reset()
        return JSONResponse({"ok": True})

    async def _requests(self, request: Request) -> JSONResponse:
        return JSONResponse([dataclasses.asdict(r) for r in self.state.records()])


def _endpoint(scope: Scope) -> tuple[Wire, str] | None:
    """The protocol a request path speaks, and the model it names (Gemini's path has it)."""
    path = scope["path"]
    if path == "/v1/chat/completions":
        return OPENAI, ""
    if path == "/v1/messages":
        return ANTHROPIC, ""
    if path.startswith(GEMINI_MODELS) and scope["method"] == "POST":
        target = path[len(GEMINI_MODELS) :]  # ASGI paths arrive percent-decoded
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if target.endswith(":streamGenerateContent") and query.get("alt") != ["sse"]:
            target += "?alt=json"  # the JSON-array stream, which this upstream does not speak
        return GEMINI, target
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _parse_behavior(data: Any) -> Behavior:
    if isinstance(data, dict) and "reply" in data:
        raise ValueError("reply callables can only be scripted in-process")
    return pydantic.TypeAdapter(Behavior).validate_python(data)
