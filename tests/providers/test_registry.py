"""Resolving providers: the first call to a provider must not stall a running event loop,
and a provider that cannot be used says how to fix it before any call is made."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from moa.config import Settings, settings_from_dict
from moa.errors import ConfigError, MissingKeyError
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream

# A fresh interpreter, so the provider's SDK is not imported yet, as in a new server process.
FIRST_BLEND = """
import asyncio, json, logging, sys
import moa
from moa.config import settings_from_dict

slow = []

class Report(logging.Handler):
    def emit(self, record):
        if " took " in record.getMessage():
            slow.append(record.getMessage()[:160])

async def main():
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    logging.getLogger("asyncio").addHandler(Report())
    fake = {"kind": "openai", "base_url": sys.argv[1], "api_key": "sk-fake"}
    settings = settings_from_dict({"providers": {"fake": fake}})
    request = moa.BlendRequest(
        models=["fake/alpha", "fake/beta"], messages=[{"role": "user", "content": "q"}]
    )
    async with moa.Runtime(settings) as runtime:
        answer = await moa.blend(request, runtime)
    print(json.dumps({"content": answer.content, "slow": slow}))

asyncio.run(main())
"""


def test_the_first_blend_in_a_process_does_not_block_the_event_loop(
    upstream: ScriptedUpstream,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_BLEND, upstream.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["content"]
    assert report["slow"] == []


def test_an_unknown_provider_names_the_moa_toml_section_to_add() -> None:
    registry = ProviderRegistry(settings_from_dict({}))

    with pytest.raises(ConfigError, match=r"add \[providers\.nope\] to moa.toml"):
        registry.check("nope/alpha")


def test_a_missing_key_names_the_variable_to_set() -> None:
    registry = ProviderRegistry(settings_from_dict({}, env={}))

    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY"):
        registry.check("anthropic/claude-sonnet-4-5")


def test_the_key_comes_from_the_environment_the_settings_copied() -> None:
    registry = ProviderRegistry(settings_from_dict({}, env={"GEMINI_API_KEY": "g-key-12345"}))

    registry.check("gemini/gemini-2.5-flash")


def test_an_openai_kind_provider_needs_a_base_url() -> None:
    settings = settings_from_dict({"providers": {"mine": {"kind": "openai", "api_key": "k"}}})

    with pytest.raises(ConfigError, match=r"\[providers\.mine\] needs base_url"):
        ProviderRegistry(settings).check("mine/alpha")


async def test_concurrent_first_calls_share_one_provider(settings: Settings) -> None:
    registry = ProviderRegistry(settings)
    try:
        await asyncio.gather(*(registry.prepare(["claude/alpha"]) for _ in range(3)))
        first, _ = registry.resolve("claude/alpha")
        second, model = registry.resolve("claude/beta")
    finally:
        await registry.aclose()

    assert first is second
    assert model == "beta"
