"""The Anthropic Messages-compatible endpoint: any Anthropic SDK (or a tool that only speaks
that API, pointed at moa with ``ANTHROPIC_BASE_URL``) can ask for a blend.

``model`` means what it means on /v1/chat/completions (``moa/<strategy>``, a preset, or a
plain ``provider/model``), blend fields go in the body field ``moa``. Every error on this
route, including authentication and validation, is Anthropic's ``{"type": "error", ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from moa.engine import stream_blend
from moa.errors import MoaError, http_status
from moa.modes.chat import run_chat
from moa.server.admission import admit_blend, admit_chat
from moa.server.anthropic_wire import Answered, Reply, error_body, message, stream
from moa.server.auth import AnthropicKey
from moa.server.billing import metered
from moa.server.compat import MoaFields, resolve
from moa.server.errors import HTTP_CODES, ApiError, describe_validation
from moa.server.openapi import PAID, AnthropicErrorBody, error_responses
from moa.server.replies import collect, until_disconnect
from moa.server.sse import SSE_HEADERS, EventStreamResponse
from moa.server.state import app_state
from moa.types import BlendRequest, ErrorEvent, Message

MAX_BLOCKS = 256
MAX_STOPS = 4  # as a blend or a chat takes (`stop`)
MAX_STOP_CHARS = 256


class TextBlock(BaseModel):
    """A content block; only text reaches the models (cache_control and the like are ignored)."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=64)
    text: str = ""


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str | list[TextBlock] = Field(max_length=MAX_BLOCKS)


class MessagesRequest(BaseModel):
    """Anthropic's request body; fields moa has no use for (metadata, top_k, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=256)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    max_tokens: int = Field(ge=1, le=32_768)
    temperature: float | None = None
    stop_sequences: list[Annotated[str, Field(max_length=MAX_STOP_CHARS)]] = Field(
        default_factory=list, max_length=MAX_STOPS
    )
    stream: bool = False
    tools: list[Any] | None = None
    moa: MoaFields | None = None


def _text(content: str | list[TextBlock], field: str) -> str:
    if isinstance(content, str):
        return content
    for index, block in enumerate(content):
        if block.type != "text":
            raise ApiError(
                400,
                "invalid_request",
                f"{field}[{index}].type: only text blocks are supported, got {block.type!r}",
            )
    return "".join(block.text for block in content)


def to_messages(body: MessagesRequest) -> list[Message]:
    """``system`` (a string or text blocks) first, then the turns, as moa's messages."""
    system = _text(body.system, "system") if body.system is not None else ""
    turns = [
        Message(role=m.role, content=_text(m.content, f"messages[{i}].content"))
        for i, m in enumerate(body.messages)
    ]
    return [Message(role="system", content=system), *turns] if system else turns


class AnthropicErrors(APIRoute):
    """Every error of this route leaves in Anthropic's shape, whatever raised it (the key
    check, body validation, admission)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.code, exc.message, exc.headers)
            except RequestValidationError as exc:
                return _error(400, "invalid_request", describe_validation(list(exc.errors())))
            except MoaError as exc:
                return _error(exc.http_status, exc.code, exc.message)
            except HTTPException as exc:  # a body that is not JSON at all
                code = HTTP_CODES.get(exc.status_code, "invalid_request")
                return _error(exc.status_code, code, str(exc.detail))

        return route


def _error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(error_body(status, code, text), status_code=status, headers=headers)


router = APIRouter(prefix="/v1", tags=["anthropic"], route_class=AnthropicErrors)


@router.post("/messages", responses=error_responses(PAID, streams=True, body=AnthropicErrorBody))
async def messages(body: MessagesRequest, request: Request, key: AnthropicKey) -> Response:
    """Anthropic Messages, answered by a blend (or by one model for a plain model id)."""
    state = app_state(request)
    if body.tools:
        raise ApiError(400, "invalid_request", "tools: blends do not call tools")
    target = resolve(
        body.model,
        body.moa,
        state.settings,
        messages=to_messages(body),
        stream=body.stream,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences or None,
    )
    if isinstance(target, BlendRequest):
        charge = await admit_blend(request, key, target, route="/v1/messages", field_prefix="moa.")
        blending = stream_blend(target, state.runtime, request_id=charge.request_id)
        events = metered(blending, charge)
    else:
        charge = await admit_chat(
            request, key, target, route="/v1/messages", fallback_field="moa.fallback"
        )
        events = metered(run_chat(target, state.runtime, request_id=charge.request_id), charge)
    reply = Reply(
        id="msg_" + charge.request_id.removeprefix("req_"),
        model=body.model,
        max_tokens=body.max_tokens,
        stop_sequences=body.stop_sequences,
    )
    if body.stream:
        frames = stream(reply, events)
        return EventStreamResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)
    final = await until_disconnect(request, collect(events))
    if final is None:
        return _error(499, "client_closed", "the client closed the connection")
    if isinstance(final, ErrorEvent):
        return _error(http_status(final.code), final.code, final.message)
    answer, content = final
    assert isinstance(answer, Answered)
    return JSONResponse(message(reply, answer, content))
