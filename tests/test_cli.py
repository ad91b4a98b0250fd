"""The real ``moa`` command, run as a subprocess against the scripted upstream on loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from moa.testing import ScriptedUpstream

MOA = str(Path(sys.executable).parent / "moa")
HEAVY = {"llama_cpp", "sqlalchemy", "fastapi", "uvicorn"}
ANSWER = "Paris is the capital of France."


def clean_env() -> dict[str, str]:
    """The environment minus anything that would pick another config or a real provider."""
    dropped = ("MOA_CONFIG", "COLUMNS", "LINES")
    return {k: v for k, v in os.environ.items() if k not in dropped and not k.endswith("_API_KEY")}


def run(
    *args: str, cwd: Path, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``moa ARGS``; with ``python_flags`` run it through the interpreter to pass them."""
    command = (
        [sys.executable, *python_flags, "-c", "from moa.cli import main; main()", *args]
        if python_flags
        else [MOA, *args]
    )
    return subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )


def imported_modules(importtime_stderr: str) -> set[str]:
    """Top-level package names from ``python -X importtime`` output."""
    names = re.findall(r"^import time:.*\|\s*(\S+)\s*$", importtime_stderr, re.MULTILINE)
    return {name.split(".")[0] for name in names}


@pytest.fixture
def config(tmp_path: Path, upstream: ScriptedUpstream) -> Path:
    path = tmp_path / "moa.toml"
    path.write_text(
        f"""
[providers.fake]
kind = "openai"
base_url = "{upstream.base_url}"
api_key = "sk-fake"

[engine]
retry_backoff_s = 0.01
retry_backoff_max_s = 0.05

[models."fake/priced"]
input_usd_per_mtok = 0.5

[presets.research]
models = ["fake/alpha", "fake/preset-only"]

[server]
database_url = "sqlite+aiosqlite:///{tmp_path / "moa.db"}"
""",
        encoding="utf-8",
    )
    return path


def blend_args(config: Path, *extra: str) -> tuple[str, ...]:
    models = ("-m", "fake/alpha", "-m", "fake/beta", "-s", "fake/judge")
    return ("blend", "What is the capital of France?", *models, "--config", str(config), *extra)


def test_blend_json_prints_only_the_answer_object(upstream: ScriptedUpstream, config: Path) -> None:
    upstream.script("judge", content=ANSWER)
    result = run(*blend_args(config, "--json"), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["content"] == ANSWER
    assert answer["strategy"] == "consensus"
    assert sorted(s["model"] for s in answer["sources"]) == ["fake/alpha", "fake/beta"]
    assert all(s["status"] == "ok" for s in answer["sources"])
    assert answer["synthesis"]["model"] == "fake/judge"
    assert answer["usage"]["calls"] == 3
    assert answer["early_stopped"] is False
    assert {"id", "council", "best_of_pick", "credits_charged", "latency_ms"} <= answer.keys()


def test_blend_prints_the_answer_on_stdout_and_progress_on_stderr(
    upstream: ScriptedUpstream, config: Path
) -> None:
    upstream.script("judge", content=ANSWER)
    result = run(*blend_args(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ANSWER
    assert "fake/alpha" in result.stderr and "fake/beta" in result.stderr
    assert "complete" in result.stderr
    assert ANSWER not in result.stderr


def test_blend_progress_names_each_sources_layer(upstream: ScriptedUpstream, config: Path) -> None:
    result = run(*blend_args(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert "layer 0" in result.stderr


def test_an_unknown_strategy_is_bad_usage_naming_the_option(
    upstream: ScriptedUpstream, config: Path
) -> None:
    result = run(*blend_args(config, "--strategy", "nope"), cwd=config.parent)
    assert result.returncode == 2
    assert "strategy" in result.stderr and "nope" in result.stderr
    assert result.stdout == ""
    assert upstream.requests == []


def test_an_unknown_strategy_is_reported_on_one_line(
    upstream: ScriptedUpstream, config: Path
) -> None:
    result = run(*blend_args(config, "--strategy", "nope"), cwd=config.parent)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("invalid_request: strategy")


def test_too_many_layers_is_bad_usage_on_one_line_naming_layers(
    upstream: ScriptedUpstream, config: Path
) -> None:
    result = run(*blend_args(config, "--strategy", "moa", "--layers", "5"), cwd=config.parent)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("invalid_request: layers")
    assert upstream.requests == []


def test_all_sources_failing_exits_1_with_the_error_code_on_stderr(
    upstream: ScriptedUpstream, config: Path
) -> None:
    upstream.script("alpha", status=400, error_message="alpha is gone")
    upstream.script("beta", status=404, error_message="beta is gone")
    result = run(*blend_args(config, "--json"), cwd=config.parent)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("all_sources_failed: ")
    assert "HTTP 400: the upstream rejected the request" in last
    assert "HTTP 404: the upstream does not know this model" in last
    assert "is gone" not in last
    assert result.stdout == ""


def test_models_lists_the_embedded_model_and_the_configs_models(config: Path) -> None:
    result = run("models", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert {"local/smollm2", "fake/priced", "fake/alpha", "fake/preset-only"} <= set(listed)


def test_models_shows_a_header_prices_and_what_each_model_needs(config: Path) -> None:
    result = run("models", "--config", str(config), cwd=config.parent)
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["MODEL", "KIND", "IN", "$/MTOK", "OUT", "$/MTOK", "STATUS"]
    by_model = {row.split()[0]: row.split(None, 4)[1:] for row in rows}
    assert by_model["fake/priced"][:3] == ["openai", "0.5", "0"]
    assert by_model["fake/priced"][3] == "ready", "the scripted upstream answers"
    assert by_model["openai/gpt-4o"][3] == "needs OPENAI_API_KEY"
    assert by_model["local/smollm2"][3] == "ready (embedded)"


def test_models_says_a_local_server_that_is_not_running_is_not_ready(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    config = tmp_path / "moa.toml"
    config.write_text(
        f'[providers.ollama]\nbase_url = "http://127.0.0.1:{port}/v1"\napi_key = "x"\n',
        encoding="utf-8",
    )
    result = run("models", "--config", str(config), cwd=tmp_path)
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("ollama/")]
    assert row.endswith(f"not running (nothing answers on 127.0.0.1:{port})")


def test_keys_create_prints_the_new_key_alone_on_its_last_line(config: Path) -> None:
    result = run("keys", "create", "--credits", "5", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    *before, key = result.stdout.strip().splitlines()
    assert re.fullmatch(r"\S{20,}", key), key
    assert not any(key in line for line in before)


def test_keys_list_shows_the_credits_but_never_the_key(config: Path) -> None:
    created = run("keys", "create", "--credits", "5", "--config", str(config), cwd=config.parent)
    key = created.stdout.strip().splitlines()[-1]
    result = run("keys", "list", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    (row,) = result.stdout.strip().splitlines()
    assert re.search(r"\b5 credits\b", row)
    assert key not in result.stdout + result.stderr


def test_help_imports_no_heavy_module(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path, python_flags=("-X", "importtime"))
    assert result.returncode == 0
    assert "blend" in result.stdout
    modules = imported_modules(result.stderr)
    assert "typer" in modules, "importtime output was not parsed"
    assert modules & HEAVY == set()


def test_a_blend_on_remote_models_loads_neither_llama_cpp_nor_the_server(
    upstream: ScriptedUpstream, config: Path
) -> None:
    result = run(
        *blend_args(config, "--json"), cwd=config.parent, python_flags=("-X", "importtime")
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"]
    modules = imported_modules(result.stderr)
    assert "moa" in modules, "importtime output was not parsed"
    assert modules & HEAVY == set()


def test_a_failed_source_shows_moas_reason_and_logs_the_upstreams_text(
    upstream: ScriptedUpstream, config: Path
) -> None:
    upstream.script("beta", status=400, error_message="bad [/] input [bold]")
    upstream.script("judge", content=ANSWER)
    result = run(*blend_args(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    failed = next(line for line in lines if line.startswith("fake/beta [layer 0]: failed"))
    assert failed.endswith("HTTP 400: the upstream rejected the request")
    logged = next(line for line in lines if line.startswith("fake/beta: upstream HTTP 400"))
    assert "bad [/] input [bold]" in logged  # the operator's own terminal gets it verbatim


def test_an_unknown_provider_is_bad_usage_naming_the_fix(
    upstream: ScriptedUpstream, config: Path
) -> None:
    args = ("blend", "q", "-m", "nope/x", "-m", "fake/beta", "--config", str(config))
    result = run(*args, cwd=config.parent)
    assert result.returncode == 2
    assert "[providers.nope]" in result.stderr
    assert upstream.requests == []


def test_a_missing_config_file_is_bad_usage_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    result = run("blend", "q", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(missing) in line


def test_blend_vote_prints_the_winning_answer_and_the_tally(
    upstream: ScriptedUpstream, config: Path
) -> None:
    upstream.script("alpha", content="ANSWER: Paris")
    upstream.script("beta", content="It is paris.\nANSWER: paris.")
    args = ("blend", "Capital of France?", "-m", "fake/alpha", "-m", "fake/beta")
    result = run(*args, "--strategy", "vote", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ANSWER: Paris"
    assert "vote 'paris' 2/2" in result.stderr


def test_a_council_prints_its_agreements_disagreements_and_questions_below_the_answer(
    upstream: ScriptedUpstream, config: Path
) -> None:
    verdict = {
        "final_answer": "Paris.",
        "agreement_points": ["the capital is Paris"],
        "disagreement_points": ["whether to mention Versailles"],
        "follow_up_questions": ["Since when?"],
    }
    upstream.script("judge", content=json.dumps(verdict))
    result = run(*blend_args(config, "--strategy", "council"), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Paris.",
        "",
        "Agreements:",
        "- the capital is Paris",
        "",
        "Disagreements:",
        "- whether to mention Versailles",
        "",
        "Follow-up questions:",
        "- Since when?",
    ]


def test_self_moa_progress_numbers_each_sample(upstream: ScriptedUpstream, config: Path) -> None:
    args = ("blend", "Why?", "-m", "fake/alpha", "--samples", "3", "--config", str(config))
    result = run(*args, cwd=config.parent)
    assert result.returncode == 0, result.stderr
    for n in (1, 2, 3):
        assert f"fake/alpha #{n} [layer 0]: complete" in result.stderr


def test_compare_keeps_a_model_named_twice_as_two_answers(
    upstream: ScriptedUpstream, config: Path
) -> None:
    args = ("compare", "Why?", "-m", "fake/alpha", "-m", "fake/alpha", "--config", str(config))
    result = run(*args, cwd=config.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("## fake/alpha (") == 2
    assert len(upstream.calls("alpha")) == 2
