"""The three tools: their arguments are the HTTP bodies' fields (the same pydantic models),
their results the HTTP answers (as structured content, with readable text beside it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from mcp_types import CallToolResult, TextContent, Tool, ToolAnnotations
from pydantic import BaseModel

from moa.engine import stream_blend
from moa.modes.compare import run_compare
from moa.modes.judge import run_judge
from moa.runtime import Runtime
from moa.types import (
    BlendAnswer,
    BlendRequest,
    CompareAnswer,
    CompareRequest,
    DoneEvent,
    JudgeAnswer,
    JudgeRequest,
)

Events = AsyncIterator[Any]


@dataclass(frozen=True)
class MoaTool:
    name: str
    description: str
    body: type[BaseModel]  # the HTTP body: the tool's arguments
    answer: type[BaseModel]  # the HTTP answer: the tool's structured result
    run: Callable[[Any, Runtime], Events]

    def definition(self) -> Tool:
        return Tool(
            name=self.name,
            description=self.description,
            input_schema=arguments_schema(self.body),
            output_schema=self.answer.model_json_schema(mode="serialization"),
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=True),
        )


def arguments_schema(body: type[BaseModel]) -> dict[str, Any]:
    """The body's JSON schema without ``stream``: a tool result arrives whole."""
    schema = body.model_json_schema()
    schema["properties"].pop("stream", None)
    return schema


TOOLS = {
    tool.name: tool
    for tool in (
        MoaTool(
            "blend",
            "Several LLMs answer the conversation, then a synthesizer combines their answers "
            "with a strategy (consensus, council, best_of, chain, moa, self_moa). Returns the "
            "blended answer; the structured result adds every source's answer and the usage.",
            BlendRequest,
            BlendAnswer,
            stream_blend,
        ),
        MoaTool(
            "compare",
            "2-9 models answer the same conversation side by side; the result names the "
            "fastest and the longest answer.",
            CompareRequest,
            CompareAnswer,
            run_compare,
        ),
        MoaTool(
            "judge",
            "2-4 contestant models answer, then a judge model (not a contestant) scores each "
            "answer 0-10 and names a winner.",
            JudgeRequest,
            JudgeAnswer,
            run_judge,
        ),
    )
}


def result(final: BaseModel, content: str) -> CallToolResult:
    """A blend's text is its answer; compare's and judge's, their answer object as JSON."""
    answer = final.answer(content) if isinstance(final, DoneEvent) else final
    text = answer.content if isinstance(answer, BlendAnswer) else answer.model_dump_json()
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=answer.model_dump(mode="json"),
    )


def error(code: str, message: str) -> CallToolResult:
    """A tool error carrying moa's code and message, as the HTTP error body does."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        structured_content={"error": {"code": code, "message": message}},
        is_error=True,
    )
