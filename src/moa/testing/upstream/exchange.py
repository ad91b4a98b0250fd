"""Writing one scripted reply onto the wire, the same way for every protocol.

The behaviour decides what happens (latency, error status, stall, bad JSON, cut, safety
block, the text); the ``Wire`` decides how each piece looks. Cuts close the socket for real,
through uvicorn's transport, so clients see what a crashing provider does to them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Send

from moa.testing.upstream.script import Behavior, RecordedRequest, State, tokens_of, word_count
from moa.testing.upstream.wire import Finish, Reply, Wire, dumps

JSON = b"application/json"
BROKEN = b'{"id": "broken", "choices": ['
MISSHAPEN = b'["a JSON value", "that is not the reply object"]'
MISSHAPEN_EVENT = b'"a stream event that is not an object"'


async def sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def send_json(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    length = str(len(body)).encode()
    headers = [(b"content-type", JSON), (b"content-length", length), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Exchange:
    """Writes one reply onto the wire; knows how to cut the connection mid-reply."""

    def __init__(
        self,
        state: State,
        wire: Wire,
        record: RecordedRequest,
        behavior: Behavior,
        send: Send,
        *,
        target: bytes = b"/",
    ) -> None:
        self.state, self.wire, self.record, self.behavior = state, wire, record, behavior
        self.send = send
        self.target = target  # the path and query the request came to
        self.closed = False  # we cut the reply and closed the socket ourselves

    async def run(self) -> None:
        b = self.behavior
        await sleep_ms(b.latency_ms)
        if b.status is not None:
            await self._send_error(b.status, b.error_message or f"scripted error {b.status}")
        elif b.redirect:
            await self._send_whole(b"", 307, (b"location", self.target))
        elif b.stall:
            await asyncio.get_running_loop().create_future()  # only the client's hang-up ends it
        elif b.malformed or b.misshapen:
            await self._send_bad_json()
        elif self.record.stream:
            await self._stream(self._reply())
        else:
            await self._send_whole(dumps(self.wire.whole(self._reply())))

    def abort(self) -> None:
        """Close the socket without finishing the response, as a crashing provider would.

        ASGI has no abort, so reach uvicorn's transport through its bound ``send``. If that
        is not possible, returning early still makes the server drop the connection.
        """
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if isinstance(transport, asyncio.BaseTransport):
            transport.close()
            self.closed = True

    def _reply(self) -> Reply:
        """The scripted text as tokens, cut at the request's max tokens."""
        b = self.behavior
        tokens: list[str] = []
        if b.blocked is None:
            tokens = tokens_of(self.wire.answer_text(self.record, b.text_for(self.record)))
        limit = self.record.max_tokens
        cut = limit is not None and len(tokens) > limit
        finish: Finish = "blocked" if b.blocked else "length" if cut else "stop"
        return Reply(
            record=self.record,
            tokens=tokens[:limit] if cut else tokens,
            finish=finish,
            blocked=b.blocked,
            prompt_tokens=word_count(self.record.messages),
            id=self.wire.new_id(),
        )

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
        await self._start(status, JSON, (b"content-length", str(len(body)).encode()), *extra)
        if self.behavior.cut_after is None or status != 200:
            await self._body(body)
            return
        await self._body(body[: len(body) // 2], more=True)
        self.abort()

    async def _send_bad_json(self) -> None:
        """Broken JSON, or JSON of the wrong shape, where the client expects the reply: the
        body, or a stream event's data."""
        if not self.record.stream:
            await self._send_whole(BROKEN if self.behavior.malformed else MISSHAPEN)
            return
        data = BROKEN if self.behavior.malformed else MISSHAPEN_EVENT
        await self._start(200, b"text/event-stream")
        await self._body(b"data: " + data + b"\n\n" + self.wire.done)

    async def _send_error(self, status: int, message: str) -> None:
        retry = self.behavior.retry_after
        extra = []
        if retry is not None and self.wire.retry_after_header:
            extra.append((b"retry-after", f"{retry:g}".encode()))
        await self._send_whole(dumps(self.wire.error(status, message, retry)), status, *extra)

    async def _stream(self, reply: Reply) -> None:
        b = self.behavior
        await self._start(200, b"text/event-stream", (b"cache-control", b"no-cache"))
        await self._events(self.wire.head(reply))
        tokens = reply.tokens
        limit = min([len(tokens), *(n for n in (b.cut_after, b.error_after) if n is not None)])
        for index, token in enumerate(tokens[:limit]):
            if index:
                await sleep_ms(b.token_delay_ms)
            await self._events([self.wire.delta(reply, token)])
        if b.cut_after is not None:
            self.abort()
            return
        if b.error_after is not None:
            await self._events([self.wire.stream_error(b.error_message or "scripted failure")])
        else:
            await self._events(self.wire.tail(reply))
        await self._body(self.wire.done)

    async def _events(self, events: list[dict[str, Any]]) -> None:
        if events:
            await self._body(b"".join(self.wire.frame(e) for e in events), more=True)
