"""The ``[engine] local_*`` keys on the real embedded model: contexts that run calls at
once (and calls that wait for one in the router), the default completion cap, the context
window, the local sample count, and ``moa serve`` loading the model before it serves.

Marked ``local_model`` like tests/test_local_model.py. No wall-clock thresholds: concurrency
is shown by two calls streaming at once, a queue by a call that cannot get a slot at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest

import moa
from moa.config import settings_from_dict
from moa.errors import ProviderError
from moa.providers.base import CallOptions, ChatCall, Completion
from moa.runtime import Runtime
from moa.types import Message, SourceSpec
from tests.server.processes import MoaProcess

pytestmark = pytest.mark.local_model

LOCAL = SourceSpec(model="local/smollm2")
STORY = [Message(role="user", content="Tell a long story about a lighthouse keeper.")]
SAFETY_S = 300  # only so a broken build fails instead of hanging; never reached when it works


def local_runtime(**engine: Any) -> Runtime:
    return Runtime(settings_from_dict({"engine": {"min_timeout_s": 0.01, **engine}}))


async def first_delta(stream: AsyncGenerator[str | Completion, None]) -> str:
    piece = await anext(stream)
    assert isinstance(piece, str), "the call finished before it streamed"
    return piece


async def test_two_contexts_generate_two_calls_at_once() -> None:
    """The first call is held mid-answer (its context and slot stay taken); the second
    still streams, which only a second context can do."""
    async with local_runtime(local_pool_size=2) as rt:
        options = CallOptions(messages=STORY, max_tokens=256)
        async with (
            aclosing(rt.router.stream(LOCAL, options)) as held,
            aclosing(rt.router.stream(LOCAL, options)) as second,
            asyncio.timeout(SAFETY_S),
        ):
            assert await first_delta(held)
            assert await first_delta(second)


async def test_with_one_context_a_second_call_waits_for_it_in_the_router() -> None:
    """The wait is a router slot under the call's own timeout: it ends with a clear error,
    not in a queue no one sees."""
    async with local_runtime(local_pool_size=1) as rt:
        options = CallOptions(messages=STORY, max_tokens=256)
        waiting = CallOptions(messages=STORY, max_tokens=8, timeout_s=0.5, requested=True)
        async with aclosing(rt.router.stream(LOCAL, options)) as held, asyncio.timeout(SAFETY_S):
            assert await first_delta(held)
            with pytest.raises(ProviderError, match="no free slot for provider 'local'"):
                await rt.router.complete(LOCAL, waiting)


async def test_a_call_without_max_tokens_stops_at_local_max_tokens() -> None:
    async with local_runtime(local_max_tokens=6) as rt:
        provider, name = rt.registry.resolve("local/smollm2")
        completion = await provider.complete(ChatCall(name, STORY))
    assert 0 < completion.usage.completion_tokens <= 6


async def test_a_prompt_longer_than_local_context_tokens_is_refused() -> None:
    long_prompt = [Message(role="user", content="sky blue light " * 400)]  # >512 tokens
    async with local_runtime(local_context_tokens=512) as rt:
        provider, name = rt.registry.resolve("local/smollm2")
        with pytest.raises(ProviderError, match="context window of 512"):
            await provider.complete(ChatCall(name, long_prompt, max_tokens=4))


async def test_a_local_self_moa_without_samples_asks_local_samples() -> None:
    request = moa.BlendRequest(
        models=["local/smollm2"],
        strategy="self_moa",
        max_tokens=8,
        messages=[{"role": "user", "content": "Name a colour."}],
    )
    async with local_runtime(local_samples=3) as rt:
        answer = await moa.blend(request, rt)
    assert len(answer.sources) == 3


async def test_a_local_call_without_a_timeout_gets_local_timeout_s() -> None:
    request = moa.BlendRequest(
        models=["local/smollm2"],
        strategy="self_moa",
        max_tokens=8,
        messages=[{"role": "user", "content": "Name a colour."}],
    )
    async with local_runtime(local_timeout_s=0.01, source_timeout_s=600) as rt:
        with pytest.raises(moa.MoaError) as failed:
            await moa.blend(request, rt)
    assert "0.01 s" in str(failed.value)


async def test_moa_serve_has_the_model_loaded_when_it_says_it_serves(tmp_path: Path) -> None:
    config = tmp_path / "moa.toml"
    config.write_text(
        "\n".join(
            [
                "[providers.local]",
                'kind = "local"',
                "[engine]",
                "local_pool_size = 2",
                "[server]",
                f'database_url = "sqlite+aiosqlite:///{tmp_path / "moa.db"}"',
                "",
            ]
        ),
        encoding="utf-8",
    )
    async with MoaProcess(config) as served, httpx.AsyncClient(base_url=served.url) as http:
        ready = await http.get("/healthz/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["local_model"] == "ok"
