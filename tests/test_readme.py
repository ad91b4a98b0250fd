"""README's examples run as written: the Python API, the curl calls and the OpenAI SDK
example, against moa serving the embedded local model (no provider keys anywhere)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moa.config import settings_from_dict
from moa.store import Store
from moa.testing.served import ServedApp

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.local_model


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def served_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """moa on default settings (embedded model) with a funded key: (url, key)."""
    database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('readme') / 'moa.db'}"
    settings = settings_from_dict(
        {"server": {"database_url": database_url}}, env={}, source="defaults"
    )

    async def make_key() -> str:
        store = await Store.open(database_url)
        _, plaintext = await store.create_key(credits=100)
        await store.close()
        return plaintext

    key = asyncio.run(make_key())
    with ServedApp(settings) as served:
        yield served.url, key


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_the_python_api_example_prints_an_answer() -> None:
    example = next(b for b in blocks("python") if "moa.blend(request)" in b)
    result = run([sys.executable, "-c", example], env={"MOA_CONFIG": "/dev/null"})
    assert result.returncode == 0, result.stderr
    assert "completion_tokens=" in result.stdout


def test_the_curl_examples_return_an_answer_and_a_stream(served_local: tuple[str, str]) -> None:
    url, key = served_local
    commands = [c for c in _curl_block().split("\n\n") if "curl" in c]
    plain, streamed = (c.replace("http://127.0.0.1:8000", url) for c in commands)
    answer = run(["bash", "-c", plain], env={"MOA_KEY": key})
    body = json.loads(answer.stdout)
    assert body["content"] and body["strategy"] == "self_moa"
    stream = run(["bash", "-c", streamed], env={"MOA_KEY": key}).stdout
    assert '"event":"source"' in stream and '"event":"done"' in stream
    assert stream.rstrip().endswith("data: [DONE]")


def _curl_block() -> str:
    return next(b for b in blocks("sh") if "curl" in b)


def test_the_openai_sdk_example_prints_a_blend(served_local: tuple[str, str]) -> None:
    url, key = served_local
    example = next(b for b in blocks("python") if "OpenAI(" in b)
    result = run(
        [sys.executable, "-c", example.replace("http://127.0.0.1:8000", url)],
        env={"MOA_KEY": key},
    )
    assert result.returncode == 0, result.stderr
    assert "CompletionUsage(" in result.stdout
