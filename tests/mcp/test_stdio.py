"""``moa mcp`` spawned over stdio by the official MCP SDK's client, as an agent would, with
a config pointing at the scripted upstream."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp_types import TextContent

from mcp import Client, StdioServerParameters
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest

MOA = str(Path(sys.executable).parent / "moa")
ANSWER = "Paris is the capital of France."
USER = [{"role": "user", "content": "What is the capital of France?"}]
VERDICT = json.dumps(
    {
        "scores": [
            {"contestant": 1, "score": 6, "reason": "short"},
            {"contestant": 2, "score": 9, "reason": "complete"},
        ],
        "summary": "the second is better",
    }
)


@pytest.fixture
def config(tmp_path: Path, upstream: ScriptedUpstream) -> Path:
    path = tmp_path / "moa.toml"
    path.write_text(
        f'[providers.fake]\nkind = "openai"\nbase_url = "{upstream.base_url}"\n'
        'api_key = "sk-fake"\n',
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def agent_of(config: Path) -> AsyncIterator[Client]:
    """An MCP client that started ``moa mcp --config ...`` as its stdio server. (A context
    manager, not a fixture: the client's task group must open and close in the test's task.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MOA_"))}
    server = StdioServerParameters(command=MOA, args=["mcp", "--config", str(config)], env=env)
    async with Client(server, read_timeout_seconds=60) as client:
        yield client


def text_of(content: Sequence[object]) -> str:
    (block,) = content
    assert isinstance(block, TextContent)
    return block.text


async def test_the_server_lists_blend_compare_and_judge_with_the_http_bodies_as_arguments(
    config: Path,
) -> None:
    async with agent_of(config) as agent:
        tools = {tool.name: tool for tool in (await agent.list_tools()).tools}
        assert sorted(tools) == ["blend", "compare", "judge"]
        blend_schema = BlendRequest.model_json_schema()
        assert tools["blend"].input_schema["properties"].keys() == (
            blend_schema["properties"].keys() - {"stream"}
        )
        assert tools["blend"].input_schema["required"] == blend_schema["required"]


async def test_a_blend_tool_call_returns_the_blended_answer(
    config: Path, upstream: ScriptedUpstream
) -> None:
    async with agent_of(config) as agent:
        upstream.script("judge", content=ANSWER)
        result = await agent.call_tool(
            "blend",
            {"models": ["fake/alpha", "fake/beta"], "synthesizer": "fake/judge", "messages": USER},
        )
        assert not result.is_error
        assert text_of(result.content) == ANSWER
        answer = result.structured_content
        assert answer is not None and answer["content"] == ANSWER
        assert sorted(s["model"] for s in answer["sources"]) == ["fake/alpha", "fake/beta"]
        assert answer["credits_charged"] == 0, "stdio runs on the user's own machine: no credits"


async def test_compare_and_judge_return_their_answer_objects(
    config: Path, upstream: ScriptedUpstream
) -> None:
    async with agent_of(config) as agent:
        compared = await agent.call_tool(
            "compare", {"models": ["fake/alpha", "fake/beta"], "messages": USER}
        )
        assert not compared.is_error
        assert json.loads(text_of(compared.content))["fastest"] in ("fake/alpha", "fake/beta")
        upstream.script("referee", content=VERDICT)
        judged = await agent.call_tool(
            "judge",
            {"contestants": ["fake/alpha", "fake/beta"], "judge": "fake/referee", "messages": USER},
        )
        assert not judged.is_error, text_of(judged.content)
        assert judged.structured_content is not None
        assert judged.structured_content["verdict"]["winner"] == "fake/beta"


async def test_a_failed_blend_is_a_tool_error_with_moas_code(
    config: Path, upstream: ScriptedUpstream
) -> None:
    async with agent_of(config) as agent:
        upstream.script("alpha", status=400)
        upstream.script("beta", status=400)
        result = await agent.call_tool(
            "blend", {"models": ["fake/alpha", "fake/beta"], "messages": USER}
        )
        assert result.is_error
        assert text_of(result.content).startswith("all_sources_failed: every source failed")
        assert result.structured_content is not None
        assert result.structured_content["error"]["code"] == "all_sources_failed"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"models": ["fake/alpha"], "strategy": "consensus", "messages": USER}, "models: strategy"),
        ({"models": ["fake/alpha", "fake/beta"], "messages": USER, "layers": 9}, "layers: "),
        ({"models": ["nope/alpha", "fake/beta"], "messages": USER}, "unknown provider 'nope'"),
    ],
)
async def test_bad_arguments_are_invalid_request_tool_errors_naming_the_field(
    config: Path, arguments: dict[str, object], message: str
) -> None:
    async with agent_of(config) as agent:
        result = await agent.call_tool("blend", arguments)
        assert result.is_error
        assert result.structured_content is not None
        assert result.structured_content["error"]["code"] == "invalid_request"
        assert message in result.structured_content["error"]["message"]
