"""Blends on the real embedded model, SmolLM2-135M run in-process by llama.cpp.

No config and no keys: this is what a user gets out of the box. Slower than the rest of the
suite (a few seconds), so marked ``local_model``; deselect with ``-m "not local_model"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import moa
from moa.config import settings_from_dict
from moa.providers.base import ChatCall
from moa.runtime import Runtime
from moa.types import BlendRequest, ChunkEvent, Message

pytestmark = pytest.mark.local_model

MOA = str(Path(sys.executable).parent / "moa")


def local_request(prompt: str = "Name three primary colours.") -> BlendRequest:
    return moa.BlendRequest(
        models=["local/smollm2"],
        strategy="self_moa",
        samples=2,
        max_tokens=48,
        messages=[{"role": "user", "content": prompt}],
    )


@pytest.fixture
async def local_runtime() -> AsyncIterator[Runtime]:
    """Default settings: no config file, no environment, only the embedded model."""
    async with Runtime(settings_from_dict({})) as rt:
        yield rt


async def test_a_self_moa_blend_on_the_embedded_model_answers(local_runtime: Runtime) -> None:
    answer = await moa.blend(local_request(), local_runtime)
    assert answer.content.strip()
    assert answer.synthesis.model == "local/smollm2"
    assert [s.status for s in answer.sources] == ["ok", "ok"]
    assert answer.usage.calls == 3
    assert answer.usage.completion_tokens > 0


async def test_two_blends_on_the_embedded_model_can_run_at_once(local_runtime: Runtime) -> None:
    first, second = await asyncio.gather(
        moa.blend(local_request("Name a fruit."), local_runtime),
        moa.blend(local_request("Name an animal."), local_runtime),
    )
    assert first.content.strip() and second.content.strip()


async def test_cancelling_a_local_stream_frees_the_model_for_the_next_call(
    local_runtime: Runtime,
) -> None:
    walked_away = False
    stream = moa.stream_blend(local_request(), local_runtime)
    async with contextlib.aclosing(stream) as events:
        async for event in events:
            if isinstance(event, ChunkEvent):
                walked_away = True
                break  # mid-synthesis: the generation must stop and hand the model back
    assert walked_away, "the synthesis never streamed, so nothing was cancelled"
    # A model never handed back hangs here: the test's timeout (tests/conftest.py) fails it.
    answer = await moa.blend(local_request("Name a colour."), local_runtime)
    assert answer.content.strip()


async def test_the_embedded_model_writes_a_long_answer_and_reports_its_speed(
    local_runtime: Runtime,
) -> None:
    """Prints tokens/s (see it with ``pytest -s``). No floor: the rate swings tenfold with
    whatever else shares the CPU, and llama.cpp's threads degrade badly when oversubscribed."""
    provider, name = local_runtime.registry.resolve("local/smollm2")
    prompt = [Message(role="user", content="Tell a long story about a lighthouse keeper.")]
    await provider.complete(ChatCall(name, prompt, max_tokens=1))  # load the model first
    started = time.perf_counter()
    completion = await provider.complete(ChatCall(name, prompt, temperature=0.7, max_tokens=128))
    elapsed = time.perf_counter() - started
    tokens = completion.usage.completion_tokens
    print(f"\nlocal/smollm2: {tokens} tokens in {elapsed:.2f} s = {tokens / elapsed:.0f} tokens/s")
    assert tokens >= 16, completion.text
    assert len(completion.text.split()) >= 8, "a long story, not a word or two"


def test_the_cli_blends_on_the_embedded_model_with_no_config_and_no_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MOA_CONFIG" and not k.endswith("_API_KEY")}
    result = subprocess.run(
        [MOA, "blend", "Name a colour.", "--samples", "2", "--max-tokens", "32"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


async def test_a_call_cancelled_twice_still_hands_the_model_back(local_runtime: Runtime) -> None:
    provider, name = local_runtime.registry.resolve("local/smollm2")
    prompt = [Message(role="user", content="Tell a long story about a lighthouse keeper.")]
    generating = asyncio.Event()

    async def listen() -> None:
        async for _ in provider.stream(ChatCall(name, prompt, max_tokens=512)):
            generating.set()

    call = asyncio.create_task(listen())
    await generating.wait()
    call.cancel()
    await asyncio.sleep(0)  # one loop turn: the call now waits for its worker thread to stop
    call.cancel()  # e.g. a client hanging up while a timeout is already unwinding the call
    await asyncio.gather(call, return_exceptions=True)
    # A model never handed back hangs here: the test's timeout (tests/conftest.py) fails it.
    completion = await provider.complete(ChatCall(name, prompt, max_tokens=2))
    assert completion.usage.completion_tokens > 0
