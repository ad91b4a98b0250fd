"""The one HTTP client every wire protocol uses: aiohttp, said once.

Each adapter writes and reads its protocol's documented JSON itself; this module sends it
and owns everything about the connection: the pool, the timeouts, the proxy, error statuses,
server-sent events and aiohttp's own exception types. aiohttp rather than the official SDKs
and their ``httpx2`` transport: the SDKs' typed requests and replies and their transport's
pool bookkeeping cost 1.1-1.4 ms of CPU per call on the bench's machine, aiohttp with plain
JSON 0.2 ms, and the SDKs' transport added ~3 ms of latency per call at concurrency 1
(bench/README). One library also means one set of timeouts, limits and failure reasons.

Timeouts: ``connect_timeout_s`` to open a connection, and the call's ``timeout_s`` for the
wait for a pooled connection and for each read (a stream may last longer, as long as it
keeps sending), as the SDKs' were. Redirects are not followed: a redirect would carry the
provider's key header to wherever it points, and no chat API answers a POST with one.
Nothing here retries; retries, deadlines and failover belong to ``moa.routing``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from moa.errors import ProviderError
from moa.providers.base import ChatCall
from moa.providers.failures import COULD_NOT_CONNECT, CUT_OFF, TIMED_OUT, Failures
from moa.providers.shapes import BadShape

MAX_CONNECTIONS = 1000  # per provider, as the SDKs' pools allowed; the engine caps in-flight
MAX_EVENT_BYTES = 1024 * 1024  # one server-sent event; a longer one is a bad response
EVENT_STREAM = "text/event-stream"

RetryAfter = Callable[[bytes], float | None]
"""A protocol's own Retry-After, read from an error body (Gemini's RetryInfo)."""


class Upstream:
    """One provider's connection pool, and the headers every request to it carries."""

    def __init__(
        self,
        failures: Failures,
        *,
        base_url: str,
        headers: Mapping[str, str],
        connect_timeout_s: float,
        retry_after: RetryAfter | None = None,
    ) -> None:
        self._failures = failures
        self._headers = {**headers, "Content-Type": "application/json"}
        self._proxy = env_proxy(base_url)  # read once here, off the event loop
        self._connect_timeout_s = connect_timeout_s
        self._retry_after = retry_after
        self._session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def reply(
        self,
        call: ChatCall,
        url: str | URL,
        body: dict[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST ``body`` as JSON; the reply, released on exit (its connection pooled if read
        to the end, closed if not). An error status raises, unless ``allow`` lists it.
        Everything the transport, or a reply of the wrong shape, raises inside the block
        leaves as a ProviderError."""
        with self._mapped_errors(call.model):
            response = await self._post(call, url, body, params)
            try:
                if response.status >= 300 and response.status not in allow:
                    raise await self._status_error(call.model, response)
                yield response
            finally:
                response.release()

    async def events(self, model: str, response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The ``data`` of each server-sent event, until the body ends (other fields and
        comments are skipped; a multi-line data field is joined with newlines). Reading to
        the end, past the protocol's own end marker, lets the connection go back to the
        pool: one released before its body ends is closed, and every stream would
        reconnect."""
        if response.content_type != EVENT_STREAM:
            detail = "not a usable event stream"
            raise self._failures.bad_response(model, detail, response.content_type)
        pending = b""
        data: list[bytes] = []
        async for block in response.content.iter_any():
            pending += block
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_EVENT_BYTES:
                raise BadShape("a stream event is too large")
            for line in lines:
                line = line.rstrip(b"\r")
                if not line:
                    if data:
                        yield b"\n".join(data)
                        data = []
                elif line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
        if data:
            yield b"\n".join(data)

    async def _post(
        self,
        call: ChatCall,
        url: str | URL,
        body: dict[str, Any],
        params: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        # ensure_ascii=False, then UTF-8: a lone surrogate fails here, before anything is
        # sent (UnicodeEncodeError, mapped to the request's own fault).
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=call.timeout_s,
            sock_connect=min(self._connect_timeout_s, call.timeout_s),
            sock_read=call.timeout_s,
        )
        return await self._open_session().post(
            url,
            data=data,
            params=params,
            headers=self._headers,
            timeout=timeout,
            proxy=self._proxy,
            allow_redirects=False,
        )

    async def _status_error(self, model: str, response: aiohttp.ClientResponse) -> ProviderError:
        body = await response.read()
        retry_after = self._retry_after(body) if self._retry_after else None
        text = body.decode(errors="replace")
        return self._failures.status(
            model, response.status, text, response.headers, retry_after=retry_after
        )

    def _open_session(self) -> aiohttp.ClientSession:
        """The connection pool, made on first use: aiohttp binds it to the running loop,
        and providers are built off the loop."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    @contextmanager
    def _mapped_errors(self, model: str) -> Iterator[None]:
        """aiohttp's own errors, unencodable request text and replies of the wrong shape as
        ProviderError (``raise ... from``); anything else is a bug in moa and stays itself."""
        failures = self._failures
        try:
            yield
        except UnicodeEncodeError as exc:
            raise failures.unsendable(model) from exc
        except BadShape as exc:
            raise failures.bad_response(model, str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise failures.connection(model, exc, COULD_NOT_CONNECT) from exc
        except (
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,  # not valid HTTP (no status is raised as one here)
        ) as exc:
            raise failures.connection(model, exc, CUT_OFF) from exc
        except TimeoutError as exc:  # aiohttp's read and connect timeouts
            raise failures.connection(model, exc, TIMED_OUT) from exc
        except aiohttp.ClientError as exc:
            raise failures.connection(model, exc) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def env_proxy(base_url: str) -> str | None:
    """HTTP(S)_PROXY and NO_PROXY for this base URL, as the SDKs' clients honoured them."""
    parts = urlsplit(base_url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def error_text(response: aiohttp.ClientResponse) -> str:
    """An error reply's body, for the operator's log only."""
    return (await response.read()).decode(errors="replace")
