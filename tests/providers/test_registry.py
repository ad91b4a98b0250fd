"""Resolving providers: the first call to a provider must not stall a running event loop."""

from __future__ import annotations

import json
import subprocess
import sys

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
