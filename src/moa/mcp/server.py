"""The MCP server: lists the tools and answers a call by running the mode and collecting
its events. Where the work runs and who pays is the backend's business: ``OwnMachine``
(stdio, no credits) or the served backend in ``moa.mcp.http``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from mcp.server import Server, ServerRequestContext
from mcp_types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams
from pydantic import BaseModel, ValidationError

from moa.errors import MoaError
from moa.mcp.tools import TOOLS, MoaTool, error, result
from moa.runtime import Runtime
from moa.server.errors import ApiError, describe_validation
from moa.server.replies import collect
from moa.types import ErrorEvent


class Backend(Protocol):
    async def events(
        self, tool: MoaTool, body: BaseModel, ctx: ServerRequestContext[Any]
    ) -> AsyncIterator[Any]:
        """The mode's events for this call; raise ApiError to refuse it before any work."""
        ...


class OwnMachine:
    """stdio: the user's own machine, like the CLI: one runtime, no key, no credits."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def events(
        self, tool: MoaTool, body: BaseModel, ctx: ServerRequestContext[Any]
    ) -> AsyncIterator[Any]:
        return _errors_as_events(tool.run(body, self.runtime))


async def _errors_as_events(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Modes raise MoaError (a bad model, every model failed); here it ends the stream as
    the error event the server's billing stream would make of it."""
    try:
        async for event in events:
            yield event
    except MoaError as exc:
        yield ErrorEvent(code=exc.code, message=exc.message)


def build_server(backend: Backend, version: str) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[tool.definition() for tool in TOOLS.values()])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        tool = TOOLS.get(params.name)
        if tool is None:
            return error("invalid_request", f"no tool {params.name!r}; use {', '.join(TOOLS)}")
        return await answer(tool, params.arguments or {}, backend, ctx)

    return Server(
        "moa",
        version=version,
        instructions="Blend, compare and judge LLM answers (Mixture-of-Agents).",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def answer(
    tool: MoaTool, arguments: dict[str, Any], backend: Backend, ctx: ServerRequestContext[Any]
) -> CallToolResult:
    """Validate the arguments as the HTTP body, run the tool, collect its final answer."""
    try:
        body = tool.body.model_validate({**arguments, "stream": False})
        events = await backend.events(tool, body, ctx)
    except ValidationError as exc:
        return error("invalid_request", describe_validation(list(exc.errors())))
    except ApiError as exc:
        return error(exc.code, exc.message)
    final = await collect(events)
    if isinstance(final, ErrorEvent):
        return error(final.code, final.message)
    return result(*final)
