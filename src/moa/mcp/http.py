"""``/mcp`` under ``moa serve``: MCP's streamable HTTP behind moa's key, rate limits and
credits. Every HTTP request is authenticated as on the paid routes; each tool call is
admitted (checked, credits reserved) and billed exactly as its HTTP route.

Stateless: no MCP session lives in a process, so any replica behind a load balancer can
answer any request of a client, as with the rest of the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from moa.mcp.server import build_server
from moa.mcp.tools import MoaTool
from moa.server.admission import admit_blend, admit_compare, admit_judge
from moa.server.auth import authenticated
from moa.server.billing import Charge, metered
from moa.server.errors import ApiError, error_response
from moa.server.state import AppState, app_state
from moa.store import ApiKey

Admit = Callable[..., Awaitable[Charge]]
ADMISSIONS: dict[str, Admit] = {
    "blend": admit_blend,
    "compare": admit_compare,
    "judge": admit_judge,
}
KEY = "moa_key"  # where the authenticated key waits in the request's state for the tool call


class Served:
    """The tools on a server: the key the request authenticated with pays, as on HTTP."""

    async def events(
        self, tool: MoaTool, body: BaseModel, ctx: ServerRequestContext[Any]
    ) -> AsyncIterator[Any]:
        request = ctx.request
        assert isinstance(request, Request), "streamable HTTP hands each message its request"
        state: AppState = app_state(request)
        key: ApiKey = getattr(request.state, KEY)
        charge = await ADMISSIONS[tool.name](request, key, body, route=f"/mcp/{tool.name}")
        return metered(tool.run(body, state.runtime), charge)


class McpEndpoint:
    """The ASGI app mounted at ``/mcp``; ``running()`` belongs in the app's lifespan."""

    def __init__(self, version: str) -> None:
        self.sessions = StreamableHTTPSessionManager(
            app=build_server(Served(), version), stateless=True
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            setattr(request.state, KEY, await authenticated(request))
        except ApiError as exc:
            refusal = error_response(exc.status, exc.code, exc.message, exc.headers)
            await refusal(scope, receive, send)
            return
        await self.sessions.handle_request(scope, receive, send)
