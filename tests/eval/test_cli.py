"""``moa eval`` run as a subprocess against the scripted upstream: the table, the JSON and
the files say what the scripts make certain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from moa.eval import wilson
from moa.testing import ScriptedUpstream
from tests.eval.conftest import TASK_COUNT
from tests.test_cli import clean_env, run

MODELS = ("-m", "fake/alpha", "-m", "fake/beta", "-m", "fake/gamma")


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
""",
        encoding="utf-8",
    )
    return path


def eval_args(tasks: Path | str, config: Path, *extra: str) -> tuple[str, ...]:
    return ("eval", str(tasks), *MODELS, "--config", str(config), *extra)


def test_json_prints_each_systems_accuracy_interval_calls_and_latency(
    scripted: ScriptedUpstream, tasks_file: Path, config: Path
) -> None:
    args = eval_args(tasks_file, config, "--strategy", "vote", "--json", "--no-cache")
    result = run(*args, cwd=config.parent)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["tasks"] == TASK_COUNT
    systems = {s["system"]: s for s in document["systems"]}
    assert list(systems) == ["fake/alpha", "fake/beta", "fake/gamma", "vote"]
    assert [s["correct"] for s in systems.values()] == [6, 6, 7, 9]
    vote = systems["vote"]
    assert vote["n"] == TASK_COUNT and vote["accuracy"] == 0.9
    assert vote["ci95"] == list(wilson(9, TASK_COUNT))
    assert vote["calls"] == 3 * TASK_COUNT and vote["cost_usd"] == 0.0
    assert set(vote["latency_ms"]) == {"p50", "p95"}
    assert vote["latency_ms"]["p50"] <= vote["latency_ms"]["p95"]
    assert set(vote) == {
        "system",
        "n",
        "correct",
        "accuracy",
        "ci95",
        "cost_usd",
        "calls",
        "latency_ms",
    }


def test_the_table_has_a_row_per_system_with_its_accuracy_and_interval(
    scripted: ScriptedUpstream, tasks_file: Path, config: Path
) -> None:
    result = run(
        *eval_args(tasks_file, config, "--strategy", "vote", "--no-cache"), cwd=config.parent
    )
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[1]: line
        for line in result.stdout.splitlines()
        if "fake/" in line or "vote" in line
    }
    assert "60.0%" in rows["fake/alpha"] and "6/10" in rows["fake/alpha"]
    low, high = wilson(9, TASK_COUNT)
    assert "90.0%" in rows["vote"] and f"{low:.1%}-{high:.1%}" in rows["vote"]
    assert "30" in rows["vote"].split()


def test_out_writes_results_every_answer_and_both_plots(
    scripted: ScriptedUpstream, tasks_file: Path, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    args = eval_args(tasks_file, config, "--strategy", "vote", "--out", str(out), "--json")
    result = run(*args, cwd=config.parent)
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["task_set"] == "tasks.jsonl"
    assert document["plan"]["models"] == ["fake/alpha", "fake/beta", "fake/gamma"]
    assert document["systems"] == json.loads(result.stdout)["systems"]
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 4 * TASK_COUNT
    wrong_tie = next(a for a in answers if a["system"] == "vote" and a["task_id"] == "q9")
    assert (wrong_tie["correct"], wrong_tie["extracted"]) == (False, "98")
    assert wrong_tie["vote"]["votes"] == {"98": 1, "99": 1, "97": 1}, "gamma alone was right"
    for plot in ("accuracy_vs_cost.png", "accuracy_vs_latency.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")


def test_a_second_run_into_the_same_out_answers_from_the_cache(
    scripted: ScriptedUpstream, tasks_file: Path, config: Path, tmp_path: Path
) -> None:
    args = eval_args(tasks_file, config, "--out", str(tmp_path / "r"), "--json")
    first = run(*args, cwd=config.parent)
    asked = len(scripted.requests)
    second = run(*args, cwd=config.parent)
    assert second.returncode == 0, second.stderr
    assert len(scripted.requests) == asked
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert "came from the cache" in second.stderr


def test_list_shows_the_shipped_sets_with_counts(tmp_path: Path) -> None:
    result = run("eval", "--list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "120 tasks" in lines["arithmetic"] and "40 tasks" in lines["choice"]


def test_a_broken_task_line_is_bad_usage_naming_the_line(
    upstream: ScriptedUpstream, config: Path, tmp_path: Path
) -> None:
    tasks = tmp_path / "bad.jsonl"
    tasks.write_text('{"id": 1, "prompt": "2+2?", "answer": "4"}\n{"id": 2, "prompt": "x"}\n')
    result = run(*eval_args(tasks, config), cwd=config.parent)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "line 2" in line and "answer" in line
    assert upstream.requests == []


def test_a_strategy_that_cannot_take_the_models_is_bad_usage_before_any_call(
    upstream: ScriptedUpstream, tasks_file: Path, config: Path
) -> None:
    result = run(*eval_args(tasks_file, config, "--strategy", "self_moa"), cwd=config.parent)
    assert result.returncode == 2
    assert "self_moa" in result.stderr and "exactly 1 model" in result.stderr
    assert upstream.requests == []


def test_an_unknown_task_set_names_the_shipped_ones(config: Path) -> None:
    result = run(*eval_args("nope", config), cwd=config.parent)
    assert result.returncode == 2
    assert "arithmetic" in result.stderr and "choice" in result.stderr


def test_a_gsm8k_style_file_is_scored_on_the_number_after_its_marks(
    upstream: ScriptedUpstream, config: Path, tmp_path: Path
) -> None:
    tasks = tmp_path / "gsm8k.jsonl"
    rows = [
        {
            "question": "Pens cost 2 dollars. How much do 500 pens cost?",
            "answer": "2*500=1000\n#### 1,000",
        },
        {"question": "What is 3 + 4?", "answer": "3+4=<<3+4=7>>7\n#### 7"},
    ]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    upstream.script("alpha", reply=lambda body: "The pens cost 1000 dollars in total.")
    result = run(
        "eval",
        str(tasks),
        "-m",
        "fake/alpha",
        "--strategy",
        "vote",
        "--samples",
        "2",
        "--json",
        "--no-cache",
        "--config",
        str(config),
        cwd=config.parent,
    )
    assert result.returncode == 0, result.stderr
    scores = {s["system"]: s["correct"] for s in json.loads(result.stdout)["systems"]}
    assert scores == {"fake/alpha": 1, "vote": 1}


def test_a_run_where_every_answer_failed_exits_1(
    upstream: ScriptedUpstream, tasks_file: Path, config: Path
) -> None:
    upstream.script("alpha", status=400, error_message="alpha is gone")
    args = (
        "eval",
        str(tasks_file),
        "-m",
        "fake/alpha",
        "--strategy",
        "vote",
        "--limit",
        "2",
        "--no-cache",
        "--config",
        str(config),
    )
    result = run(*args, cwd=config.parent)
    assert result.returncode == 1
    assert "alpha is gone" in result.stderr


def test_without_matplotlib_the_results_are_written_and_the_missing_plots_explained(
    scripted: ScriptedUpstream, tasks_file: Path, config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    without_matplotlib = (
        "import sys; sys.modules['matplotlib'] = None; from moa.cli import main; main()"
    )
    args = eval_args(tasks_file, config, "--limit", "2", "--out", str(out), "--strategy", "vote")
    result = subprocess.run(
        [sys.executable, "-c", without_matplotlib, *args],
        cwd=config.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "plots skipped" in result.stderr and "moa[eval]" in result.stderr
    assert (out / "results.json").is_file() and (out / "answers.jsonl").is_file()
    assert not (out / "accuracy_vs_cost.png").exists()
