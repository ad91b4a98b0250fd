"""Each wire protocol's provider, built by the registry from moa.toml-style settings and
pointed at the scripted upstream, which speaks all three protocols on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from moa.config import Settings
from moa.providers.base import ChatCall, Completion, Provider
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream
from moa.types import Message
from tests.conftest import fake_settings

KEY = "sk-secret-key-1234"
PROTOCOLS = {"openai": "fake", "anthropic": "claude", "gemini": "gem"}


def provider_settings(upstream: ScriptedUpstream, root: str | None = None) -> Settings:
    """A provider of each protocol, served at ``root`` (the scripted upstream by default)."""
    root = root or upstream.url
    return fake_settings(
        upstream,
        providers={
            "fake": {"kind": "openai", "base_url": f"{root}/v1", "api_key": KEY},
            "claude": {"kind": "anthropic", "base_url": root, "api_key": KEY},
            "gem": {"kind": "gemini", "base_url": f"{root}/v1beta", "api_key": KEY},
        },
    )


@pytest.fixture
def settings(upstream: ScriptedUpstream) -> Settings:
    return provider_settings(upstream)


@pytest.fixture
async def registry(settings: Settings) -> AsyncIterator[ProviderRegistry]:
    registry = ProviderRegistry(settings)
    yield registry
    await registry.aclose()


@pytest.fixture(params=list(PROTOCOLS))
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def provider(protocol: str, registry: ProviderRegistry) -> Provider:
    """The provider of each protocol in turn (tests using it run three times)."""
    return registry.resolve(f"{PROTOCOLS[protocol]}/alpha")[0]


def messages(*turns: tuple[str, str]) -> list[Message]:
    return [Message(role=role, content=content) for role, content in turns]


def call(prompt: str = "what is the capital of France", **fields: Any) -> ChatCall:
    """A call to model ``alpha`` with one user message, unless ``messages`` is given."""
    turns: Sequence[Message] = fields.pop("messages", None) or messages(("user", prompt))
    return ChatCall("alpha", turns, **fields)


async def streamed(provider: Provider, chat: ChatCall) -> tuple[list[str], Completion]:
    """The deltas of a stream and its final completion."""
    deltas: list[str] = []
    final: Completion | None = None
    async for piece in provider.stream(chat):
        if isinstance(piece, Completion):
            final = piece
        else:
            deltas.append(piece)
    assert final is not None, "a stream ends with a Completion"
    return deltas, final
