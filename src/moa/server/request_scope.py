"""One request's life around the app: its id, its client address, its log line, and the
release of whatever it held, however it ended.

An ASGI middleware (outermost) rather than a route dependency, because only it sees every
ending: a response sent, a client that hung up before a stream began, a 413 from the body
limit, a bug. Routes add what they hold (an in-flight slot, a credit reservation) to the
request's ``cleanups``; they run here, after the response, shielded from cancellation.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moa.types import new_request_id

log = logging.getLogger("moa.requests")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class RequestContext:
    """What the log line reports and the cleanups to run when the request ends."""

    id: str
    client: str
    key_id: str | None = None
    credits_charged: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # e.g. the rate-limit headers
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def request_context(request: Request) -> RequestContext:
    context: RequestContext = request.scope["state"]["moa_request"]
    return context


def client_address(scope: Scope, trusted: Sequence[Network]) -> str:
    """The socket peer, unless it is a trusted proxy: then the right-most address of
    ``X-Forwarded-For`` that is not itself a trusted proxy (the left part is whatever the
    client chose to write)."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop if _is_ip(hop) else peer
    return peer


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


class RequestScope:
    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(id=_request_id(scope), client=client_address(scope, self.trusted))
        scope.setdefault("state", {})["moa_request"] = context
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                context.status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = {"x-request-id": context.id, **context.headers}
                headers += [
                    (name.lower().encode(), value.encode())
                    for name, value in extra.items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            with anyio.CancelScope(shield=True):
                for cleanup in reversed(context.cleanups):
                    await cleanup()
            _log(scope, context, time.perf_counter() - started)


def _request_id(scope: Scope) -> str:
    """The client's own ``X-Request-ID`` if it is a sane one, else a new id."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            sent: str = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(sent):
                return sent
    return new_request_id()


def _log(scope: Scope, context: RequestContext, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": context.id,
        "key_id": context.key_id,
        "client": context.client,
        "method": scope["method"],
        "route": scope["path"],
        "status": context.status or 499,
        "latency_ms": round(seconds * 1000, 1),
        "credits_charged": context.credits_charged,
    }
    log.info(
        "%s %s %s %s %s %s %sms credits=%s",
        fields["request_id"],
        fields["key_id"] or "-",
        fields["client"],
        fields["method"],
        fields["route"],
        fields["status"],
        fields["latency_ms"],
        fields["credits_charged"],
        extra={"moa": fields},
    )


class JsonLines(logging.Formatter):
    """``moa serve --log-format json``: one JSON object per line; request lines carry
    their fields, other records their message."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] | None = getattr(record, "moa", None)
        if fields is None:
            fields = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"
                ),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        return json.dumps(fields, separators=(",", ":"))
