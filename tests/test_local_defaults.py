"""The ``[engine] local_*`` keys that need no model loaded: which requests get the local
sample count, and values refused when the config is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from moa.config import settings_from_dict
from moa.errors import ConfigError
from moa.runtime import Runtime
from moa.types import BlendRequest

MOA = str(Path(sys.executable).with_name("moa"))
FAKE = {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-fake"}


def runtime(**engine: Any) -> Runtime:
    return Runtime(settings_from_dict({"providers": {"fake": FAKE}, "engine": engine}))


def request(**fields: Any) -> BlendRequest:
    return BlendRequest.model_validate(
        {
            "models": ["local/smollm2"],
            "strategy": "self_moa",
            "messages": [{"role": "user", "content": "Why is the sky blue?"}],
            **fields,
        }
    )


def test_a_local_self_moa_without_samples_takes_the_local_sample_count() -> None:
    assert runtime().local_defaults(request()).samples == 2
    assert runtime(local_samples=3).local_defaults(request()).samples == 3


def test_samples_the_request_sets_or_a_remote_model_keep_their_count() -> None:
    rt = runtime()
    assert rt.local_defaults(request(samples=4)).samples == 4
    assert rt.local_defaults(request(synthesizer="fake/big")).samples == 4
    assert rt.local_defaults(request(quorum=3)).samples == 4  # two samples could never meet it


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("local_threads", 0),
        ("local_pool_size", 9),
        ("local_context_tokens", 100),
        ("local_max_tokens", 0),
        ("local_samples", 1),
        ("local_timeout_s", 0),
    ],
)
def test_a_bad_local_value_is_refused_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"engine.{key}"):
        settings_from_dict({"engine": {key: value}})


def test_the_cli_exits_2_naming_a_bad_local_key(tmp_path: Path) -> None:
    config = tmp_path / "moa.toml"
    config.write_text("[engine]\nlocal_threads = 0\n", encoding="utf-8")
    result = subprocess.run(
        [MOA, "blend", "Why is the sky blue?", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "engine.local_threads" in result.stderr
